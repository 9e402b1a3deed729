"""Explanations from the inputs: where the naive formula overflows or takes log(0), where the
loss has a kink, what CTC's gradient assumes of log_probs."""

from __future__ import annotations

import numpy as np
import torch

from service.grading.mistakes.base import Example, Facts, Mistake
from service.grading.quantity import Quantity
from service.grading.reference import Reference, as_array

# torch's binary_cross_entropy clamps each log at -100 and its gradient's denominator here.
BCE_LOG_FLOOR = -100.0
BCE_GRAD_EPS = 1e-12
KINK_LOSSES = ("l1_loss", "hinge_embedding_loss", "margin_ranking_loss", "multi_margin_loss")


# ---------------------------------------------------------------------------------------------
# softmax / sigmoid not fused


def _naive_overflow(reference: Reference) -> tuple[torch.Tensor, int, str] | None:
    """Where the textbook formula (softmax then log, sigmoid then log) is not finite, the
    class dimension (-1 for element-wise losses) and the remedy."""
    key = "naive_overflow"
    if key not in reference.memo:
        reference.memo[key] = _overflow_mask(reference)
    found: tuple[torch.Tensor, int, str] | None = reference.memo[key]
    return found


def _overflow_mask(reference: Reference) -> tuple[torch.Tensor, int, str] | None:
    logits = reference.tensors.get("input")
    if logits is None or not logits.is_floating_point():
        return None
    with torch.no_grad():
        if reference.spec_name == "cross_entropy":
            dim = 1 if logits.dim() >= 2 else 0
            exp = logits.exp()
            bad = ~torch.isfinite((exp / exp.sum(dim, keepdim=True)).log())
            remedy = "compute log_softmax fused, x - logsumexp(x) (subtract the row maximum)"
            return bad, dim, remedy
        sigmoid = torch.sigmoid(logits)
        remedy = "use the fused form max(x, 0) - x y + log(1 + exp(-|x|))"
        return (sigmoid == 0) | (sigmoid == 1), -1, remedy


def _unfused(reference: Reference, quantity: Quantity) -> Facts | None:
    if not quantity.submitted_non_finite() or quantity.name not in ("loss", "input"):
        return None
    overflow = _naive_overflow(reference)
    if overflow is None or not bool(overflow[0].any()):
        return None
    bad, dim, remedy = overflow
    facts = {"remedy": remedy}
    if quantity.is_loss and quantity.expected.ndim == 0:
        return facts
    if dim >= 0:
        mask = bad.any(dim) if quantity.is_loss else bad.any(dim, keepdim=True).expand_as(bad)
    else:
        mask = bad
    non_finite = ~np.isfinite(quantity.submitted) & np.isfinite(quantity.expected)
    mask_array = mask.numpy()
    if non_finite.shape != mask_array.shape or bool((non_finite & ~mask_array).any()):
        return None
    return facts


def _unfused_message(reference: Reference, quantity: Quantity, facts: Facts) -> str:
    return (
        f"your {quantity.label} is NaN or infinite where the reference is finite: with logits "
        f"this large the unfused formula overflows in {reference.call.dtype.name}; "
        f"{facts['remedy']}"
    )


# ---------------------------------------------------------------------------------------------
# binary_cross_entropy's clamp


def _clamped(reference: Reference, loss: bool) -> np.ndarray:
    key = f"bce_clamped:{loss}"
    if key not in reference.memo:
        x, y = reference.tensors["input"], reference.tensors["target"]
        x, y = x + torch.zeros_like(y), y + torch.zeros_like(x)  # broadcast to one shape
        with torch.no_grad():
            if loss:
                clamped = ((x.log() < BCE_LOG_FLOOR) & (y != 0)) | (
                    (torch.log1p(-x) < BCE_LOG_FLOOR) & (y != 1)
                )
            else:
                clamped = x * (1 - x) < BCE_GRAD_EPS
        reference.memo[key] = clamped.numpy()
    mask: np.ndarray = reference.memo[key]
    return mask


def _bce_clamp(reference: Reference, quantity: Quantity) -> Facts | None:
    if quantity.name not in ("loss", "input") or quantity.comparison is None:
        return None
    mask = _clamped(reference, quantity.is_loss)
    if not mask.any():
        return None
    if quantity.expected.ndim == 0:
        # The unclamped log of 0 is infinite, and so is the mean or sum it is part of.
        return {} if quantity.submitted_non_finite() else None
    return {} if quantity.mismatches_within(mask) else None


def _bce_clamp_message(reference: Reference, quantity: Quantity, facts: Facts) -> str:
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
    return f"your {quantity.label} differs where the input is 0 or 1: {text}"


# ---------------------------------------------------------------------------------------------
# Kinks


