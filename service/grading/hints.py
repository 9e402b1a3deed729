"""Loss-aware hints: the known causes of a close-but-wrong answer, each confirmed by numbers.

A hint is given only when the submission matches what the mistake would produce (the answer
recomputed with the mistake, e.g. with reduction 'sum'), or when the mistake is the only
explanation the inputs allow (non-finite values where the naive formula overflows, mismatches
only at a kink). Hints never quote reference values, so they are safe to pass to students.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from service.compute.engine import TORCH_INPUT_ERRORS
from service.grading.compare import Array, all_close
from service.grading.quantity import Quantity, value_of
from service.grading.reference import Reference, as_array
from service.grading.tolerances import Tolerance

log = logging.getLogger("service.grading")

INDEX_TARGET_LOSSES = ("cross_entropy", "nll_loss")
# torch's binary_cross_entropy clamps each log at -100 and its gradient's denominator here.
BCE_LOG_FLOOR = -100.0
BCE_GRAD_EPS = 1e-12


@dataclass(frozen=True)
class Hint:
    code: str
    message: str

    def as_dict(self) -> dict[str, str]:
        return {"code": self.code, "message": self.message}


Detector = Callable[[Reference, Quantity], Hint | None]


def hints_for(reference: Reference, quantity: Quantity) -> list[Hint]:
    """Every hint the numbers support for a failed quantity (shapes agree)."""
    found = []
    for detector in DETECTORS:
        try:
            hint = detector(reference, quantity)
        except TORCH_INPUT_ERRORS:
            # A hint is an extra: inputs a detector did not foresee cost the hint, never the
            # grade (the problem itself was computed, so the grade is always answered).
            log.warning(
                "hint %s failed on %s", detector.__name__, reference.spec_name, exc_info=True
            )
            continue
        if hint is not None:
            found.append(hint)
    return found


def shape_hints(
    quantity_label: str, expected: Array, submitted: Array, tolerance: Tolerance
) -> list[Hint]:
    """A transposed answer: the reversed shape, and its transpose matches."""
    if expected.ndim < 2 or submitted.shape != expected.shape[::-1]:
        return []
    if not all_close(expected, submitted.T, tolerance):
        return []
    return [
        Hint(
            "transposed",
            f"your {quantity_label} has shape {list(submitted.shape)}, the transpose of "
            f"{list(expected.shape)}, and its transpose matches: return it in the shape of the "
            "input it belongs to (a gradient has the shape of its input)",
        )
    ]


# ---------------------------------------------------------------------------------------------
# What the mean divides by


def _index_targets(reference: Reference) -> torch.Tensor | None:
    if reference.spec_name not in INDEX_TARGET_LOSSES:
        return None
    target = reference.tensors.get("target")
    return None if target is None or target.is_floating_point() else target


def _valid_targets(reference: Reference, target: torch.Tensor) -> torch.Tensor:
    ignore_index = reference.param("ignore_index")
    return target[target != ignore_index] if isinstance(ignore_index, int) else target.flatten()


def denominator(reference: Reference) -> str:
    """What reduction 'mean' divides the summed loss by, in words and number."""
    if "denominator" not in reference.memo:
        reference.memo["denominator"] = _denominator(reference)
    text: str = reference.memo["denominator"]
    return text


def _denominator(reference: Reference) -> str:
    target = _index_targets(reference)
    if target is not None:
        valid = _valid_targets(reference, target)
        weight = reference.tensors.get("weight")
        if weight is not None:
            total = float(weight.to(torch.float64)[valid].sum())
            return f"the sum of the weights of the target classes ({total:.6g})"
        if valid.numel() != target.numel():
            return f"the number of targets that are not ignore_index ({valid.numel()})"
        return f"the number of samples ({target.numel()})"
    if reference.reduction == "batchmean":
        return f"the batch size ({reference.tensors['input'].shape[0]})"
    if reference.spec_name == "ctc_loss":
        return "each sequence's target length, then the batch size"
    unreduced = reference.variant(reduction="none")
    if unreduced is not None:
        return f"the number of loss elements ({unreduced.loss.numel()})"
    return "the number of loss elements"


# ---------------------------------------------------------------------------------------------
# Detectors


def _reduction_swapped(reference: Reference, quantity: Quantity) -> Hint | None:
    reduction = reference.reduction
    if reduction in ("mean", "batchmean"):
        other = "sum"
    elif reduction == "sum":
        other = "batchmean" if reference.spec_name == "kl_div" else "mean"
    else:
        return None
    if not quantity.matches(value_of(reference.variant(reduction=other), quantity.name)):
        return None
    if other == "sum":
        if quantity.is_loss:
            code, what, divided = "sum_instead_of_mean", "the sum of the losses", "the summed loss"
        else:
            code, what = "gradient_of_sum", "the gradient of the summed loss"
            divided = "the summed loss, and so its gradient,"
        return Hint(
            code,
            f"your {quantity.label} is {what}: reduction '{reduction}' divides {divided} by "
            f"{denominator(reference)}",
        )
    what = "the mean of the losses" if quantity.is_loss else "the gradient of the mean loss"
    return Hint(
        "mean_instead_of_sum" if quantity.is_loss else "gradient_of_mean",
        f"your {quantity.label} is {what}: reduction 'sum' adds the losses up without dividing "
        f"by {denominator(reference)}",
    )


def _mean_over_samples(reference: Reference, quantity: Quantity) -> Hint | None:
    """cross_entropy / nll_loss with weight or ignore_index, divided by N instead."""
    target = _index_targets(reference)
    if target is None or reference.reduction != "mean":
        return None
    summed = value_of(reference.variant(reduction="sum"), quantity.name)
    if summed is None:
        return None
    valid = _valid_targets(reference, target)
    candidates = {target.numel(): "the number of samples"}
    if valid.numel() != target.numel():
        candidates.setdefault(valid.numel(), "the number of targets that are not ignore_index")
    for count, words in candidates.items():
        if count and quantity.matches(summed / count):
            cause = "weight" if "weight" in reference.tensors else "ignore_index"
            return Hint(
                "mean_over_samples",
                f"you divided the summed loss by {words} ({count}); with {cause}, reduction "
                f"'mean' divides by {denominator(reference)}",
            )
    return None


def _label_smoothing_ignored(reference: Reference, quantity: Quantity) -> Hint | None:
    smoothing = reference.param("label_smoothing")
    if reference.spec_name != "cross_entropy" or not smoothing:
        return None
    if not quantity.matches(value_of(reference.variant(label_smoothing=0.0), quantity.name)):
        return None
    return Hint(
        "label_smoothing_ignored",
        f"your {quantity.label} is that of the loss without label smoothing: with "
        f"label_smoothing={smoothing:g} the target mixes {1 - smoothing:g} of the one-hot "
        f"target with {smoothing:g} of the uniform distribution over the classes",
    )


def _sign_flipped(reference: Reference, quantity: Quantity) -> Hint | None:
    if not quantity.expected.any() or not quantity.matches(-quantity.expected):
        return None
    if quantity.is_loss:
        text = "check the minus sign of the negative log-likelihood"
    else:
        text = "the gradient points the way the loss increases; a descent step goes against it"
    return Hint("sign_flipped", f"your {quantity.label} has the opposite sign: {text}")


def _unfused_softmax(reference: Reference, quantity: Quantity) -> Hint | None:
    """NaN or infinity where the reference is finite, and the naive formula overflows here."""
    if not quantity.submitted_non_finite() or quantity.name not in ("loss", "input"):
        return None
    overflow = _naive_overflow(reference)
    if overflow is None:
        return None
    mask, remedy = overflow
    if quantity.is_loss and quantity.expected.ndim == 0:
        supported = bool(mask.any())
    else:
        non_finite = ~np.isfinite(quantity.submitted) & np.isfinite(quantity.expected)
        supported = non_finite.shape == mask.shape and not bool((non_finite & ~mask).any())
    if not supported:
        return None
    return Hint(
        "softmax_not_fused",
        f"your {quantity.label} is NaN or infinite where the reference is finite: with logits "
        f"this large the unfused formula overflows in {reference.call.dtype.name}; {remedy}",
    )


def _naive_overflow(reference: Reference) -> tuple[np.ndarray, str] | None:
    """Where the textbook formula (softmax then log, sigmoid then log) is not finite."""
    logits = reference.tensors.get("input")
    if logits is None or not logits.is_floating_point():
        return None
    with torch.no_grad():
        if reference.spec_name == "cross_entropy":
            dim = 1 if logits.dim() >= 2 else 0
            exp = logits.exp()
            bad = ~torch.isfinite((exp / exp.sum(dim, keepdim=True)).log())
            mask = bad.any(dim, keepdim=True).expand_as(logits)
            remedy = "compute log_softmax fused, x - logsumexp(x) (subtract the row maximum)"
        elif reference.spec_name == "binary_cross_entropy_with_logits":
            sigmoid = torch.sigmoid(logits)
            mask = (sigmoid == 0) | (sigmoid == 1)
            remedy = "use the fused form max(x, 0) - x y + log(1 + exp(-|x|))"
        else:
            return None
    return mask.numpy(), remedy


def _bce_clamp(reference: Reference, quantity: Quantity) -> Hint | None:
    if reference.spec_name != "binary_cross_entropy" or quantity.name not in ("loss", "input"):
        return None
    x, y = reference.tensors["input"], reference.tensors["target"]
    x, y = x + torch.zeros_like(y), y + torch.zeros_like(x)  # broadcast to one shape
    with torch.no_grad():
        if quantity.is_loss:
            clamped = ((x.log() < BCE_LOG_FLOOR) & (y != 0)) | (
                (torch.log1p(-x) < BCE_LOG_FLOOR) & (y != 1)
            )
        else:
            clamped = x * (1 - x) < BCE_GRAD_EPS
    mask = clamped.numpy()
    if not mask.any() or quantity.comparison is None:
        return None
    worse = ~np.isfinite(quantity.submitted) | (
        np.abs(quantity.submitted) > np.abs(quantity.expected)
    )
    mismatch = quantity.comparison.mismatch_mask
    if quantity.expected.ndim == 0:
        supported = bool(mismatch) and bool(worse)
    else:
        supported = quantity.mismatches_within(mask) and bool(worse[mismatch].all())
    if not supported:
        return None
    if quantity.is_loss:
        text = (
            "PyTorch clamps each log in binary_cross_entropy at -100, so an input of exactly 0 "
            "or 1 costs at most 100 (times its weight), not infinity"
        )
    else:
        text = (
            "PyTorch's binary_cross_entropy gradient divides by max(x (1 - x), 1e-12), so an "
            "input of exactly 0 or 1 gets a large finite gradient, not infinity or NaN"
        )
    return Hint("bce_log_clamp", f"your {quantity.label} differs where the input is 0 or 1: {text}")


def _kink(reference: Reference, quantity: Quantity) -> Hint | None:
    if quantity.is_loss or quantity.submitted_non_finite():
        return None
    found = _kink_mask(reference, quantity.name)
    if found is None:
        return None
    mask, where = found
    if not quantity.mismatches_within(mask):
        return None
    return Hint(
        "subgradient_at_kink",
        f"your {quantity.label} differs only where {where}, a kink of the loss: any value "
        "between the one-sided derivatives is a subgradient there, and the reference takes "
        "PyTorch's (autograd's) choice",
    )


def _kink_mask(reference: Reference, name: str) -> tuple[np.ndarray, str] | None:
    t = reference.tensors
    spec = reference.spec_name
    shape = t[name].shape
    with torch.no_grad():
        if spec == "l1_loss":
            at_kink = t["input"] == t["target"]
            where = "input equals target (PyTorch uses sign(0) = 0)"
        elif spec == "hinge_embedding_loss" and name == "input":
            at_kink = (t["target"] == -1) & (t["input"] == float(reference.param("margin")))
            where = "a negative pair sits exactly at the margin"
        elif spec == "margin_ranking_loss":
            margin = float(reference.param("margin"))
            at_kink = -t["target"] * (t["input1"] - t["input2"]) + margin == 0
            where = "a pair sits exactly at the margin"
        elif spec == "multi_margin_loss" and name == "input":
            x = t["input"] if t["input"].dim() == 2 else t["input"].unsqueeze(0)
            y = t["target"].reshape(-1, 1)
            z = float(reference.param("margin")) - x.gather(1, y) + x
            z.scatter_(1, y, 1.0)  # the target class itself has no margin term
            at_kink = (z == 0).any(1, keepdim=True).expand_as(x).reshape(t["input"].shape)
            where = "a class score sits exactly at the margin"
        else:
            return None
    if at_kink.shape != shape:  # a broadcast input: its gradient sums over several kinks
        return None
    return at_kink.numpy(), where


def _ctc_free_log_probs(reference: Reference, quantity: Quantity) -> Hint | None:
    if reference.spec_name != "ctc_loss" or quantity.name != "log_probs":
        return None
    t = reference.tensors
    log_probs = t["log_probs"]
    batched = log_probs.dim() == 3
    lengths = t["input_lengths"].reshape(-1)
    steps = torch.arange(log_probs.shape[0]).reshape(-1, 1)
    live = (steps < lengths.reshape(1, -1)).to(torch.float64)  # (T, N)
    if reference.reduction == "mean":
        scale = 1.0 / (t["target_lengths"].reshape(-1).clamp(min=1).to(torch.float64))
        scale = scale / scale.numel()
    else:
        scale = torch.ones(lengths.numel(), dtype=torch.float64)
    weight = (live * scale.reshape(1, -1)).unsqueeze(-1)  # (T, N, 1)
    if not batched:
        weight = weight.squeeze(1)
    free = quantity.expected - as_array(log_probs.exp() * weight)
    if not quantity.matches(free):
        return None
    return Hint(
        "ctc_log_softmax",
        "your gradient treats log_probs as free variables (it is minus the alignment "
        "posteriors); PyTorch's ctc_loss assumes log_probs come from log_softmax and returns "
        "the gradient through it, exp(log_probs) minus the posteriors, which is only "
        "meaningful for log_probs that are log_softmax outputs",
    )


DETECTORS: tuple[Detector, ...] = (
    _unfused_softmax,
    _bce_clamp,
    _reduction_swapped,
    _mean_over_samples,
    _label_smoothing_ignored,
    _sign_flipped,
    _ctc_free_log_probs,
    _kink,
)
