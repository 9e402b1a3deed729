"""The box losses equal torchvision's published definitions, written here independently.

The service's GIoU, DIoU and CIoU losses (service/losses/boxes.py, torchvision.ops written out
vectorised) are checked against a box-by-box reference in float64, straight from the papers'
and torchvision's formulas, for values and gradients; and against values worked out by hand.
The property tests (tests/test_losses_property.py) check the HTTP answers against the same
functions in every wire form and dtype.
"""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from service.losses.boxes import (
    complete_box_iou_loss,
    distance_box_iou_loss,
    generalized_box_iou_loss,
)
from tests.support.cases import CASES, Case

FUNCTIONS = {
    "giou": generalized_box_iou_loss,
    "diou": distance_box_iou_loss,
    "ciou": complete_box_iou_loss,
}
CASE_OF = {
    "giou": "generalized_box_iou_loss",
    "diou": "distance_box_iou_loss",
    "ciou": "complete_box_iou_loss",
}


def one_box_loss(pred: torch.Tensor, gt: torch.Tensor, kind: str, eps: float) -> torch.Tensor:
    """The loss of one predicted box against one target box (0-d tensors, so autograd
    follows), from the definitions: IoU = |A n B| / |A u B|; GIoU subtracts the share of the
    enclosing box C outside the union; DIoU adds the squared centre distance over C's squared
    diagonal; CIoU adds alpha v, v the aspect-ratio discrepancy, alpha held constant."""
    x1, y1, x2, y2 = pred
    gx1, gy1, gx2, gy2 = gt
    overlap_w = torch.minimum(x2, gx2) - torch.maximum(x1, gx1)
    overlap_h = torch.minimum(y2, gy2) - torch.maximum(y1, gy1)
    overlaps = bool(overlap_w > 0) and bool(overlap_h > 0)
    intersection = overlap_w * overlap_h if overlaps else torch.zeros((), dtype=pred.dtype)
    union = (x2 - x1) * (y2 - y1) + (gx2 - gx1) * (gy2 - gy1) - intersection
    iou = intersection / (union + eps)
    enclosing_w = torch.maximum(x2, gx2) - torch.minimum(x1, gx1)
    enclosing_h = torch.maximum(y2, gy2) - torch.minimum(y1, gy1)
    if kind == "giou":
        enclosing = enclosing_w * enclosing_h
        return 1 - (iou - (enclosing - union) / (enclosing + eps))
    diagonal2 = enclosing_w**2 + enclosing_h**2 + eps
    centre2 = ((x1 + x2) / 2 - (gx1 + gx2) / 2) ** 2 + ((y1 + y2) / 2 - (gy1 + gy2) / 2) ** 2
    diou = 1 - iou + centre2 / diagonal2
    if kind == "diou":
        return diou
    v = (
        4
        / math.pi**2
        * (torch.atan((gx2 - gx1) / (gy2 - gy1)) - torch.atan((x2 - x1) / (y2 - y1))) ** 2
    )
    alpha = (v / (1 - iou + v + eps)).detach()
    return diou + alpha * v


def reference(
    boxes1: torch.Tensor, boxes2: torch.Tensor, kind: str, reduction: str, eps: float
) -> torch.Tensor:
    flat1, flat2 = boxes1.reshape(-1, 4), boxes2.reshape(-1, 4)
    losses = [one_box_loss(flat1[i], flat2[i], kind, eps) for i in range(flat1.shape[0])]
    each = torch.stack(losses).reshape(boxes1.shape[:-1]) if losses else boxes1.sum(-1) * 0
    if reduction == "none":
        return each
    if reduction == "sum":
        return each.sum()
    return each.mean() if losses else each.sum() * 0.0


