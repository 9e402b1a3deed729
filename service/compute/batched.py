"""Evaluate many loss calls, stacking those that share a loss, params and shapes.

Stacking is exact only where every output element depends on the matching input elements
alone through plain arithmetic: the element-wise losses below with ``reduction='none'``. A
reduced loss is not stacked: its gradient is computed as ``2 (x - y) * (1/N)`` by one path
and ``(2/N) (x - y)`` by the other, which can differ in the last bit; and a transcendental
(exp, log) is computed by different code for a vector's body and its tail.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

import torch

from service.compute.cost import charge_loss
from service.compute.devices import resolve_device
from service.compute.engine import (
    LossCall,
    LossResult,
    decode_call,
    evaluate,
    resolve_grad,
    run_loss,
)
from service.errors import PayloadTooLarge, ServiceError
from service.tensors.codec import ElementBudget

STACKABLE = frozenset({"l1_loss", "mse_loss", "huber_loss", "smooth_l1_loss"})
# Stacks stay below torch's parallel grain size (at::internal::GRAIN_SIZE): one stacked call
# saves the per-call overhead, while a bigger one would wake the intra-op thread pool, which
# costs more than it saves on a busy machine.
STACK_ELEMENTS = 32_768
Outcome = LossResult | ServiceError


def decode_inputs(call: LossCall, budget: ElementBudget) -> dict[str, torch.Tensor]:
    """The inputs and tensor params, decoded on the CPU in the dtype of their role."""
    tensors, params = decode_call(call, budget)
    return tensors | {name: v for name, v in params.items() if isinstance(v, torch.Tensor)}


def evaluate_all(calls: Sequence[LossCall | ServiceError], budget: ElementBudget) -> list[Outcome]:
    """Each call's result or error, in order. A PayloadTooLarge ends the whole batch."""
    outcomes: list[Outcome | None] = [None] * len(calls)
    groups: dict[tuple[Any, ...], list[tuple[int, dict[str, torch.Tensor], list[str]]]] = {}
    for index, call in enumerate(calls):
        if isinstance(call, ServiceError):
            outcomes[index] = call
        elif not _stackable(call):
            outcomes[index] = _guarded(partial(evaluate, call, budget))
        else:
            try:
                tensors, grads = _prepare(call, budget)
            except PayloadTooLarge:
                raise
            except ServiceError as exc:
                outcomes[index] = exc
                continue
            groups.setdefault(_key(call, tensors, grads), []).append((index, tensors, grads))
    for members in groups.values():
        size = max(1, STACK_ELEMENTS // max(1, max(t.numel() for t in members[0][1].values())))
        for start in range(0, len(members), size):
            for index, result in _evaluate_group(calls, members[start : start + size]):
                outcomes[index] = result
    return [outcome for outcome in outcomes if outcome is not None]


def _stackable(call: LossCall) -> bool:
    return (
        call.spec.name in STACKABLE
        and call.params.get("reduction") == "none"
        # A tensor param (weight) is per item: such items are computed one by one.
        and not any(
            p.kind == "tensor" and call.params.get(p.name) is not None for p in call.spec.params
        )
        and resolve_device(call.device).type == "cpu"
    )


def _prepare(call: LossCall, budget: ElementBudget) -> tuple[dict[str, torch.Tensor], list[str]]:
    tensors, params = decode_call(call, budget)
    if call.spec.check is not None:
        call.spec.check(tensors, params)
    grads = resolve_grad(call.spec, call.grad, tensors)
    charge_loss(call.spec, tensors, params, grads, budget)
    return tensors, grads


def _key(call: LossCall, tensors: dict[str, torch.Tensor], grads: list[str]) -> tuple[Any, ...]:
    shapes = tuple((name, tuple(t.shape), t.dtype) for name, t in sorted(tensors.items()))
    return (
        call.spec.name,
        tuple(sorted(call.params.items())),
        call.dtype.name,
        tuple(grads),
        shapes,
    )


def _evaluate_group(
    calls: Sequence[LossCall | ServiceError],
    members: list[tuple[int, dict[str, torch.Tensor], list[str]]],
) -> list[tuple[int, Outcome]]:
    first = calls[members[0][0]]
    assert isinstance(first, LossCall)
    spec, params, dtype = first.spec, first.params, first.dtype.name
    if len(members) > 1:
        stacked = {
            name: torch.stack([tensors[name] for _, tensors, _ in members])
            for name in members[0][1]
        }
        outcome = _guarded(partial(run_loss, spec, stacked, params, members[0][2], dtype, "cpu"))
        if isinstance(outcome, LossResult):
            return [
                (
                    index,
                    LossResult(
                        outcome.loss[row],
                        {n: g[row] for n, g in outcome.grads.items()},
                        dtype,
                        "cpu",
                    ),
                )
                for row, (index, _, _) in enumerate(members)
            ]
    return [
        (index, _guarded(partial(run_loss, spec, tensors, params, grads, dtype, "cpu")))
        for index, tensors, grads in members
    ]


def _guarded(work: Callable[[], LossResult]) -> Outcome:
    try:
        result = work()
    except PayloadTooLarge:
        raise
    except ServiceError as exc:
        return exc
    return result
