"""The reference answer to a loss problem, computed once and shared by every submission.

Besides the loss and gradients torch computes for the request, it holds what hints need and
computes it only when a hint asks: the decoded inputs, and the answers to the same problem
with other params (another reduction, no label smoothing), each computed at most once.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Any

import torch

from service.compute.batched import decode_inputs
from service.compute.engine import LossCall, LossResult, evaluate, resolve_grad
from service.errors import ServiceError
from service.grading.compare import Array
from service.tensors.codec import ElementBudget

ParamValue = str | float | int | bool


def as_array(tensor: torch.Tensor) -> Array:
    """A float64 numpy copy of ``tensor`` (any dtype, any device)."""
    array: Array = tensor.detach().to("cpu", torch.float64).numpy()
    return array


@dataclass
class Reference:
    call: LossCall
    result: LossResult
    # The gradients the problem asks for (its ``grad`` field), checked even when not submitted.
    asked_grads: tuple[str, ...]
    budget_limit: int
    max_depth: int
    # Facts hints derive from the inputs, computed once per problem.
    memo: dict[str, Any] = field(default_factory=dict)
    _variants: dict[tuple[tuple[str, ParamValue], ...], LossResult | None] = field(
        default_factory=dict
    )

    @property
    def spec_name(self) -> str:
        return self.call.spec.name

    @property
    def dtype(self) -> torch.dtype:
        return self.call.dtype.torch

    @cached_property
    def loss(self) -> Array:
        return as_array(self.result.loss)

    @cached_property
    def grads(self) -> dict[str, Array]:
        return {name: as_array(g) for name, g in self.result.grads.items()}

    def param(self, name: str) -> Any:
        if name in self.call.params:
            return self.call.params[name]
        spec_params = {p.name: p.default for p in self.call.spec.params}
        return spec_params.get(name)

    @property
    def reduction(self) -> str | None:
        value = self.param("reduction")
        return value if isinstance(value, str) else None

    @cached_property
    def tensors(self) -> dict[str, torch.Tensor]:
        """The inputs and tensor params, decoded on the CPU in the dtype of their role."""
        return decode_inputs(self.call, ElementBudget(self.budget_limit, self.max_depth))

    def variant(self, **changes: ParamValue) -> LossResult | None:
        """The answer with some params changed (None when torch cannot compute it)."""
        key = tuple(sorted(changes.items()))
        if key not in self._variants:
            call = replace(self.call, params={**self.call.params, **changes}, grad=True)
            try:
                self._variants[key] = evaluate(
                    call, ElementBudget(self.budget_limit, self.max_depth)
                )
            except ServiceError:
                self._variants[key] = None
        return self._variants[key]


def build_reference(call: LossCall, budget: ElementBudget) -> Reference:
    """Compute the loss and the gradient of every differentiable input given.

    All of them, not only those the problem's ``grad`` names, so that a submission may check
    any; the problem's own list is validated as ``POST /v1/losses`` validates it.
    """
    result = evaluate(replace(call, grad=True), budget)
    reference = Reference(
        call=call,
        result=result,
        asked_grads=(),
        budget_limit=budget.limit,
        max_depth=budget.max_depth,
    )
    if call.grad is not False:
        reference.asked_grads = tuple(resolve_grad(call.spec, call.grad, reference.tensors))
    return reference