@pytest.mark.parametrize("kind", sorted(FUNCTIONS))
@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_loss_and_gradients_equal_the_definition(kind: str, data: st.DataObject) -> None:
    case: Case = data.draw(CASES[CASE_OF[kind]])
    reduction = case.params.get("reduction", "none")
    eps = case.params.get("eps", 1e-7)
    got_leaves = [case.inputs[n].clone().requires_grad_() for n in ("boxes1", "boxes2")]
    want_leaves = [case.inputs[n].clone().requires_grad_() for n in ("boxes1", "boxes2")]
    got = FUNCTIONS[kind](*got_leaves, reduction=reduction, eps=eps)
    want = reference(*want_leaves, kind, reduction, eps)
    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)
    got_grads = torch.autograd.grad(got.sum(), got_leaves)
    want_grads = torch.autograd.grad(want.sum(), want_leaves)
    for got_grad, want_grad in zip(got_grads, want_grads, strict=True):
        torch.testing.assert_close(got_grad, want_grad, rtol=1e-10, atol=1e-12)


# Two unit squares side by side, one apart: IoU 0; the enclosing box is 3 x 1 (area 3, union
# 2, diagonal^2 10); the centres are 2 apart; the aspect ratios are equal (v = 0).
APART = (torch.tensor([[0.0, 0.0, 1.0, 1.0]]), torch.tensor([[2.0, 0.0, 3.0, 1.0]]))


@pytest.mark.parametrize(
    ("kind", "expected"),
    [("giou", 1 + (3 - 2) / 3), ("diou", 1 + 4 / 10), ("ciou", 1 + 4 / 10)],
)
def test_values_worked_out_by_hand(kind: str, expected: float) -> None:
    boxes1, boxes2 = (b.double() for b in APART)
    loss = FUNCTIONS[kind](boxes1, boxes2, eps=0.0)
    assert loss.shape == (1,)
    assert loss.item() == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("kind", sorted(FUNCTIONS))
def test_identical_boxes_lose_nothing_and_ciou_weighs_the_aspect_ratio(kind: str) -> None:
    box = torch.tensor([[1.0, 2.0, 4.0, 3.0]], dtype=torch.float64)
    # (eps keeps CIoU's alpha = 0 / (0 + 0 + eps) defined.)
    assert FUNCTIONS[kind](box, box).item() == pytest.approx(0.0, abs=1e-6)
    # Same centre and enclosing box, different shape: only CIoU's v term separates them from
    # an IoU loss.
    wide, tall = torch.tensor([[0.0, 1.0, 4.0, 3.0]]), torch.tensor([[1.0, 0.0, 3.0, 4.0]])
    iou = 4 / 12
    diou = 1 - iou + 0 / (16 + 16)
    v = 4 / math.pi**2 * (math.atan(2 / 4) - math.atan(4 / 2)) ** 2
    expected = {"giou": 1 - (iou - (16 - 12) / 16), "diou": diou}
    expected["ciou"] = diou + v / (1 - iou + v) * v
    got = FUNCTIONS[kind](wide.double(), tall.double(), eps=0.0).item()
    assert got == pytest.approx(expected[kind], rel=1e-12)


@pytest.mark.parametrize("kind", sorted(FUNCTIONS))
def test_reductions_and_empty_inputs_as_torchvision(kind: str) -> None:
    empty = torch.zeros((0, 4), requires_grad=True)
    assert FUNCTIONS[kind](empty, empty).shape == (0,)
    mean = FUNCTIONS[kind](empty, empty, reduction="mean")
    assert mean.item() == 0.0  # torchvision: 0.0 * loss.sum() for no boxes, not NaN
    (grad,) = torch.autograd.grad(mean, [empty])
    assert grad.shape == (0, 4)
    with pytest.raises(ValueError, match="reduction"):
        FUNCTIONS[kind](*APART, reduction="batchmean")


@pytest.mark.parametrize("kind", sorted(FUNCTIONS))
def test_half_precision_boxes_are_computed_in_float32(kind: str) -> None:
    for dtype in (torch.float16, torch.bfloat16):
        boxes1, boxes2 = (b.to(dtype) for b in APART)
        assert FUNCTIONS[kind](boxes1, boxes2).dtype is torch.float32
