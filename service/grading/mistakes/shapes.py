"""Right values in the wrong arrangement: transposed, flattened, a dimension of size one too
many or too few, the unreduced losses, CTC's batch-first layout."""

from __future__ import annotations

import numpy as np

from service.grading.compare import Array
from service.grading.mistakes.base import Alternative, Example, Facts, Mistake, values_of
from service.grading.quantity import LOSS, Quantity
from service.grading.reference import Reference

Shape = tuple[int, ...]
CE = {"loss": "cross_entropy", "input": [[1.2, 0.4, -0.5], [0.8, 1.9, -1.2]], "target": [2, 1]}
MSE_NONE = {
    "loss": "mse_loss",
    "input": [[1.5, 2.0], [3.2, 0.1]],
    "target": [[1.0, 2.5], [2.8, 0.9]],
    "params": {"reduction": "none"},
}


def _shape(dims: Shape) -> str:
    return "[" + ", ".join(str(d) for d in dims) + "]"


def _one(name: str, value: Array, **facts: object) -> list[Alternative]:
    return [Alternative({name: value}, facts)]


# ---------------------------------------------------------------------------------------------


def _transposed(
    reference: Reference, name: str, expected: Array, shape: Shape
) -> list[Alternative]:
    if expected.ndim < 2 or shape != expected.shape[::-1]:
        return []
    return _one(name, expected.T)


def _square_transposed(reference: Reference) -> list[Alternative]:
    """A square 2-D gradient (or unreduced loss) has the shape of its transpose."""
    values = {LOSS: reference.loss} | reference.grads
    square = {n: v.T for n, v in values.items() if v.ndim == 2 and v.shape[0] == v.shape[1]}
    return [Alternative(square)] if square else []


def _transposed_message(reference: Reference, quantity: Quantity, facts: Facts) -> str:
    return (
        f"your {quantity.label} is the transpose of the right answer: return it in the shape "
        "and order of the input it belongs to (a gradient has the shape of its input)"
    )


def _squeezed(shape: Shape) -> Shape:
    return tuple(d for d in shape if d != 1)


def _flattened(reference: Reference, name: str, expected: Array, shape: Shape) -> list[Alternative]:
    if len(_squeezed(expected.shape)) < 2 or shape != (expected.size,):
        return []
    return _one(name, expected.reshape(-1))


def _flattened_message(reference: Reference, quantity: Quantity, facts: Facts) -> str:
    return (
        f"your {quantity.label} has the right values flattened to one dimension: keep the "
        f"shape {_shape(quantity.expected.shape)}"
        + (" (reduction 'none' keeps the input's shape)" if quantity.is_loss else "")
    )


def _kept_dim(reference: Reference, name: str, expected: Array, shape: Shape) -> list[Alternative]:
    if shape == expected.shape or _squeezed(shape) != _squeezed(expected.shape):
        return []
    if len(_squeezed(expected.shape)) >= 2 and len(shape) == 1:
        return []  # flattened
    return _one(name, expected.reshape(shape))


def _kept_dim_message(reference: Reference, quantity: Quantity, facts: Facts) -> str:
    more = len(quantity.submitted.shape) > len(quantity.expected.shape)
    which = "a dimension of size 1 too many" if more else "a dimension of size 1 too few"
    hint = " (keepdim=True, or a [value] list for a number)" if more else ""
    return (
        f"your {quantity.label} has the right values with {which}{hint}: its shape must be "
        f"{_shape(quantity.expected.shape)}, not {_shape(quantity.submitted.shape)}"
    )


def _unreduced(reference: Reference, name: str, expected: Array, shape: Shape) -> list[Alternative]:
    if name != LOSS or reference.reduction in (None, "none") or expected.ndim != 0:
        return []
    result = reference.variant(reduction="none")
    if result is None or tuple(result.loss.shape) != shape or result.loss.numel() < 2:
        return []
    return [values_of(reference, result.loss, {})]


def _unreduced_message(reference: Reference, quantity: Quantity, facts: Facts) -> str:
    return (
        f"your {quantity.label} is the losses of each element, not reduced: reduction "
        f"'{reference.reduction}' asks for one number"
    )


