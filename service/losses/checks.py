"""Range checks on index inputs, run on the CPU before torch sees them.

An out-of-range class index reaches a device-side assert on CUDA, which poisons the whole
CUDA context of the process; on the CPU it is an IndexError with an unhelpful message. Here it
becomes a 422 that names the field and the offending value.
"""

from __future__ import annotations

import torch

from service.errors import InvalidInput
from service.losses.catalogue import Params, Tensors


def _body(name: str) -> tuple[str, str]:
    return ("body", name)


def _classes(input_: torch.Tensor, class_dim: int) -> int:
    if input_.dim() == 0:
        raise InvalidInput.at(_body("input"), "input must have a class dimension, not be a scalar")
    return int(input_.shape[class_dim if input_.dim() > 1 else 0])


def require_in_range(
    name: str,
    values: torch.Tensor,
    low: int,
    high: int,
    what: str,
    allowed_extra: int | None = None,
) -> None:
    """Every value of ``values`` lies in [low, high) (or equals ``allowed_extra``)."""
    if values.numel() == 0:
        return
    bad = (values < low) | (values >= high)
    if allowed_extra is not None:
        bad &= values != allowed_extra
    if bool(bad.any()):
        position = [int(i) for i in torch.nonzero(bad)[0].tolist()]
        value = int(values[tuple(position)]) if values.dim() else int(values)
        extra = f" or {allowed_extra}" if allowed_extra is not None else ""
        raise InvalidInput.at(
            (*_body(name), *position),
            f"{what} {value} is out of range: must be in [{low}, {high}){extra}",
            "index_range",
        )


def class_index_target(tensors: Tensors, params: Params) -> None:
    """cross_entropy / nll_loss: each target is a class in [0, C) or ignore_index."""
    target = tensors["target"]
    if target.is_floating_point():
        return  # class probabilities: nothing to range-check
    classes = _classes(tensors["input"], 1)
    ignore_index = params.get("ignore_index", -100)
    require_in_range("target", target, 0, classes, "class index", allowed_extra=ignore_index)


def _margin_classes(input_: torch.Tensor) -> int:
    # torch reads a 0-d input of the margin losses as one sample of one class.
    return int(input_.shape[-1]) if input_.dim() else 1


def linear_class_target(tensors: Tensors, params: Params) -> None:
    """linear_cross_entropy: each target is a class in [0, C), C = linear_weight.shape[0], or
    ignore_index (-100 when not given)."""
    target, weight = tensors["target"], tensors["linear_weight"]
    if target.is_floating_point() or weight.dim() == 0:
        return  # class probabilities; or a weight torch refuses before any kernel
    ignore_index = params.get("ignore_index")
    require_in_range(
        "target",
        target,
        0,
        int(weight.shape[0]),
        "class index",
        allowed_extra=-100 if ignore_index is None else ignore_index,
    )


def multi_margin_target(tensors: Tensors, params: Params) -> None:
    classes = _margin_classes(tensors["input"])
    require_in_range("target", tensors["target"], 0, classes, "class index")
    if params.get("p", 1) not in (1, 2):
        raise InvalidInput.at(("body", "params", "p"), "only p = 1 or 2 is supported")


def multilabel_margin_target(tensors: Tensors, params: Params) -> None:
    """Targets are class indices, padded after the last one with -1."""
    classes = _margin_classes(tensors["input"])
    require_in_range("target", tensors["target"], -1, classes, "class index (or -1 padding)")


def probabilities_input(tensors: Tensors, params: Params) -> None:
    """binary_cross_entropy: torch asserts 0 <= input <= 1 inside the CUDA kernel."""
    input_ = tensors["input"]
    outside = (input_ < 0) | (input_ > 1)
    if bool(outside.any()):
        position = [int(i) for i in torch.nonzero(outside)[0].tolist()]
        value = float(input_[tuple(position)]) if input_.dim() else float(input_)
        raise InvalidInput.at(
            (*_body("input"), *position),
            f"probability {value} is outside [0, 1]; binary_cross_entropy takes probabilities "
            "(use binary_cross_entropy_with_logits for logits)",
            "probability_range",
        )


def ctc_indices(tensors: Tensors, params: Params) -> None:
    log_probs = tensors["log_probs"]
    targets, input_lengths, target_lengths = (
        tensors["targets"],
        tensors["input_lengths"],
        tensors["target_lengths"],
    )
    if log_probs.dim() not in (2, 3):
        raise InvalidInput.at(
            _body("log_probs"), "log_probs must have shape (T, N, C) or (T, C) for unbatched input"
        )
    steps, classes = int(log_probs.shape[0]), int(log_probs.shape[-1])
    blank = params.get("blank", 0)
    if not 0 <= blank < classes:
        raise InvalidInput.at(
            ("body", "params", "blank"), f"blank {blank} must be a class in [0, {classes})"
        )
    require_in_range("targets", targets, 0, classes, "label")
    require_in_range("input_lengths", input_lengths, 0, steps + 1, "input length")
    # Padded (N, S) targets; 1-D targets, batched or not, are the labels concatenated.
    if targets.dim() == 2:
        longest = int(targets.shape[-1])
        require_in_range("target_lengths", target_lengths, 0, longest + 1, "target length")
    else:
        require_in_range("target_lengths", target_lengths, 0, targets.numel() + 1, "target length")
        total = int(target_lengths.sum()) if target_lengths.numel() else 0
        if total != targets.numel():
            raise InvalidInput.at(
                _body("target_lengths"),
                f"concatenated targets hold {targets.numel()} labels but target_lengths add up "
                f"to {total}",
                "ctc_lengths",
            )
