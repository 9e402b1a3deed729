"""Evaluate one loss: wire tensors in, the loss and the asked-for gradients out.

The order matters: decode every tensor, cast each to its role's dtype, range-check index
inputs on the CPU (before a GPU sees them), move to the device, then call torch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from service.compute import torch_warnings
from service.compute.cost import charge_loss
from service.compute.devices import resolve_device
from service.errors import FieldError, InvalidInput, Loc
from service.losses.catalogue import LossSpec, Role
from service.tensors.codec import ElementBudget, decode_tensor
from service.tensors.dtypes import WireDType

# What torch raises for inputs it cannot compute with (bad shapes, dtypes, values).
TORCH_INPUT_ERRORS = (RuntimeError, ValueError, IndexError, TypeError, NotImplementedError)


@dataclass(frozen=True)
class LossCall:
    spec: LossSpec
    inputs: dict[str, Any]  # wire values of the inputs given
    params: dict[str, Any]  # validated values of the params given; tensor params still on the wire
    grad: bool | Sequence[str]
    dtype: WireDType
    device: str


@dataclass(frozen=True)
class LossResult:
    loss: torch.Tensor
    grads: dict[str, torch.Tensor]
    dtype: str
    device: str
    warnings: tuple[str, ...] = ()  # what torch warned about the inputs, in order


def decode_call(
    call: LossCall, budget: ElementBudget
) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """The call's inputs, and its params with tensor params decoded, on the CPU in the dtype
    of their role."""
    spec, float_dtype = call.spec, call.dtype.torch
    for spec_input in spec.inputs:
        # The request model lets null through for a required tensor; torch would crash on None.
        if spec_input.required and spec_input.name not in call.inputs:
            raise InvalidInput.at(
                ("body", spec_input.name), "required: a tensor, not null", "missing"
            )
    tensors = {
        name: as_role(
            decode_tensor(value, ("body", name), float_dtype, budget),
            spec.input(name).role,
            float_dtype,
            ("body", name),
        )
        for name, value in call.inputs.items()
    }
    params = dict(call.params)
    for param in spec.params:
        if param.kind == "tensor" and params.get(param.name) is not None:
            loc: Loc = ("body", "params", param.name)
            params[param.name] = as_role(
                decode_tensor(params[param.name], loc, float_dtype, budget),
                "float",
                float_dtype,
                loc,
            )
    return tensors, params


def evaluate(call: LossCall, budget: ElementBudget) -> LossResult:
    spec = call.spec
    device = resolve_device(call.device)
    tensors, params = decode_call(call, budget)
    if spec.check is not None:
        spec.check(tensors, params)
    grad_names = resolve_grad(spec, call.grad, tensors)
    charge_loss(spec, tensors, params, grad_names, budget)
    if device.type != "cpu":
        tensors = {name: t.to(device, non_blocking=True) for name, t in tensors.items()}
        params = {
            name: v.to(device, non_blocking=True) if isinstance(v, torch.Tensor) else v
            for name, v in params.items()
        }
    return run_loss(spec, tensors, params, grad_names, call.dtype.name, str(device))


def run_loss(
    spec: LossSpec,
    tensors: dict[str, torch.Tensor],
    params: dict[str, Any],
    grad_names: list[str],
    dtype: str,
    device: str,
) -> LossResult:
    """Call the loss on decoded, checked tensors already on their device; differentiate."""
    leaves = [tensors[name].requires_grad_(True) for name in grad_names]
    warned, token = torch_warnings.start()
    try:
        with torch.set_grad_enabled(bool(leaves)):
            loss = spec.call(tensors, params)
            grads: Sequence[torch.Tensor | None] = ()
            if leaves:
                total = loss if loss.dim() == 0 else loss.sum()
                grads = torch.autograd.grad(total, leaves, allow_unused=True)
    except TORCH_INPUT_ERRORS as exc:
        message = f"{spec.source} rejected the inputs: {_first_line(exc)}"
        raise InvalidInput(
            message, (FieldError(("body",), message, "torch_error"),), extra={"loss": spec.name}
        ) from exc
    finally:
        torch_warnings.stop(token)
    return LossResult(
        loss=loss.detach(),
        grads={
            name: g if g is not None else torch.zeros_like(tensors[name])
            for name, g in zip(grad_names, grads, strict=False)
        },
        dtype=dtype,
        device=device,
        warnings=tuple(warned),
    )


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:500]


def as_role(tensor: torch.Tensor, role: Role, float_dtype: torch.dtype, loc: Loc) -> torch.Tensor:
    """``tensor`` in the dtype its role computes with, or a 422 when it cannot be."""
    if role == "float" or (role == "class_target" and tensor.is_floating_point()):
        return tensor if tensor.dtype is float_dtype else tensor.to(float_dtype)
    if tensor.numel() == 0:
        # An empty nested array has no element to infer int64 from; it casts without loss.
        return tensor.to(torch.int64)
    if tensor.is_floating_point() or tensor.dtype is torch.bool:
        kind = "floating point" if tensor.is_floating_point() else "boolean"
        what = "class indices or class probabilities" if role == "class_target" else "integers"
        if role == "class_target" and tensor.dtype is torch.bool:
            what = "class indices (integers) or class probabilities (floats)"
        raise InvalidInput.at(loc, f"must hold {what}, got {kind} values", "int_type")
    return tensor if tensor.dtype is torch.int64 else tensor.to(torch.int64)


def resolve_grad(
    spec: LossSpec, grad: bool | Sequence[str], tensors: dict[str, torch.Tensor]
) -> list[str]:
    """The inputs to differentiate with respect to, checked against the spec."""
    if grad is False:
        return []
    if grad is True:
        return [
            name
            for name in spec.differentiable
            if name in tensors and tensors[name].is_floating_point()
        ]
    names: list[str] = []
    for index, name in enumerate(grad):
        loc: Loc = ("body", "grad", index)
        known = [i.name for i in spec.inputs]
        if name not in known:
            raise InvalidInput.at(loc, f"{name!r} is not an input of {spec.name}: {known}")
        if name not in spec.differentiable:
            raise InvalidInput.at(
                loc,
                f"{spec.name} is not differentiable with respect to {name!r}; "
                f"differentiable inputs: {list(spec.differentiable)}",
                "not_differentiable",
            )
        if name not in tensors:
            raise InvalidInput.at(loc, f"{name!r} was not given", "missing")
        if not tensors[name].is_floating_point():
            raise InvalidInput.at(
                loc, f"{name!r} holds class indices, which have no gradient", "not_differentiable"
            )
        if name not in names:
            names.append(name)
    return names
