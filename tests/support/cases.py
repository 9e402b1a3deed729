"""Hypothesis strategies of valid inputs for every loss, and the direct torch reference.

``CASES`` maps each loss name to a strategy of ``Case``s: master tensors in float64 (floats)
or int64 (indices) and params. A test casts the float tensors to the dtype under test, sends
them in any wire form, and compares the answer with ``reference`` on the same tensors.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from hypothesis import strategies as st

from service.losses.registry import ECOSYSTEM_LOSSES

Draw = Callable[[st.SearchStrategy[Any]], Any]


@dataclass
class Case:
    inputs: dict[str, torch.Tensor]
    params: dict[str, Any] = field(default_factory=dict)

    def cast(self, dtype: torch.dtype) -> Case:
        """Float tensors (inputs and tensor params) in ``dtype``; index tensors unchanged."""

        def cast_one(value: Any) -> Any:
            if isinstance(value, torch.Tensor) and value.is_floating_point():
                return value.to(dtype)
            return value

        return Case(
            {name: cast_one(t) for name, t in self.inputs.items()},
            {name: cast_one(v) for name, v in self.params.items()},
        )

    def to(self, device: str) -> Case:
        """Every tensor (inputs and tensor params) on ``device``."""

        def move(value: Any) -> Any:
            return value.to(device) if isinstance(value, torch.Tensor) else value

        return Case(
            {name: move(t) for name, t in self.inputs.items()},
            {name: move(v) for name, v in self.params.items()},
        )


# ---------------------------------------------------------------------------------------------
# Building blocks


def floats(
    draw: Draw, shape: tuple[int, ...], low: float = -4.0, high: float = 4.0
) -> torch.Tensor:
    count = math.prod(shape)
    values = draw(st.lists(st.floats(low, high, allow_nan=False), min_size=count, max_size=count))
    return torch.tensor(values, dtype=torch.float64).reshape(shape)


def ints(draw: Draw, shape: tuple[int, ...], low: int, high: int) -> torch.Tensor:
    """Integers in [low, high]."""
    count = math.prod(shape)
    values = draw(st.lists(st.integers(low, high), min_size=count, max_size=count))
    return torch.tensor(values, dtype=torch.int64).reshape(shape)


def signs(draw: Draw, shape: tuple[int, ...]) -> torch.Tensor:
    values = draw(
        st.lists(st.sampled_from([-1.0, 1.0]), min_size=math.prod(shape), max_size=math.prod(shape))
    )
    return torch.tensor(values, dtype=torch.float64).reshape(shape)


def any_shape(draw: Draw, max_dims: int = 3) -> tuple[int, ...]:
    dims = draw(st.integers(0, max_dims))
    return tuple(draw(st.integers(1, 4)) for _ in range(dims))


def maybe(draw: Draw, params: dict[str, Any], name: str, strategy: st.SearchStrategy[Any]) -> None:
    """Sometimes give param ``name`` (drawn from ``strategy``), sometimes leave the default."""
    if draw(st.booleans()):
        params[name] = draw(strategy)


def reduction(
    draw: Draw, params: dict[str, Any], choices: tuple[str, ...] = ("none", "mean", "sum")
) -> None:
    maybe(draw, params, "reduction", st.sampled_from(choices))


def positive(low: float = 0.05, high: float = 3.0) -> st.SearchStrategy[float]:
    return st.floats(low, high)


def batch_and_classes(draw: Draw, min_classes: int = 1) -> tuple[tuple[int, ...], int]:
    """An (N, C) or unbatched (C,) layout: the batch shape and C."""
    classes = draw(st.integers(min_classes, 5))
    batch = draw(st.sampled_from([(), (draw(st.integers(1, 4)),)]))
    return batch, classes


# ---------------------------------------------------------------------------------------------
# One strategy per loss


@st.composite
def pointwise_regression(draw: Draw, weight: bool = True) -> Case:
    shape = any_shape(draw)
    params: dict[str, Any] = {}
    if weight and draw(st.booleans()):
        params["weight"] = floats(draw, shape, 0.0, 2.0)
    reduction(draw, params)
    return Case({"input": floats(draw, shape), "target": floats(draw, shape)}, params)


@st.composite
def huber(draw: Draw) -> Case:
    case: Case = draw(pointwise_regression())
    maybe(draw, case.params, "delta", positive(0.1, 3.0))
    return case


@st.composite
def smooth_l1(draw: Draw) -> Case:
    case: Case = draw(pointwise_regression(weight=False))
    maybe(draw, case.params, "beta", st.floats(0.0, 3.0))
    return case


def _class_layout(draw: Draw) -> tuple[tuple[int, ...], tuple[int, ...], int, int]:
    """Input shape, index-target shape, C and the class dim: (C,), (N, C) or (N, C, d1, d2)."""
    classes = draw(st.integers(1, 5))
    layout = draw(st.sampled_from(["unbatched", "batched", "k_dimensional"]))
    if layout == "unbatched":
        return (classes,), (), classes, 0
    batch = draw(st.integers(1, 3))
    if layout == "batched":
        return (batch, classes), (batch,), classes, 1
    d1, d2 = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    return (batch, classes, d1, d2), (batch, d1, d2), classes, 1


def _class_indices(
    draw: Draw, shape: tuple[int, ...], classes: int, params: dict[str, Any]
) -> torch.Tensor:
    """Targets in [0, C), some of them ignore_index when that param is given."""
    ignore = draw(st.sampled_from([None, -100, draw(st.integers(0, classes - 1))]))
    if ignore is None:
        return ints(draw, shape, 0, classes - 1)
    params["ignore_index"] = ignore
    choices = [*range(classes), ignore]
    values = draw(
        st.lists(st.sampled_from(choices), min_size=math.prod(shape), max_size=math.prod(shape))
    )
    return torch.tensor(values, dtype=torch.int64).reshape(shape)


@st.composite
def cross_entropy(draw: Draw) -> Case:
    input_shape, target_shape, classes, class_dim = _class_layout(draw)
    params: dict[str, Any] = {}
    if draw(st.booleans()):  # class probabilities, same shape as the input
        target = torch.softmax(floats(draw, input_shape), dim=class_dim)
    else:
        target = _class_indices(draw, target_shape, classes, params)
    if draw(st.booleans()):
        params["weight"] = floats(draw, (classes,), 0.1, 2.0)
    maybe(draw, params, "label_smoothing", st.floats(0.0, 1.0))
    reduction(draw, params)
    return Case({"input": floats(draw, input_shape), "target": target}, params)


@st.composite
def nll(draw: Draw) -> Case:
    input_shape, target_shape, classes, class_dim = _class_layout(draw)
    params: dict[str, Any] = {}
    target = _class_indices(draw, target_shape, classes, params)
    if draw(st.booleans()):
        params["weight"] = floats(draw, (classes,), 0.1, 2.0)
    reduction(draw, params)
    log_probs = torch.log_softmax(floats(draw, input_shape), dim=class_dim)
    return Case({"input": log_probs, "target": target}, params)


@st.composite
def bce(draw: Draw) -> Case:
    shape = any_shape(draw)
    params: dict[str, Any] = {}
    if draw(st.booleans()):
        params["weight"] = floats(draw, shape, 0.0, 2.0)
    reduction(draw, params)
    return Case(
        {"input": floats(draw, shape, 0.0, 1.0), "target": floats(draw, shape, 0.0, 1.0)}, params
    )


@st.composite
def bce_with_logits(draw: Draw) -> Case:
    batch, classes = batch_and_classes(draw)
    shape = (*batch, classes)
    params: dict[str, Any] = {}
    if draw(st.booleans()):
        params["weight"] = floats(draw, shape, 0.0, 2.0)
    if draw(st.booleans()):
        params["pos_weight"] = floats(draw, (classes,), 0.1, 3.0)
    reduction(draw, params)
    return Case({"input": floats(draw, shape), "target": floats(draw, shape, 0.0, 1.0)}, params)


@st.composite
def kl_div(draw: Draw) -> Case:
    batch, classes = batch_and_classes(draw)
    shape = (*batch, classes)
    params: dict[str, Any] = {}
    log_target = draw(st.booleans())
    if log_target or draw(st.booleans()):
        params["log_target"] = log_target
    target = torch.softmax(floats(draw, shape), dim=-1)
    if log_target:
        target = target.log()
    reduction(draw, params, ("none", "mean", "sum", "batchmean"))
    return Case({"input": torch.log_softmax(floats(draw, shape), dim=-1), "target": target}, params)


@st.composite
def poisson_nll(draw: Draw) -> Case:
    shape = any_shape(draw)
    params: dict[str, Any] = {}
    log_input = draw(st.booleans())
    if not log_input or draw(st.booleans()):
        params["log_input"] = log_input
    maybe(draw, params, "full", st.booleans())
    maybe(draw, params, "eps", st.floats(1e-8, 1e-2))
    reduction(draw, params)
    input_ = floats(draw, shape, -3.0, 3.0) if log_input else floats(draw, shape, 0.0, 5.0)
    target = ints(draw, shape, 0, 6).to(torch.float64)
    return Case({"input": input_, "target": target}, params)


@st.composite
def gaussian_nll(draw: Draw) -> Case:
    shape = (draw(st.integers(1, 4)), draw(st.integers(1, 3)))
    var_shape = draw(st.sampled_from([shape, (shape[0],), (shape[0], 1), ()]))
    params: dict[str, Any] = {}
    maybe(draw, params, "full", st.booleans())
    maybe(draw, params, "eps", st.floats(1e-6, 1e-1))
    reduction(draw, params)
    return Case(
        {
            "input": floats(draw, shape),
            "target": floats(draw, shape),
            "var": floats(draw, var_shape, 0.01, 3.0),
        },
        params,
    )


@st.composite
def sign_target(draw: Draw, margin: bool) -> Case:
    shape = any_shape(draw)
    params: dict[str, Any] = {}
    if margin:
        maybe(draw, params, "margin", st.floats(-1.0, 2.0))
    reduction(draw, params)
    return Case({"input": floats(draw, shape), "target": signs(draw, shape)}, params)


@st.composite
def multilabel_soft_margin(draw: Draw) -> Case:
    shape = (draw(st.integers(1, 4)), classes := draw(st.integers(1, 5)))
    params: dict[str, Any] = {}
    if draw(st.booleans()):
        params["weight"] = floats(draw, (classes,), 0.1, 2.0)
    reduction(draw, params)
    target = ints(draw, shape, 0, 1).to(torch.float64)
    return Case({"input": floats(draw, shape), "target": target}, params)


@st.composite
def multilabel_margin(draw: Draw) -> Case:
    batch, classes = batch_and_classes(draw)
    shape = (*batch, classes)
    params: dict[str, Any] = {}
    reduction(draw, params)
    return Case(
        {"input": floats(draw, shape), "target": ints(draw, shape, -1, classes - 1)}, params
    )


@st.composite
def multi_margin(draw: Draw) -> Case:
    batch, classes = batch_and_classes(draw)
    params: dict[str, Any] = {}
    maybe(draw, params, "p", st.sampled_from([1, 2]))
    maybe(draw, params, "margin", st.floats(-1.0, 2.0))
    if draw(st.booleans()):
        params["weight"] = floats(draw, (classes,), 0.1, 2.0)
    reduction(draw, params)
    return Case(
        {"input": floats(draw, (*batch, classes)), "target": ints(draw, batch, 0, classes - 1)},
        params,
    )


@st.composite
def cosine_embedding(draw: Draw) -> Case:
    batch, dims = batch_and_classes(draw)
    params: dict[str, Any] = {}
    maybe(draw, params, "margin", st.floats(-1.0, 1.0))
    reduction(draw, params)
    shape = (*batch, dims)
    return Case(
        {
            "input1": floats(draw, shape),
            "input2": floats(draw, shape),
            "target": signs(draw, batch),
        },
        params,
    )


@st.composite
def margin_ranking(draw: Draw) -> Case:
    shape = draw(st.sampled_from([(), (draw(st.integers(1, 5)),)]))
    params: dict[str, Any] = {}
    maybe(draw, params, "margin", st.floats(-1.0, 2.0))
    reduction(draw, params)
    return Case(
        {
            "input1": floats(draw, shape),
            "input2": floats(draw, shape),
            "target": signs(draw, shape),
        },
        params,
    )


def _triplet(draw: Draw, batched_only: bool) -> Case:
    dims = draw(st.integers(1, 4))
    batch = (draw(st.integers(1, 4)),) if batched_only or draw(st.booleans()) else ()
    shape = (*batch, dims)
    params: dict[str, Any] = {}
    maybe(draw, params, "margin", positive(0.1, 2.0))
    maybe(draw, params, "swap", st.booleans())
    reduction(draw, params)
    names = ("anchor", "positive", "negative")
    return Case({name: floats(draw, shape) for name in names}, params)


@st.composite
def triplet_margin(draw: Draw) -> Case:
    case = _triplet(draw, batched_only=False)
    maybe(draw, case.params, "p", st.floats(1.0, 3.0))
    maybe(draw, case.params, "eps", st.floats(1e-8, 1e-2))
    return case


@st.composite
def triplet_with_distance(draw: Draw) -> Case:
    case = _triplet(draw, batched_only=True)
    maybe(draw, case.params, "distance_function", st.sampled_from(["pairwise", "cosine"]))
    return case


@st.composite
def ctc(draw: Draw) -> Case:
    steps, classes = draw(st.integers(1, 6)), draw(st.integers(2, 5))
    blank = draw(st.integers(0, classes - 1))
    labels = [c for c in range(classes) if c != blank]
    params: dict[str, Any] = {}
    if blank or draw(st.booleans()):
        params["blank"] = blank
    maybe(draw, params, "zero_infinity", st.booleans())
    reduction(draw, params)
    longest = draw(st.integers(0, 4))
    layout = draw(st.sampled_from(["padded", "concatenated", "unbatched"]))
    batch = 1 if layout == "unbatched" else draw(st.integers(1, 3))
    padded = torch.tensor(
        draw(st.lists(st.sampled_from(labels), min_size=batch * longest, max_size=batch * longest)),
        dtype=torch.int64,
    ).reshape(batch, longest)
    target_lengths = ints(draw, (batch,), 0, longest)
    input_lengths = ints(draw, (batch,), 1, steps)
    log_probs = torch.log_softmax(floats(draw, (steps, batch, classes)), dim=-1)
    if layout == "concatenated":
        targets = torch.cat([padded[n, : int(target_lengths[n])] for n in range(batch)])
    elif layout == "unbatched":
        # Unbatched targets hold exactly target_lengths labels (torch reads them concatenated).
        return Case(
            {
                "log_probs": log_probs[:, 0],
                "targets": padded[0, : int(target_lengths[0])],
                "input_lengths": input_lengths[0],
                "target_lengths": target_lengths[0],
            },
            params,
        )
    else:
        targets = padded
    return Case(
        {
            "log_probs": log_probs,
            "targets": targets,
            "input_lengths": input_lengths,
            "target_lengths": target_lengths,
        },
        params,
    )


@st.composite
def focal(draw: Draw) -> Case:
    shape = any_shape(draw)
    params: dict[str, Any] = {}
    maybe(draw, params, "alpha", st.floats(-1.0, 1.0))
    maybe(draw, params, "gamma", st.floats(0.0, 4.0))
    reduction(draw, params)
    return Case({"input": floats(draw, shape), "target": floats(draw, shape, 0.0, 1.0)}, params)


@st.composite
def linear_cross_entropy(draw: Draw) -> Case:
    """(H,) or (N, H) inputs, a (C, H) or K-dimensional (C, d1, H) linear_weight, targets as
    class indices (some ignored) or class probabilities of the logits' shape."""
    hidden, classes = draw(st.integers(1, 4)), draw(st.integers(1, 5))
    batch = draw(st.sampled_from([(), (draw(st.integers(1, 4)),)]))
    out = (draw(st.integers(1, 3)),) if batch and draw(st.booleans()) else ()
    params: dict[str, Any] = {}
    logits_shape = (*batch, classes, *out)
    inputs = {
        "input": floats(draw, (*batch, hidden)),
        "linear_weight": floats(draw, (classes, *out, hidden), -2.0, 2.0),
    }
    if draw(st.booleans()):
        inputs["linear_bias"] = floats(draw, (classes, *out))
    if draw(st.booleans()):
        class_dim = 1 if batch else 0
        inputs["target"] = torch.softmax(floats(draw, logits_shape), dim=class_dim)
    else:
        target_shape = (*batch, *out)
        ignore = draw(st.sampled_from([None, -100, draw(st.integers(0, classes - 1))]))
        if ignore is None:
            inputs["target"] = ints(draw, target_shape, 0, classes - 1)
        else:
            params["ignore_index"] = ignore
            count = math.prod(target_shape)
            choices = [*range(classes), ignore]
            values = draw(st.lists(st.sampled_from(choices), min_size=count, max_size=count))
            inputs["target"] = torch.tensor(values, dtype=torch.int64).reshape(target_shape)
    if draw(st.booleans()):
        params["weight"] = floats(draw, (classes,), 0.1, 2.0)
    maybe(draw, params, "label_smoothing", st.floats(0.0, 1.0))
    reduction(draw, params)
    return Case(inputs, params)


