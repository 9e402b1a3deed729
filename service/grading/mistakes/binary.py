"""Binary and log-based losses: binary_cross_entropy (with logits), the logarithm's base."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from service.grading.mistakes.base import (
    Alternative,
    Example,
    Facts,
    Mistake,
    recomputed,
    reduce_like,
    scaled,
    some,
    variant,
)
from service.grading.mistakes.cross_entropy import BCE, BCEL, CE
from service.grading.quantity import LOSS, Quantity
from service.grading.reference import Reference, as_array

Tensors = dict[str, torch.Tensor]

LOG_LOSSES = (
    "cross_entropy",
    "binary_cross_entropy",
    "binary_cross_entropy_with_logits",
    "soft_margin_loss",
    "multilabel_soft_margin_loss",
)
EPSILONS = (1e-7, 1e-8, 1e-9, 1e-10, 1e-12, 1e-15, 1e-6, 1e-5)

# ---------------------------------------------------------------------------------------------
# Logarithms


def _other_bases(reference: Reference) -> list[Alternative]:
    return [
        scaled(reference, 1 / math.log(10), base="10"),
        scaled(reference, 1 / math.log(2), base="2"),
    ]


def _base_message(reference: Reference, quantity: Quantity, facts: Facts) -> str:
    base = facts["base"]
    return (
        f"your {quantity.label} uses log base {base} (log{base}); PyTorch's losses use the "
        f"natural logarithm (torch.log), so yours is ln({base}) times too small"
    )


def _bce_epsilons(reference: Reference) -> list[Alternative]:
    t = reference.tensors
    x, y = t["input"], t["target"]
    weight = t.get("weight")
    w = weight if weight is not None else torch.ones((), dtype=x.dtype)
    scale = 1.0 / (x * y * w).numel()  # the broadcast shape's size
    if reference.reduction != "mean":
        scale = 1.0
    out = []
    for eps in EPSILONS:
        shifted = -w * (y * torch.log(x + eps) + (1 - y) * torch.log(1 - x + eps))
        grad = -w * (y / (x + eps) - (1 - y) / (1 - x + eps)) * scale
        out.append(_loss_and_grad(reference, shifted, grad, {"eps": eps, "form": "shift"}))
        c = x.clamp(eps, 1 - eps)
        clipped = -w * (y * torch.log(c) + (1 - y) * torch.log(1 - c))
        grad = -w * (y / c - (1 - y) / (1 - c)) * scale
        inside = ((x >= eps) & (x <= 1 - eps)).to(x.dtype)
        out.append(_loss_and_grad(reference, clipped, grad, {"eps": eps, "form": "clip"}))
        out.append(_loss_and_grad(reference, None, grad * inside, {"eps": eps, "form": "clip"}))
    return out


def _loss_and_grad(
    reference: Reference, per: torch.Tensor | None, grad: torch.Tensor, facts: Facts
) -> Alternative:
    values = {"input": as_array(grad)}
    if per is not None:
        values[LOSS] = as_array(reduce_like(reference, per))
    return Alternative(values, facts)


def _eps_message(reference: Reference, quantity: Quantity, facts: Facts) -> str:
    eps = facts["eps"]
    how = (
        f"log(p + {eps:g})" if facts["form"] == "shift" else f"p clipped to [{eps:g}, 1 - {eps:g}]"
    )
    return (
        f"your {quantity.label} uses {how} to avoid log(0); PyTorch's binary_cross_entropy "
        "computes the exact log and clamps it at -100 (its gradient divides by "
        "max(p (1 - p), 1e-12))"
    )


# ---------------------------------------------------------------------------------------------
# binary_cross_entropy_with_logits


def _sigmoid_first(reference: Reference) -> list[Alternative]:
    def formula(t: Tensors) -> torch.Tensor:
        return F.binary_cross_entropy_with_logits(
            torch.sigmoid(t["input"]),
            t["target"],
            weight=t.get("weight"),
            pos_weight=t.get("pos_weight"),
            reduction=reference.reduction or "mean",
        )

    return some(recomputed(reference, formula))


def _sigmoid_message(reference: Reference, quantity: Quantity, facts: Facts) -> str:
    return (
        f"your {quantity.label} is that of binary_cross_entropy_with_logits applied to "
        "sigmoid(input): it takes raw logits and applies the sigmoid itself (use "
        "binary_cross_entropy for probabilities)"
    )


def _has_pos_weight(reference: Reference) -> bool:
    return "pos_weight" in reference.tensors


def _pos_weight_ignored(reference: Reference) -> list[Alternative]:
    return some(variant(reference, pos_weight=None))


def _pos_ignored_message(reference: Reference, quantity: Quantity, facts: Facts) -> str:
    return (
        f"your {quantity.label} leaves pos_weight out: it multiplies the positive term, "
        "-pos_weight y log(sigmoid(x)) - (1 - y) log(1 - sigmoid(x))"
    )


def _pos_on_negative(reference: Reference) -> list[Alternative]:
    def formula(t: Tensors) -> torch.Tensor:
        x, y = t["input"], t["target"]
        per = -(y * F.logsigmoid(x) + t["pos_weight"] * (1 - y) * F.logsigmoid(-x))
        weight = t.get("weight")
        return reduce_like(reference, per if weight is None else per * weight)

    return some(recomputed(reference, formula))


def _pos_negative_message(reference: Reference, quantity: Quantity, facts: Facts) -> str:
    return (
        f"your {quantity.label} applies pos_weight to the negative term; it multiplies the "
        "positive term: -pos_weight y log(sigmoid(x)) - (1 - y) log(1 - sigmoid(x))"
    )


MISTAKES = (
    Mistake(
        "log_base",
        "A logarithm in base 10 or 2 (`np.log10`, `math.log2`) where the losses use the "
        "natural logarithm.",
        _base_message,
        Example(CE),
        losses=LOG_LOSSES,
        recompute=_other_bases,
    ),
    Mistake(
        "bce_log_eps",
        "`log(p + eps)` or p clipped to [eps, 1 - eps] instead of binary_cross_entropy's clamp "
        "of each log at -100.",
        _eps_message,
        Example({**BCE, "input": [0.0, 0.2, 0.9], "target": [1.0, 0.0, 1.0]}),
        losses=("binary_cross_entropy",),
        recompute=_bce_epsilons,
        refines=("bce_log_clamp",),
    ),
    Mistake(
        "sigmoid_before_bce_with_logits",
        "sigmoid applied before binary_cross_entropy_with_logits, which applies it itself.",
        _sigmoid_message,
        Example(BCEL),
        losses=("binary_cross_entropy_with_logits",),
        recompute=_sigmoid_first,
    ),
    Mistake(
        "pos_weight_ignored",
        "pos_weight left out.",
        _pos_ignored_message,
        Example({**BCEL, "params": {"pos_weight": [3.0]}}),
        losses=("binary_cross_entropy_with_logits",),
        applies=_has_pos_weight,
        recompute=_pos_weight_ignored,
    ),
    Mistake(
        "pos_weight_on_negative",
        "pos_weight applied to the negative term `(1 - y) log(1 - p)` instead of the positive one.",
        _pos_negative_message,
        Example({**BCEL, "params": {"pos_weight": [3.0]}}),
        losses=("binary_cross_entropy_with_logits",),
        applies=_has_pos_weight,
        recompute=_pos_on_negative,
    ),
)
