"""Regression losses: mse_loss, l1_loss, huber_loss, smooth_l1_loss."""

from __future__ import annotations

import torch

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
from service.grading.quantity import Quantity
from service.grading.reference import Reference

Tensors = dict[str, torch.Tensor]

MSE = {"loss": "mse_loss", "input": [1.5, 2.0, 3.2, 0.1], "target": [1.0, 2.5, 2.8, 0.9]}
L1 = {**MSE, "loss": "l1_loss"}
HUBER = {
    "loss": "huber_loss",
    "input": [1.5, 2.0, 3.2, 0.1],
    "target": [1.0, 2.5, 0.8, 0.9],
    "params": {"delta": 2.0},
}
SMOOTH = {**HUBER, "loss": "smooth_l1_loss", "params": {"beta": 0.5}}


def _weighted(reference: Reference, t: Tensors, per: torch.Tensor) -> torch.Tensor:
    """Element losses weighted and reduced as mse_loss and l1_loss do ('mean' with weight
    divides by the weights' sum)."""
    weight = t.get("weight")
    if weight is None:
        return reduce_like(reference, per)
    per = per * weight
    return (
        per.sum() / weight.sum() if reference.reduction == "mean" else reduce_like(reference, per)
    )


def _reduced_mean_or_sum(reference: Reference) -> bool:
    return reference.reduction in ("mean", "sum")


def _rmse(reference: Reference) -> list[Alternative]:
    def formula(t: Tensors) -> torch.Tensor:
        return torch.sqrt(_weighted(reference, t, (t["input"] - t["target"]) ** 2))

    return some(recomputed(reference, formula))


def _rmse_message(reference: Reference, quantity: Quantity, facts: Facts) -> str:
    what = "the root of the mean squared error (RMSE)"
    if reference.reduction == "sum":
        what = "the root of the summed squared error (the norm of the difference)"
    return f"your {quantity.label} is that of {what}: mse_loss is the squared error, no root"


def _squared(reference: Reference) -> list[Alternative]:
    def formula(t: Tensors) -> torch.Tensor:
        return _weighted(reference, t, (t["input"] - t["target"]) ** 2)

    return some(recomputed(reference, formula))


def _squared_message(reference: Reference, quantity: Quantity, facts: Facts) -> str:
    return (
        f"your {quantity.label} is that of the squared error (mse_loss): l1_loss takes the "
        "absolute error |input - target|, whose gradient is sign(input - target)"
    )


def _absolute(reference: Reference) -> list[Alternative]:
    def formula(t: Tensors) -> torch.Tensor:
        return _weighted(reference, t, (t["input"] - t["target"]).abs())

    return some(recomputed(reference, formula))


def _absolute_message(reference: Reference, quantity: Quantity, facts: Facts) -> str:
    return (
        f"your {quantity.label} is that of the absolute error (l1_loss): mse_loss squares the "
        "difference, (input - target)^2"
    )


def _half_gradient(reference: Reference) -> list[Alternative]:
    return [scaled(reference, 0.5, loss=False)]


def _half_message(reference: Reference, quantity: Quantity, facts: Facts) -> str:
    return (
        f"your {quantity.label} is half the reference: the derivative of (input - target)^2 is "
        "2 (input - target), the factor 2 is part of it"
    )


def _delta(reference: Reference) -> float:
    return float(reference.param("delta"))


def _beta(reference: Reference) -> float:
    return float(reference.param("beta"))


def _huber_as_smooth(reference: Reference) -> list[Alternative]:
    return [scaled(reference, 1.0 / _delta(reference))]


def _huber_as_smooth_message(reference: Reference, quantity: Quantity, facts: Facts) -> str:
    delta = _delta(reference)
    return (
        f"your {quantity.label} is that of smooth_l1_loss with beta={delta:g}, which is "
        f"huber_loss divided by delta: huber_loss is 0.5 d^2 where |d| < delta and "
        f"delta (|d| - 0.5 delta) elsewhere, {delta:g} times smooth_l1_loss"
    )


def _smooth_as_huber(reference: Reference) -> list[Alternative]:
    return [scaled(reference, _beta(reference))]