def boxes(draw: Draw, shape: tuple[int, ...]) -> torch.Tensor:
    """Boxes (x1, y1, x2, y2) with x1 < x2 and y1 < y2, shape (*shape, 4)."""
    corner = floats(draw, (*shape, 2), -4.0, 4.0)
    size = floats(draw, (*shape, 2), 0.1, 4.0)
    return torch.cat([corner, corner + size], dim=-1)


@st.composite
def box_pair(draw: Draw) -> Case:
    shape = draw(st.sampled_from([(), (draw(st.integers(1, 4)),), (2, draw(st.integers(1, 3)))]))
    params: dict[str, Any] = {}
    maybe(draw, params, "eps", st.floats(1e-9, 1e-3))
    reduction(draw, params)
    first = boxes(draw, shape)
    # Sometimes the target overlaps the prediction, sometimes it is elsewhere.
    second = first + floats(draw, first.shape, -1.0, 1.0) if draw(st.booleans()) else None
    if second is None or not bool((second[..., 2:] > second[..., :2]).all()):
        second = boxes(draw, shape)
    return Case({"boxes1": first, "boxes2": second}, params)


CASES: dict[str, st.SearchStrategy[Case]] = {
    "complete_box_iou_loss": box_pair(),
    "distance_box_iou_loss": box_pair(),
    "generalized_box_iou_loss": box_pair(),
    "linear_cross_entropy": linear_cross_entropy(),
    "binary_cross_entropy": bce(),
    "binary_cross_entropy_with_logits": bce_with_logits(),
    "cosine_embedding_loss": cosine_embedding(),
    "cross_entropy": cross_entropy(),
    "ctc_loss": ctc(),
    "gaussian_nll_loss": gaussian_nll(),
    "hinge_embedding_loss": sign_target(margin=True),
    "huber_loss": huber(),
    "kl_div": kl_div(),
    "l1_loss": pointwise_regression(),
    "margin_ranking_loss": margin_ranking(),
    "mse_loss": pointwise_regression(),
    "multi_margin_loss": multi_margin(),
    "multilabel_margin_loss": multilabel_margin(),
    "multilabel_soft_margin_loss": multilabel_soft_margin(),
    "nll_loss": nll(),
    "poisson_nll_loss": poisson_nll(),
    "sigmoid_focal_loss": focal(),
    "smooth_l1_loss": smooth_l1(),
    "soft_margin_loss": sign_target(margin=False),
    "triplet_margin_loss": triplet_margin(),
    "triplet_margin_with_distance_loss": triplet_with_distance(),
}


