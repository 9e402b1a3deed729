"""The reduction: sum or mean, what the mean divides by."""

from __future__ import annotations

from typing import Any

import torch

from service.grading.mistakes.base import (
    Alternative,
    Example,
    Facts,
    Mistake,
    some,
    variant,
)
from service.grading.quantity import Quantity
from service.grading.reference import Reference, as_array

INDEX_TARGET_LOSSES = ("cross_entropy", "nll_loss")
WEIGHT_MEAN_LOSSES = ("mse_loss", "l1_loss")  # 'mean' with weight divides by the weights' sum

CE = {"loss": "cross_entropy", "input": [[1.2, 0.4, -0.5], [0.8, 1.9, -1.2]], "target": [2, 1]}
MSE = {"loss": "mse_loss", "input": [1.5, 2.0, 3.2], "target": [1.0, 2.5, 2.8]}


# ---------------------------------------------------------------------------------------------
# What the mean divides by


def index_targets(reference: Reference) -> torch.Tensor | None:
    if reference.spec_name not in INDEX_TARGET_LOSSES:
        return None
    target = reference.tensors.get("target")
    return None if target is None or target.is_floating_point() else target


def valid_targets(reference: Reference, target: torch.Tensor) -> torch.Tensor:
    ignore_index = reference.param("ignore_index")
    return target[target != ignore_index] if isinstance(ignore_index, int) else target.flatten()


def denominator(reference: Reference) -> str:
    """What reduction 'mean' divides the summed loss by, in words and number."""
    if "denominator" not in reference.memo:
        reference.memo["denominator"] = _denominator(reference)
    text: str = reference.memo["denominator"]
    return text


def _denominator(reference: Reference) -> str:
    target = index_targets(reference)
    weight = reference.tensors.get("weight")
    if target is not None:
        valid = valid_targets(reference, target)
        if weight is not None:
            total = float(weight.to(torch.float64)[valid].sum())
            return f"the sum of the weights of the target classes ({total:.6g})"
        if valid.numel() != target.numel():
            return f"the number of targets that are not ignore_index ({valid.numel()})"
        return f"the number of samples ({target.numel()})"
    if reference.spec_name in WEIGHT_MEAN_LOSSES and weight is not None:
        return f"the sum of the weights ({float(weight.to(torch.float64).sum()):.6g})"
    if reference.reduction == "batchmean":
        return f"the batch size ({reference.tensors['input'].shape[0]})"
    if reference.spec_name == "ctc_loss":
        return "each sequence's target length, then the batch size"
    unreduced = reference.variant(reduction="none")
    if unreduced is not None:
        return f"the number of loss elements ({unreduced.loss.numel()})"
    return "the number of loss elements"


# ---------------------------------------------------------------------------------------------
# The reduction


def _reduced_by(reduction: str) -> Any:
    def applies(reference: Reference) -> bool:
        return reference.reduction == reduction

    return applies


def _other_reductions(reference: Reference) -> list[Alternative]:
    reduction = reference.reduction
    if reduction in ("mean", "batchmean"):
        others = ["sum"]
    elif reference.spec_name == "kl_div":
        others = ["batchmean", "mean"]
    else:
        others = ["mean"]
    return some(*(variant(reference, {"other": o}, reduction=o) for o in others))


def _summed(reference: Reference, quantity: Quantity, facts: Facts) -> str:
    reduction = reference.reduction
    if quantity.is_loss:
        what, divided = "the sum of the losses", "the summed loss"
    else:
        what, divided = "the gradient of the summed loss", "the summed loss, and so its gradient,"
    return (
        f"your {quantity.label} is {what}: reduction '{reduction}' divides {divided} by "
        f"{denominator(reference)}"
    )


def _averaged(reference: Reference, quantity: Quantity, facts: Facts) -> str:
    what = "the mean of the losses" if quantity.is_loss else "the gradient of the mean loss"
    return (
        f"your {quantity.label} is {what}: reduction 'sum' adds the losses up without dividing "
        f"by {denominator(reference)}"
    )


def _mean_not_batchmean(reference: Reference, quantity: Quantity, facts: Facts) -> str:
    elements = reference.tensors["input"].numel()
    batch = reference.tensors["input"].shape[0]
    return (
        f"your {quantity.label} is that of reduction 'mean', which divides kl_div's sum by "
        f"every element ({elements}); 'batchmean', the KL divergence's own mean, divides it by "
        f"the batch size ({batch})"
    )


def _batchmean_not_mean(reference: Reference, quantity: Quantity, facts: Facts) -> str:
    elements = reference.tensors["input"].numel()
    return (
        f"your {quantity.label} divides the sum by the batch size ('batchmean'); reduction "
        f"'mean' divides it by the number of elements ({elements})"
    )