def _smooth_as_huber_message(reference: Reference, quantity: Quantity, facts: Facts) -> str:
    beta = _beta(reference)
    return (
        f"your {quantity.label} is that of huber_loss with delta={beta:g}, which is beta times "
        f"smooth_l1_loss: smooth_l1_loss is 0.5 d^2 / beta where |d| < beta and |d| - 0.5 beta "
        "elsewhere"
    )


def _beta_confused(reference: Reference) -> list[Alternative]:
    if reference.spec_name == "huber_loss":
        name, value = "delta", _delta(reference)
    else:
        name, value = "beta", _beta(reference)
    out = some(variant(reference, {"kind": "inverse", "name": name}, **{name: 1.0 / value}))
    if name == "beta":

        def formula(t: Tensors) -> torch.Tensor:
            d = (t["input"] - t["target"]).abs()
            per = torch.where(d < value, 0.5 * d * d, d - 0.5 * value)  # no division by beta
            return reduce_like(reference, per)

        out += some(recomputed(reference, formula, {"kind": "undivided", "name": name}))
    return out


def _beta_message(reference: Reference, quantity: Quantity, facts: Facts) -> str:
    name = facts["name"]
    value = _delta(reference) if name == "delta" else _beta(reference)
    if facts["kind"] == "inverse":
        return (
            f"your {quantity.label} is that of {name}={1 / value:g}, the inverse of {name}="
            f"{value:g}: {name} is the width of the quadratic zone, not its curvature"
        )
    return (
        f"your {quantity.label} leaves out the division by beta in the quadratic zone: "
        "smooth_l1_loss is 0.5 d^2 / beta where |d| < beta"
    )


def _param_not_one(name: str) -> object:
    def applies(reference: Reference) -> bool:
        value = reference.param(name)
        return value is not None and float(value) not in (1.0, 0.0)

    return applies


MISTAKES = (
    Mistake(
        "rmse_instead_of_mse",
        "The root of the mean squared error (`torch.sqrt(((x - y) ** 2).mean())`) where "
        "mse_loss asks for the mean squared error.",
        _rmse_message,
        Example(MSE),
        losses=("mse_loss",),
        applies=_reduced_mean_or_sum,
        recompute=_rmse,
    ),
    Mistake(
        "absolute_error_in_mse",
        "The absolute error `|x - y|` where mse_loss squares the difference.",
        _absolute_message,
        Example(MSE),
        losses=("mse_loss",),
        recompute=_absolute,
    ),
    Mistake(
        "mse_gradient_missing_2",
        "The gradient of mse_loss without the factor 2: `(x - y) / n` instead of `2 (x - y) / n`.",
        _half_message,
        Example(MSE, "input"),
        losses=("mse_loss",),
        on_loss=False,
        recompute=_half_gradient,
    ),
    Mistake(
        "squared_error_in_mae",
        "The squared error `(x - y) ** 2` where l1_loss takes the absolute error.",
        _squared_message,
        Example(L1),
        losses=("l1_loss",),
        recompute=_squared,
    ),
    Mistake(
        "huber_as_smooth_l1",
        "huber_loss computed as smooth_l1_loss with beta=delta, which is huber_loss divided by "
        "delta.",
        _huber_as_smooth_message,
        Example(HUBER),
        losses=("huber_loss",),
        applies=_param_not_one("delta"),  # type: ignore[arg-type]
        recompute=_huber_as_smooth,
    ),
    Mistake(
        "smooth_l1_as_huber",
        "smooth_l1_loss computed as huber_loss with delta=beta, which is beta times "
        "smooth_l1_loss.",
        _smooth_as_huber_message,
        Example(SMOOTH),
        losses=("smooth_l1_loss",),
        applies=_param_not_one("beta"),  # type: ignore[arg-type]
        recompute=_smooth_as_huber,
    ),
    Mistake(
        "beta_confused",
        "smooth_l1_loss's beta (huber_loss's delta) taken as its inverse, or the quadratic "
        "zone of smooth_l1_loss not divided by beta.",
        _beta_message,
        Example(SMOOTH),
        losses=("smooth_l1_loss", "huber_loss"),
        applies=lambda r: (
            float(r.param("beta" if r.spec_name == "smooth_l1_loss" else "delta")) not in (1.0, 0.0)
        ),
        recompute=_beta_confused,
    ),
)