def _reduced(reference: Reference, name: str, expected: Array, shape: Shape) -> list[Alternative]:
    if name != LOSS or reference.reduction != "none" or expected.size < 2 or len(shape) > 1:
        return []
    if shape and shape != (1,):
        return []
    out = []
    for other in ("mean", "sum"):
        result = reference.variant(reduction=other)
        if result is not None:
            value = values_of(reference, result.loss, {}).values[LOSS].reshape(shape)
            out.append(Alternative({LOSS: value}, {"other": other}))
    return out


def _reduced_message(reference: Reference, quantity: Quantity, facts: Facts) -> str:
    return (
        f"your {quantity.label} is the {facts['other']} of the losses: reduction 'none' asks "
        f"for every element's loss, shape {_shape(quantity.expected.shape)}"
    )


def _ctc_layout(
    reference: Reference, name: str, expected: Array, shape: Shape
) -> list[Alternative]:
    if name != "log_probs" or expected.ndim != 3:
        return []
    if shape != (expected.shape[1], expected.shape[0], expected.shape[2]):
        return []
    return _one(name, np.swapaxes(expected, 0, 1))


def _ctc_square(reference: Reference) -> list[Alternative]:
    grad = reference.grads.get("log_probs")
    if grad is None or grad.ndim != 3 or grad.shape[0] != grad.shape[1]:
        return []
    return _one("log_probs", np.swapaxes(grad, 0, 1))


def _ctc_message(reference: Reference, quantity: Quantity, facts: Facts) -> str:
    return (
        f"your {quantity.label} is laid out batch first, (N, T, C): ctc_loss's log_probs are "
        "time first, (T, N, C), and so is their gradient"
    )


CTC_LOG_PROBS = [
    [[-1.2, -0.9, -1.3], [-0.7, -1.5, -1.2]],
    [[-1.0, -1.1, -1.2], [-1.3, -0.8, -1.2]],
    [[-0.9, -1.4, -1.0], [-1.1, -1.2, -1.0]],
    [[-1.5, -0.6, -1.4], [-1.0, -1.0, -1.3]],
]
CTC = {
    "loss": "ctc_loss",
    "log_probs": CTC_LOG_PROBS,
    "targets": [[1, 2], [2, 2]],
    "input_lengths": [4, 4],
    "target_lengths": [2, 1],
}


def _swap01(reference: Reference) -> Array:
    return np.swapaxes(reference.grads["log_probs"], 0, 1)


MISTAKES = (
    Mistake(
        "transposed",
        "A gradient (or unreduced loss) returned transposed.",
        _transposed_message,
        Example(CE, "input", submit=lambda r: r.grads["input"].T),
        reshape=_transposed,
        recompute=_square_transposed,
    ),
    Mistake(
        "flattened",
        "A gradient or a reduction='none' loss returned flattened to one dimension.",
        _flattened_message,
        Example(MSE_NONE, submit=lambda r: r.loss.reshape(-1)),
        reshape=_flattened,
    ),
    Mistake(
        "kept_dim",
        "The right values with a dimension of size 1 too many or too few (keepdim=True, a "
        "number sent as a one-element list).",
        _kept_dim_message,
        Example({**MSE_NONE, "params": {}}, submit=lambda r: r.loss.reshape(1)),
        reshape=_kept_dim,
    ),
    Mistake(
        "unreduced",
        "The per-element losses returned where the reduction asks for one number.",
        _unreduced_message,
        Example({**MSE_NONE, "params": {}}, submit=lambda r: _none_loss(r)),
        on_grad=False,
        reshape=_unreduced,
    ),
    Mistake(
        "reduced_when_none",
        "One number (the mean or the sum) returned where reduction 'none' asks for every "
        "element's loss.",
        _reduced_message,
        Example(MSE_NONE, submit=lambda r: np.asarray(r.loss.mean())),
        on_grad=False,
        reshape=_reduced,
    ),
    Mistake(
        "ctc_batch_first",
        "ctc_loss's log_probs gradient laid out batch first (N, T, C) instead of (T, N, C).",
        _ctc_message,
        Example(CTC, "log_probs", submit=_swap01),
        losses=("ctc_loss",),
        on_loss=False,
        reshape=_ctc_layout,
        recompute=_ctc_square,
    ),
)


def _none_loss(reference: Reference) -> Array:
    result = reference.variant(reduction="none")
    assert result is not None
    return values_of(reference, result.loss, {}).values[LOSS]