def _kink(reference: Reference, quantity: Quantity) -> Facts | None:
    if quantity.submitted_non_finite():
        return None
    found = _kink_mask(reference, quantity.name)
    if found is None:
        return None
    mask, where = found
    return {"where": where} if quantity.mismatches_within(mask) else None


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


def _kink_message(reference: Reference, quantity: Quantity, facts: Facts) -> str:
    return (
        f"your {quantity.label} differs only where {facts['where']}, a kink of the loss: any "
        "value between the one-sided derivatives is a subgradient there, and the reference "
        "takes PyTorch's (autograd's) choice"
    )


# ---------------------------------------------------------------------------------------------
# CTC


def _ctc_free(reference: Reference, quantity: Quantity) -> Facts | None:
    if quantity.name != "log_probs":
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
    return {} if quantity.matches(free) else None


def _ctc_message(reference: Reference, quantity: Quantity, facts: Facts) -> str:
    return (
        "your gradient treats log_probs as free variables (it is minus the alignment "
        "posteriors); PyTorch's ctc_loss assumes log_probs come from log_softmax and returns "
        "the gradient through it, exp(log_probs) minus the posteriors, which is only "
        "meaningful for log_probs that are log_softmax outputs"
    )


BIG = {"loss": "cross_entropy", "input": [[120.0, 3.0, -4.0], [0.5, 1.0, 2.0]], "target": [0, 2]}
BCE01 = {"loss": "binary_cross_entropy", "input": [0.0, 0.7, 1.0], "target": [1.0, 1.0, 0.0]}
L1K = {"loss": "l1_loss", "input": [1.0, 2.0, 3.0, 4.0], "target": [0.5, 2.0, 3.5, 4.0]}


def _nan(reference: Reference) -> np.ndarray:
    return np.asarray(float("nan"))


def _l1_sign_one(reference: Reference) -> np.ndarray:
    x, y = reference.tensors["input"], reference.tensors["target"]
    return np.where(as_array(x) >= as_array(y), 1.0, -1.0) / x.numel()


def _ctc_free_example(reference: Reference) -> np.ndarray:
    log_probs = reference.tensors["log_probs"]
    grad = reference.grads["log_probs"]
    lengths = reference.tensors["input_lengths"].reshape(1, -1, 1)
    steps = torch.arange(log_probs.shape[0]).reshape(-1, 1, 1)
    live = as_array((steps < lengths).to(log_probs.dtype))
    scale = 1.0 / as_array(reference.tensors["target_lengths"].clamp(min=1)).reshape(1, -1, 1)
    return grad - as_array(log_probs.exp()) * live * scale / lengths.numel()


CTC = {
    "loss": "ctc_loss",
    "log_probs": [
        [[-1.2, -0.9, -1.3], [-0.7, -1.5, -1.2]],
        [[-1.0, -1.1, -1.2], [-1.3, -0.8, -1.2]],
        [[-0.9, -1.4, -1.0], [-1.1, -1.2, -1.0]],
    ],
    "targets": [[1, 2], [2, 2]],
    "input_lengths": [3, 3],
    "target_lengths": [2, 1],
}

MISTAKES = (
    Mistake(
        "softmax_not_fused",
        "softmax (or sigmoid) then log computed separately: with large logits it overflows to "
        "NaN or infinity where the fused log_softmax stays finite.",
        _unfused_message,
        Example(BIG, submit=_nan),
        losses=("cross_entropy", "binary_cross_entropy_with_logits"),
        explain=_unfused,
    ),
    Mistake(
        "bce_log_clamp",
        "binary_cross_entropy without its clamp: log(0) where the input is exactly 0 or 1 "
        "(infinite loss, infinite or NaN gradient, or another clamp there).",
        _bce_clamp_message,
        Example(BCE01, submit=lambda r: np.asarray(float("inf"))),
        losses=("binary_cross_entropy",),
        explain=_bce_clamp,
    ),
    Mistake(
        "subgradient_at_kink",
        "Another subgradient where the loss has a kink (l1 at input == target, a margin loss "
        "at the margin): right, but not autograd's choice.",
        _kink_message,
        Example(L1K, "input", submit=_l1_sign_one),
        losses=KINK_LOSSES,
        on_loss=False,
        explain=_kink,
        # A valid subgradient is the best account of the numbers: any recomputed mistake
        # that matches too agrees with it away from the kinks.
        refines=("*",),
    ),
    Mistake(
        "ctc_log_softmax",
        "ctc_loss's gradient with log_probs taken as free variables (minus the alignment "
        "posteriors) instead of through log_softmax.",
        _ctc_message,
        Example(CTC, "log_probs", submit=_ctc_free_example),
        losses=("ctc_loss",),
        on_loss=False,
        explain=_ctc_free,
    ),
)
