"""Mistakes any loss can show: the sign, a weight, ignore_index or a param left out."""

from __future__ import annotations

from typing import Any

from service.grading.mistakes.base import (
    Alternative,
    Example,
    Facts,
    Mistake,
    scaled,
    some,
    variant,
)
from service.grading.mistakes.reductions import (
    CE,
    INDEX_TARGET_LOSSES,
    denominator,
    index_targets,
)
from service.grading.quantity import Quantity
from service.grading.reference import Reference

WEIGHTED_LOSSES = (
    "binary_cross_entropy",
    "binary_cross_entropy_with_logits",
    "cross_entropy",
    "nll_loss",
    "huber_loss",
    "l1_loss",
    "mse_loss",
    "multi_margin_loss",
    "multilabel_soft_margin_loss",
)
# Params with their own entries (or that pick what is computed rather than how).
NOT_IGNORABLE = ("reduction", "weight", "pos_weight", "ignore_index", "label_smoothing", "blank")

# ---------------------------------------------------------------------------------------------
# Sign, weights, params


def _flipped(reference: Reference) -> list[Alternative]:
    return [scaled(reference, -1.0)]


def _flipped_message(reference: Reference, quantity: Quantity, facts: Facts) -> str:
    if quantity.is_loss:
        text = "check the minus sign of the negative log-likelihood"
    else:
        text = "the gradient points the way the loss increases; a descent step goes against it"
    return f"your {quantity.label} has the opposite sign: {text}"


def _has_weight(reference: Reference) -> bool:
    return "weight" in reference.tensors


def _without_weight(reference: Reference) -> list[Alternative]:
    return some(variant(reference, weight=None))


def _weight_message(reference: Reference, quantity: Quantity, facts: Facts) -> str:
    return (
        f"your {quantity.label} is that of the loss without weight: each element's (or "
        "class's) loss is multiplied by its weight"
        + (
            f", and reduction 'mean' then divides by {denominator(reference)}"
            if reference.reduction == "mean" and reference.spec_name != "huber_loss"
            else ""
        )
    )


def _forgotten_ignore(reference: Reference) -> bool:
    target = index_targets(reference)
    ignore_index = reference.param("ignore_index")
    if target is None or not isinstance(ignore_index, int) or ignore_index < 0:
        return False
    return bool((target == ignore_index).any())


def _ignore_kept(reference: Reference) -> list[Alternative]:
    return some(variant(reference, ignore_index=-100))


def _ignore_message(reference: Reference, quantity: Quantity, facts: Facts) -> str:
    target = index_targets(reference)
    ignore_index = reference.param("ignore_index")
    count = 0 if target is None else int((target == ignore_index).sum())
    return (
        f"your {quantity.label} counts the {count} targets equal to ignore_index "
        f"({ignore_index}) as class {ignore_index}: those targets contribute nothing, and "
        f"'mean' divides by the number of the others"
    )


def _numeric_params(reference: Reference) -> list[tuple[str, Any, Any]]:
    out = []
    for spec_param in reference.call.spec.params:
        if spec_param.kind not in ("float", "int") or spec_param.name in NOT_IGNORABLE:
            continue
        value = reference.param(spec_param.name)
        if value is not None and spec_param.default is not None and value != spec_param.default:
            out.append((spec_param.name, value, spec_param.default))
    return out


def _param_defaults(reference: Reference) -> list[Alternative]:
    return some(
        *(
            variant(
                reference, {"param": name, "value": value, "default": default}, **{name: default}
            )
            for name, value, default in _numeric_params(reference)
        )
    )


def _param_message(reference: Reference, quantity: Quantity, facts: Facts) -> str:
    return (
        f"your {quantity.label} is that of {facts['param']}={facts['default']:g} (the default), "
        f"but this problem sets {facts['param']}={facts['value']:g}"
    )


def _flags(reference: Reference) -> list[tuple[str, bool]]:
    return [
        (p.name, bool(reference.param(p.name)))
        for p in reference.call.spec.params
        if p.kind == "bool" and p.name != "log_target"
    ]


def _flags_flipped(reference: Reference) -> list[Alternative]:
    return some(
        *(
            variant(reference, {"param": name, "value": value}, **{name: not value})
            for name, value in _flags(reference)
        )
    )


def _flag_message(reference: Reference, quantity: Quantity, facts: Facts) -> str:
    value = facts["value"]
    return (
        f"your {quantity.label} is that of {facts['param']}={not value}, but this problem sets "
        f"{facts['param']}={value}"
    )


MISTAKES = (
    Mistake(
        "sign_flipped",
        "The right magnitude with the opposite sign (the log-likelihood instead of its "
        "negative; the gradient of the loss's negative).",
        _flipped_message,
        Example(CE, "input"),
        applies=lambda r: True,
        recompute=_flipped,
    ),
    Mistake(
        "weight_ignored",
        "The `weight` param left out of the computation.",
        _weight_message,
        Example({**CE, "params": {"weight": [0.5, 2.0, 1.0]}}),
        losses=WEIGHTED_LOSSES,
        applies=_has_weight,
        recompute=_without_weight,
    ),
    Mistake(
        "ignore_index_forgotten",
        "Targets equal to ignore_index (a class index such as 0 for padding) counted as that "
        "class instead of left out.",
        _ignore_message,
        Example({**CE, "target": [0, 1], "params": {"ignore_index": 0}}),
        losses=INDEX_TARGET_LOSSES,
        applies=_forgotten_ignore,
        recompute=_ignore_kept,
    ),
    Mistake(
        "param_ignored",
        "A numeric param (margin, delta, beta, eps, p, alpha, gamma) left at its default where "
        "the problem sets another value.",
        _param_message,
        Example(
            {
                "loss": "hinge_embedding_loss",
                "input": [0.3, 1.2, 0.4],
                "target": [1, -1, -1],
                "params": {"margin": 2.0},
            }
        ),
        applies=lambda r: bool(_numeric_params(r)),
        recompute=_param_defaults,
    ),
    Mistake(
        "flag_flipped",
        "A boolean param (full, log_input, zero_infinity, swap) taken the other way.",
        _flag_message,
        Example({"loss": "poisson_nll_loss", "input": [0.5, 1.2, 2.0], "target": [1.0, 0.0, 3.0]}),
        applies=lambda r: bool(_flags(r)),
        recompute=_flags_flipped,
    ),
)
