"""The cost of a request, estimated from shapes before torch allocates anything.

Torch allocates what the inputs broadcast to, not what they hold: ``input`` of shape [N, 1]
and ``target`` of shape [1, N] are 2N elements on the wire and N^2 in memory. The estimate
counts elements of work: the largest shape the inputs of a loss could broadcast to (the
catalogue says which inputs broadcast together), times the passes over it (the forward pass,
and one more per gradient), plus what grows faster than the inputs (``LossSpec.extra_work``:
CTC's lattice, multilabel margin's class pairs). Requests over the budget are answered 413
before any large allocation; items of one bulk request add up.

The estimate also decides where work runs: while a request computes on the event loop
(``INLINE_WORK`` set), work past that limit raises ``NeedsOffload`` and the caller runs the
request again in a worker, where the time limit applies.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

import torch

from service.errors import Loc, PayloadTooLarge
from service.losses.catalogue import LossSpec
from service.tensors.codec import ElementBudget

# Passes over the broadcast elements: the loss's own temporaries (a difference, its square, a
# reduction) and, per input differentiated, the backward pass and the gradient itself.
FORWARD_WORK = 2
BACKWARD_WORK = 2
# Information measures: log, xlogy and products of p and q, each a full-size temporary.
INFORMATION_WORK = 8

# Python work per item of a bulk request (parsing its envelope, grading checks and hints),
# in elements of work of about the same time (~0.1 ms): what element counts do not see.
ITEM_WORK = 100_000

INLINE_WORK: ContextVar[int | None] = ContextVar("inline_work", default=None)


class NeedsOffload(Exception):
    """Raised while computing on the event loop when the work is past the inline limit."""


@dataclass(frozen=True)
class Estimate:
    work: int  # elements of work
    elements: int  # the largest tensor the computation makes
    loc: Loc  # the input that drives the cost
    reason: str  # how it was counted, for the 413's detail


def broadcast_bound(shapes: Iterable[Sequence[int]]) -> tuple[int, ...]:
    """The largest shape any of ``shapes`` could broadcast to: the largest size of each
    dimension, aligned from the right. An upper bound whether or not they are compatible,
    since torch may broadcast two of them before it finds a third one incompatible."""
    shapes = list(shapes)
    if all(shape == shapes[0] for shape in shapes[1:]):
        return tuple(int(size) for size in shapes[0]) if shapes else ()
    rank = max((len(shape) for shape in shapes), default=0)
    bound = [1] * rank
    for shape in shapes:
        for offset, size in enumerate(reversed(shape), start=1):
            bound[rank - offset] = max(bound[rank - offset], int(size))
    return tuple(bound)


def _shape_text(shape: Sequence[int]) -> str:
    return "[" + ", ".join(str(int(d)) for d in shape) + "]"


def loss_estimate(
    spec: LossSpec, tensors: dict[str, torch.Tensor], params: dict[str, Any], grads: list[str]
) -> Estimate:
    """The work of ``spec`` on decoded (not yet computed) tensors and params."""
    present = {**tensors, **{k: v for k, v in params.items() if isinstance(v, torch.Tensor)}}
    group = {name: present[name] for name in spec.work_broadcast if name in present}
    bound = broadcast_bound(t.shape for t in group.values())
    broadcast = math.prod(bound) if group else 0
    largest = max((t.numel() for t in present.values()), default=1)
    elements = max(broadcast, largest, 1)
    loc: Loc = ("body",)
    reason = f"{spec.name} computes on {elements} elements"
    if broadcast > largest:
        expanded = [name for name, t in group.items() if t.numel() < broadcast]
        loc = _loc(spec, expanded[0])
        shapes = " and ".join(f"{name} {_shape_text(t.shape)}" for name, t in group.items())
        reason = f"{shapes} broadcast to {_shape_text(bound)} = {broadcast} elements"
    work = elements * (FORWARD_WORK + BACKWARD_WORK * len(grads))
    if spec.extra_work is not None:
        extra, driver, how = spec.extra_work(tensors, params)
        extra *= 2 if grads else 1
        if extra > work:
            loc, reason = _loc(spec, driver), f"{spec.name} computes {how}"
        work += extra
    return Estimate(work=work, elements=elements, loc=loc, reason=reason)


def _loc(spec: LossSpec, name: str) -> Loc:
    if any(p.name == name for p in spec.params):
        return ("body", "params", name)
    return ("body", name)


def information_estimate(p: torch.Tensor, q: torch.Tensor | None, grad: bool) -> Estimate:
    shapes = [p.shape] if q is None else [p.shape, q.shape]
    bound = broadcast_bound(shapes)
    broadcast = math.prod(bound)
    elements = max(broadcast, p.numel(), q.numel() if q is not None else 0, 1)
    loc: Loc = ("body", "p")
    reason = f"the measures compute on {elements} elements"
    if q is not None and broadcast > max(p.numel(), q.numel()):
        loc = ("body", "p" if p.numel() < broadcast else "q")
        reason = (
            f"p {_shape_text(p.shape)} and q {_shape_text(q.shape)} broadcast to "
            f"{_shape_text(bound)} = {broadcast} elements"
        )
    work = elements * (INFORMATION_WORK + BACKWARD_WORK * int(grad))
    return Estimate(work=work, elements=elements, loc=loc, reason=reason)


def charge(budget: ElementBudget, estimate: Estimate, answer_elements: int = 0) -> None:
    """Add the estimate to the request's work; a 413 past the budget, or past the element
    limit for the answer's tensors; ``NeedsOffload`` past the inline limit."""
    budget.work_used += estimate.work
    if budget.work_limit is not None and budget.work_used > budget.work_limit:
        earlier = budget.work_used - estimate.work
        total = f"; with the {earlier} of earlier items, {budget.work_used}" if earlier else ""
        raise PayloadTooLarge.at(
            estimate.loc,
            f"{estimate.reason}: about {estimate.work} elements of work{total}, more than the "
            f"{budget.work_limit} one request may take (LOSS_SERVICE_MAX_COMPUTE_ELEMENTS); "
            "send smaller or non-broadcasting tensors, or split the request",
        )
    if answer_elements > budget.limit:
        raise PayloadTooLarge.at(
            estimate.loc,
            f"{estimate.reason}: the answer would hold {answer_elements} elements, more than "
            f"the {budget.limit} a request may hold (LOSS_SERVICE_MAX_TENSOR_ELEMENTS); use "
            "reduction 'mean' or 'sum', or send smaller tensors",
        )
    inline = INLINE_WORK.get()
    if inline is not None and budget.work_used > inline:
        raise NeedsOffload


def charge_loss(
    spec: LossSpec,
    tensors: dict[str, torch.Tensor],
    params: dict[str, Any],
    grads: list[str],
    budget: ElementBudget,
) -> None:
    estimate = loss_estimate(spec, tensors, params, grads)
    answer = estimate.elements if params.get("reduction") == "none" else 0
    charge(budget, estimate, answer)


def leave_the_loop_for_items(items: int) -> None:
    """``NeedsOffload`` when computing on the event loop and ``items`` bulk items (evaluate
    requests, submissions) would take longer there than the inline limit allows."""
    inline = INLINE_WORK.get()
    if inline is not None and items * ITEM_WORK > inline:
        raise NeedsOffload