# ---------------------------------------------------------------------------------------------
# The reference: torch.nn.functional called directly

DISTANCES: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
    "pairwise": F.pairwise_distance,
    "cosine": lambda x, y: 1.0 - F.cosine_similarity(x, y),
}


def function_of(name: str) -> Callable[..., torch.Tensor]:
    """The function a loss is defined by: torch.nn.functional's, or the torchvision loss
    written out in plain torch (the box losses are checked against an independent
    reference of torchvision's definition in tests/test_box_losses.py)."""
    if name in ECOSYSTEM_LOSSES:
        return ECOSYSTEM_LOSSES[name]
    fn: Callable[..., torch.Tensor] = getattr(F, name)
    return fn


def reference(
    name: str, case: Case, grad_names: list[str]
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The loss, and the gradients of it (of its sum when unreduced) w.r.t. ``grad_names``,
    from the torch function called with the case's tensors and params."""
    inputs = {n: t.detach().clone().requires_grad_(n in grad_names) for n, t in case.inputs.items()}
    params = dict(case.params)
    if "distance_function" in params:
        params["distance_function"] = DISTANCES[params["distance_function"]]
    var = inputs.get("var")
    if var is not None and var.dim() == 0:
        # torch's documented scalar var is a Python float; its gradient flows through the
        # broadcast torch makes of it (var * ones_like(input)).
        scalar_var = var * torch.ones_like(inputs["input"]) if "var" in grad_names else float(var)
        params["var"] = scalar_var
        inputs = {n: t for n, t in inputs.items() if n != "var"}
    loss = function_of(name)(**inputs, **params)
    grads: dict[str, torch.Tensor] = {}
    if grad_names:
        leaves = [var if n == "var" and var is not None else inputs[n] for n in grad_names]
        total = loss if loss.dim() == 0 else loss.sum()
        found = torch.autograd.grad(total, leaves, allow_unused=True)
        grads = {
            n: g if g is not None else torch.zeros_like(leaf)
            for n, g, leaf in zip(grad_names, found, leaves, strict=True)
        }
    return loss.detach(), grads
