"""cross_entropy and nll_loss: what goes in (logits, probabilities), label smoothing, and the
gradient with respect to the logits (also of binary_cross_entropy_with_logits)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from service.grading.mistakes.base import (
    Alternative,
    Example,
    Facts,
    Mistake,
    recomputed,
    reduce_like,
    some,
    variant,
)
from service.grading.mistakes.reductions import index_targets
from service.grading.quantity import Quantity
from service.grading.reference import Reference, as_array

Tensors = dict[str, torch.Tensor]

CE = {"loss": "cross_entropy", "input": [[1.2, 0.4, -0.5], [0.8, 1.9, -1.2]], "target": [2, 1]}
BCE = {"loss": "binary_cross_entropy", "input": [0.9, 0.2, 0.6], "target": [1.0, 0.0, 0.0]}
BCEL = {
    "loss": "binary_cross_entropy_with_logits",
    "input": [1.2, -0.4, 0.7],
    "target": [1.0, 0.0, 0.0],
}


def _class_dim(reference: Reference) -> int:
    return 1 if reference.tensors["input"].dim() >= 2 else 0


def _ce_kwargs(reference: Reference, t: Tensors) -> dict[str, object]:
    return {
        "weight": t.get("weight"),
        "ignore_index": int(reference.param("ignore_index")),
        "reduction": reference.reduction or "mean",
    }


# ---------------------------------------------------------------------------------------------
# cross_entropy


def _softmax_first(reference: Reference) -> list[Alternative]:
    dim = _class_dim(reference)

    def formula(t: Tensors) -> torch.Tensor:
        smoothing = float(reference.param("label_smoothing") or 0.0)
        return F.cross_entropy(
            F.softmax(t["input"], dim),
            t["target"],
            label_smoothing=smoothing,
            **_ce_kwargs(reference, t),  # type: ignore[arg-type]
        )

    return some(recomputed(reference, formula))


def _softmax_first_message(reference: Reference, quantity: Quantity, facts: Facts) -> str:
    return (
        f"your {quantity.label} is that of cross_entropy applied to softmax probabilities: "
        "cross_entropy takes raw logits and applies log_softmax itself, so the softmax was "
        "applied twice"
    )


def _no_smoothing_index(reference: Reference) -> bool:
    return index_targets(reference) is not None and not reference.param("label_smoothing")


def _nll_of_probabilities(reference: Reference) -> list[Alternative]:
    dim = _class_dim(reference)

    def formula(t: Tensors) -> torch.Tensor:
        return F.nll_loss(
            F.softmax(t["input"], dim),
            t["target"],
            **_ce_kwargs(reference, t),  # type: ignore[arg-type]
        )

    return some(recomputed(reference, formula))


def _nll_message(reference: Reference, quantity: Quantity, facts: Facts) -> str:
    return (
        f"your {quantity.label} is that of nll_loss fed probabilities (softmax): nll_loss "
        "takes log-probabilities, so use log_softmax (cross_entropy is log_softmax then "
        "nll_loss)"
    )


def _without_smoothing(reference: Reference) -> list[Alternative]:
    return some(variant(reference, label_smoothing=0.0))


def _smoothing_message(reference: Reference, quantity: Quantity, facts: Facts) -> str:
    smoothing = float(reference.param("label_smoothing"))
    return (
        f"your {quantity.label} is that of the loss without label smoothing: with "
        f"label_smoothing={smoothing:g} the target mixes {1 - smoothing:g} of the one-hot "
        f"target with {smoothing:g} of the uniform distribution over the classes"
    )


def _smoothing_over_others(reference: Reference) -> list[Alternative]:
    dim = _class_dim(reference)
    smoothing = float(reference.param("label_smoothing"))
    ignore_index = int(reference.param("ignore_index"))

    def formula(t: Tensors) -> torch.Tensor:
        logits, target = t["input"], t["target"]
        classes = logits.shape[dim]
        valid = target != ignore_index
        onehot = F.one_hot(torch.where(valid, target, 0), classes).movedim(-1, dim)
        q = (1 - smoothing) * onehot + smoothing / (classes - 1) * (1 - onehot)
        per = -(q * F.log_softmax(logits, dim)).sum(dim) * valid
        if reference.reduction == "mean":
            return per.sum() / valid.sum()
        return reduce_like(reference, per)

    return some(recomputed(reference, formula))


def _others_message(reference: Reference, quantity: Quantity, facts: Facts) -> str:
    smoothing = float(reference.param("label_smoothing"))
    return (
        f"your {quantity.label} spreads the smoothing mass {smoothing:g} over the C - 1 other "
        f"classes; PyTorch spreads it over all C classes: the target class gets "
        f"1 - {smoothing:g} + {smoothing:g}/C and every other class {smoothing:g}/C"
    )


def _smoothed_unweighted(reference: Reference) -> bool:
    return (
        bool(reference.param("label_smoothing"))
        and index_targets(reference) is not None
        and "weight" not in reference.tensors
    )


# ---------------------------------------------------------------------------------------------
# The gradient with respect to the logits


def _per_sample_factor(reference: Reference) -> tuple[torch.Tensor, torch.Tensor] | None:
    """(the target distribution, each sample's factor in the gradient (p - target) * factor)
    for cross_entropy without label smoothing; None when it has no such form."""
    x = reference.tensors["input"]
    dim = _class_dim(reference)
    target = reference.tensors["target"]
    if target.is_floating_point():
        if "weight" in reference.tensors:
            return None
        count = x.numel() // x.shape[dim]
        scale = 1.0 / count if reference.reduction == "mean" else 1.0
        return target, torch.full(x.shape[:dim] + x.shape[dim + 1 :], scale, dtype=x.dtype)
    ignore_index = int(reference.param("ignore_index"))
    valid = target != ignore_index
    safe = torch.where(valid, target, 0)
    weight = reference.tensors.get("weight")
    w = (weight[safe] if weight is not None else torch.ones(safe.shape, dtype=x.dtype)) * valid
    if reference.reduction == "mean":
        w = w / w.sum()
    onehot = F.one_hot(safe, x.shape[dim]).movedim(-1, dim).to(x.dtype)
    return onehot, w


def _ce_gradient(reference: Reference, of_probabilities: bool) -> list[Alternative]:
    if reference.param("label_smoothing"):
        return []
    parts = _per_sample_factor(reference)
    if parts is None:
        return []
    target, factor = parts
    dim = _class_dim(reference)
    p = F.softmax(reference.tensors["input"], dim)
    factor = factor.unsqueeze(dim)
    grad = -(target / p) * factor if of_probabilities else p * factor
    return [Alternative({"input": as_array(grad)})]


def _bce_logits_gradient(reference: Reference, of_probabilities: bool) -> list[Alternative]:
    t = reference.tensors
    if "pos_weight" in t:
        return []
    x, y = t["input"], t["target"]
    s = torch.sigmoid(x)
    weight = t.get("weight")
    w = (weight if weight is not None else torch.ones_like(x)) * torch.ones_like(y)
    if reference.reduction == "mean":
        w = w / w.numel()
    grad = -(y / s - (1 - y) / (1 - s)) * w if of_probabilities else s * w
    return [Alternative({"input": as_array(grad)})]


def _without_target(reference: Reference) -> list[Alternative]:
    if reference.spec_name == "cross_entropy":
        return _ce_gradient(reference, of_probabilities=False)
    return _bce_logits_gradient(reference, of_probabilities=False)


def _of_probabilities(reference: Reference) -> list[Alternative]:
    if reference.spec_name == "cross_entropy":
        return _ce_gradient(reference, of_probabilities=True)
    return _bce_logits_gradient(reference, of_probabilities=True)


def _activation(reference: Reference) -> str:
    return "softmax(input)" if reference.spec_name == "cross_entropy" else "sigmoid(input)"


def _without_target_message(reference: Reference, quantity: Quantity, facts: Facts) -> str:
    p = _activation(reference)
    return (
        f"your {quantity.label} is p = {p} (scaled by the reduction) without subtracting the "
        f"target: through the {p.split('(')[0]} the gradient with respect to the logits is "
        "p - y"
    )


def _of_probabilities_message(reference: Reference, quantity: Quantity, facts: Facts) -> str:
    p = _activation(reference)
    return (
        f"your {quantity.label} is the gradient with respect to the probabilities p = {p}; "
        f"the input is the logits, so chain it through the {p.split('(')[0]}: the gradient "
        "with respect to the logits is p - y"
    )


MISTAKES = (
    Mistake(
        "softmax_before_cross_entropy",
        "softmax applied to the logits before cross_entropy, which applies log_softmax itself.",
        _softmax_first_message,
        Example(CE),
        losses=("cross_entropy",),
        recompute=_softmax_first,
    ),
    Mistake(
        "nll_fed_probabilities",
        "cross_entropy computed as nll_loss of softmax probabilities (`-p[y]`) instead of "
        "log-probabilities (log_softmax).",
        _nll_message,
        Example(CE),
        losses=("cross_entropy",),
        applies=_no_smoothing_index,
        recompute=_nll_of_probabilities,
    ),
    Mistake(
        "label_smoothing_ignored",
        "label_smoothing left out.",
        _smoothing_message,
        Example({**CE, "params": {"label_smoothing": 0.2}}),
        losses=("cross_entropy",),
        applies=lambda r: bool(r.param("label_smoothing")),
        recompute=_without_smoothing,
    ),
    Mistake(
        "label_smoothing_over_c_minus_1",
        "The label-smoothing mass spread over the C - 1 other classes instead of all C.",
        _others_message,
        Example({**CE, "params": {"label_smoothing": 0.2}}),
        losses=("cross_entropy",),
        applies=_smoothed_unweighted,
        recompute=_smoothing_over_others,
    ),
    Mistake(
        "gradient_without_target",
        "The gradient with respect to the logits taken as the probabilities p (softmax or "
        "sigmoid) instead of p - y.",
        _without_target_message,
        Example(CE, "input"),
        losses=("cross_entropy", "binary_cross_entropy_with_logits"),
        on_loss=False,
        recompute=_without_target,
    ),
    Mistake(
        "gradient_wrt_probabilities",
        "The gradient with respect to the probabilities (`-y / p`) where the gradient with "
        "respect to the logits is asked.",
        _of_probabilities_message,
        Example(CE, "input"),
        losses=("cross_entropy", "binary_cross_entropy_with_logits"),
        on_loss=False,
        recompute=_of_probabilities,
    ),
)