def _kl_other_mean(reference: Reference) -> list[Alternative]:
    other = "mean" if reference.reduction == "batchmean" else "batchmean"
    return some(variant(reference, reduction=other))


def _is_kl_mean(reference: Reference) -> bool:
    return reference.reduction == "mean"


def _is_kl_batchmean(reference: Reference) -> bool:
    return reference.reduction == "batchmean"


KL = {
    "loss": "kl_div",
    "input": [[-1.2, -0.4, -2.3], [-0.9, -1.6, -0.9]],
    "target": [[0.2, 0.5, 0.3], [0.6, 0.1, 0.3]],
}


# ---------------------------------------------------------------------------------------------
# What 'mean' divides by with weights or ignored targets


def _mean_over_samples_applies(reference: Reference) -> bool:
    if reference.reduction != "mean":
        return False
    if reference.spec_name in WEIGHT_MEAN_LOSSES:
        return "weight" in reference.tensors
    target = index_targets(reference)
    if target is None:
        return False
    ignored = valid_targets(reference, target).numel() != target.numel()
    return "weight" in reference.tensors or ignored


def _over_samples(reference: Reference) -> list[Alternative]:
    summed = reference.variant(reduction="sum")
    if summed is None:
        return []
    target = index_targets(reference)
    counts: dict[int, str]
    if target is None:  # mse / l1 with weight
        unreduced = reference.variant(reduction="none")
        counts = {} if unreduced is None else {unreduced.loss.numel(): "the number of elements"}
    else:
        counts = {target.numel(): "the number of samples"}
        valid = valid_targets(reference, target).numel()
        counts.setdefault(valid, "the number of targets that are not ignore_index")
    out = []
    for count, words in counts.items():
        if count:
            values = {"loss": as_array(summed.loss) / count}
            values |= {name: as_array(g) / count for name, g in summed.grads.items()}
            out.append(Alternative(values, {"count": count, "words": words}))
    return out


def _over_samples_message(reference: Reference, quantity: Quantity, facts: Facts) -> str:
    cause = "weight" if "weight" in reference.tensors else "ignore_index"
    return (
        f"you divided the summed loss by {facts['words']} ({facts['count']}); with {cause}, "
        f"reduction 'mean' divides by {denominator(reference)}"
    )


MISTAKES = (
    Mistake(
        "sum_instead_of_mean",
        "The losses added up (`.sum()`) where the reduction asks for their mean.",
        _summed,
        Example(MSE),
        on_grad=False,
        applies=lambda r: r.reduction in ("mean", "batchmean"),
        recompute=_other_reductions,
    ),
    Mistake(
        "gradient_of_sum",
        "The gradient of the summed loss where the reduction asks for the mean: every element "
        "is the number of elements times too large.",
        _summed,
        Example(MSE, "input"),
        on_loss=False,
        applies=lambda r: r.reduction in ("mean", "batchmean"),
        recompute=_other_reductions,
    ),
    Mistake(
        "mean_instead_of_sum",
        "The mean of the losses where reduction 'sum' asks for their sum.",
        _averaged,
        Example({**MSE, "params": {"reduction": "sum"}}),
        on_grad=False,
        applies=_reduced_by("sum"),
        recompute=_other_reductions,
    ),
    Mistake(
        "gradient_of_mean",
        "The gradient of the mean loss where reduction 'sum' asks for the sum.",
        _averaged,
        Example({**MSE, "params": {"reduction": "sum"}}, "input"),
        on_loss=False,
        applies=_reduced_by("sum"),
        recompute=_other_reductions,
    ),
    Mistake(
        "mean_instead_of_batchmean",
        "kl_div with reduction 'mean' (divides by every element) where 'batchmean' (divides "
        "by the batch size, the KL divergence's own mean) is asked.",
        _mean_not_batchmean,
        Example({**KL, "params": {"reduction": "batchmean"}}),
        losses=("kl_div",),
        applies=_is_kl_batchmean,
        recompute=_kl_other_mean,
    ),
    Mistake(
        "batchmean_instead_of_mean",
        "kl_div divided by the batch size ('batchmean') where reduction 'mean' is asked.",
        _batchmean_not_mean,
        Example(KL),
        losses=("kl_div",),
        applies=_is_kl_mean,
        recompute=_kl_other_mean,
    ),
    Mistake(
        "mean_over_samples",
        "With class weights or ignored targets (cross_entropy, nll_loss) or element weights "
        "(mse_loss, l1_loss), the summed loss divided by the number of samples instead of the "
        "sum of the weights used (or the number of targets not ignored).",
        _over_samples_message,
        Example({**CE, "params": {"weight": [0.5, 2.0, 1.0]}}),
        losses=(*INDEX_TARGET_LOSSES, *WEIGHT_MEAN_LOSSES),
        applies=_mean_over_samples_applies,
        recompute=_over_samples,
    ),
)
