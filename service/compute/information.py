"""Information measures of discrete distributions (the seed article's section 2.1).

Self-information I(x) = -log P(x), entropy H(P) = -sum P log P, cross-entropy
H(P, Q) = -sum P log Q and KL divergence D_KL(P || Q) = sum P log(P / Q), each over the last
dimension, with 0 log 0 = 0. Then H(P, Q) = H(P) + D_KL(P || Q).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch

from service.compute.cost import charge, information_estimate
from service.compute.devices import resolve_device
from service.compute.engine import TORCH_INPUT_ERRORS, as_role
from service.errors import InvalidInput, Loc
from service.tensors.codec import ElementBudget, decode_tensor
from service.tensors.dtypes import WireDType

Reduction = Literal["mean", "sum"]
MEASURES = ("entropy", "cross_entropy", "kl_divergence")


@dataclass(frozen=True)
class InformationCall:
    p: object
    q: object | None
    logits: bool
    bits: bool
    reduction: Reduction
    grad_q: bool
    dtype: WireDType
    device: str


@dataclass(frozen=True)
class InformationResult:
    self_information: torch.Tensor
    per_row: dict[str, torch.Tensor]
    reduced: dict[str, torch.Tensor]
    grad_q: torch.Tensor | None
    dtype: str
    device: str


def _distribution(
    value: object, loc: Loc, call: InformationCall, budget: ElementBudget
) -> torch.Tensor:
    tensor = as_role(
        decode_tensor(value, loc, call.dtype.torch, budget), "float", call.dtype.torch, loc
    )
    if tensor.dim() == 0 or tensor.shape[-1] == 0:
        raise InvalidInput.at(loc, "needs at least one outcome along its last dimension", "shape")
    if call.logits:
        return tensor
    if bool((tensor < 0).any()) or not bool(torch.isfinite(tensor).all()):
        raise InvalidInput.at(
            loc, 'probabilities must be finite and >= 0 (send logits with "logits": true)'
        )
    sums = tensor.double().sum(-1)
    tolerance = 1e-2 if call.dtype.torch in (torch.float16, torch.bfloat16) else 1e-4
    off = (sums - 1).abs() > tolerance
    if bool(off.any()):
        row = [int(i) for i in torch.nonzero(off)[0].tolist()] if off.dim() else []
        total = float(sums[tuple(row)]) if row else float(sums)
        raise InvalidInput.at(
            (*loc, *row),
            f"probabilities must sum to 1 over the last dimension; this row sums to {total:.6g}",
            "distribution",
        )
    return tensor


def measure(call: InformationCall, budget: ElementBudget) -> InformationResult:
    device = resolve_device(call.device)
    p = _distribution(call.p, ("body", "p"), call, budget)
    q = None
    if call.q is not None:
        q = _distribution(call.q, ("body", "q"), call, budget)
    elif call.grad_q:
        raise InvalidInput.at(("body", "grad"), "a gradient with respect to q needs q", "missing")
    charge(budget, information_estimate(p, q, call.grad_q))
    p = p.to(device)
    q = q.to(device) if q is not None else None
    scale = 1 / math.log(2) if call.bits else 1.0
    try:
        return _measure(p, q, call, scale, str(device))
    except TORCH_INPUT_ERRORS as exc:
        raise InvalidInput(f"p and q cannot be compared: {str(exc).splitlines()[0]}") from exc


def _measure(
    p: torch.Tensor, q: torch.Tensor | None, call: InformationCall, scale: float, device: str
) -> InformationResult:
    if call.logits:
        log_p = torch.log_softmax(p, dim=-1)
        prob_p = log_p.exp()
    else:
        log_p, prob_p = p.log(), p
    # "+ 0.0" turns the -0.0 of a certain outcome into 0.0.
    self_information = -log_p * scale + 0.0
    entropy = -torch.special.xlogy(prob_p, prob_p).sum(-1) * scale + 0.0
    per_row = {"entropy": entropy}
    grad_q = None
    if q is not None:
        with torch.set_grad_enabled(call.grad_q):
            q_leaf = q.requires_grad_(call.grad_q)
            if call.logits:
                log_q = torch.log_softmax(q_leaf, dim=-1)
                cross = -(prob_p * log_q).sum(-1)
                kl = (torch.special.xlogy(prob_p, prob_p) - prob_p * log_q).sum(-1)
            else:
                cross = -torch.special.xlogy(prob_p, q_leaf).sum(-1)
                kl = (
                    torch.special.xlogy(prob_p, prob_p) - torch.special.xlogy(prob_p, q_leaf)
                ).sum(-1)
            cross, kl = cross * scale, kl * scale
            if call.grad_q:
                (grad_q,) = torch.autograd.grad(_reduce(cross, call.reduction), q_leaf)
        per_row["cross_entropy"] = cross.detach()
        per_row["kl_divergence"] = kl.detach()
    reduced = {name: _reduce(value, call.reduction) for name, value in per_row.items()}
    return InformationResult(
        self_information=self_information.detach(),
        per_row=per_row,
        reduced=reduced,
        grad_q=grad_q,
        dtype=call.dtype.name,
        device=device,
    )


def _reduce(value: torch.Tensor, reduction: Reduction) -> torch.Tensor:
    return value.mean() if reduction == "mean" else value.sum()
