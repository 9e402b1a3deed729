"""Open Inference Protocol requests as loss calls: the same validation, engine and values as
``POST /v1/losses/{name}``; only the envelope differs.

A model is a loss. Its inputs are the loss's tensor inputs and tensor params (``weight``);
request ``parameters`` carry the loss's other params, ``grad``, ``dtype`` and ``device``;
its outputs are ``loss`` and ``grad_<input>``.
"""

from __future__ import annotations

from typing import Any

import torch

from service.compute.engine import LossCall, evaluate
from service.errors import InvalidInput, ServiceError
from service.http.loss_requests import new_budget, parse_loss_call
from service.http.oip_models import ModelMetadata, ParameterValue, TensorMetadata
from service.losses.catalogue import LossSpec, Role
from service.oip.codec import InferRequest, decode_request, encode_response, split_body
from service.settings import Settings

VERSION = "1"
PLATFORM = "pytorch_torch.nn.functional"
_ROLE_DATATYPE: dict[Role, str] = {"float": "FP32", "index": "INT64", "class_target": "INT64"}
_CALL_PARAMETERS = ("grad", "dtype", "device")


def tensor_params(spec: LossSpec) -> list[str]:
    return [p.name for p in spec.params if p.kind == "tensor"]


def output_names(spec: LossSpec) -> list[str]:
    return ["loss", *(f"grad_{name}" for name in spec.differentiable)]


def metadata(spec: LossSpec) -> ModelMetadata:
    inputs = [
        TensorMetadata(name=i.name, datatype=_ROLE_DATATYPE[i.role], shape=[-1])
        for i in spec.inputs
    ]
    inputs += [
        TensorMetadata(name=name, datatype="FP32", shape=[-1]) for name in tensor_params(spec)
    ]
    parameters: dict[str, ParameterValue] = {
        p.name: p.default
        for p in spec.params
        if p.kind != "tensor" and isinstance(p.default, (bool, int, float, str))
    }
    return ModelMetadata(
        name=spec.name,
        versions=[VERSION],
        platform=PLATFORM,
        inputs=inputs,
        outputs=[TensorMetadata(name=n, datatype="FP32", shape=[-1]) for n in output_names(spec)],
        parameters={**parameters, "grad": False, "dtype": "float32", "device": "auto"},
    )


def _grad(value: Any) -> Any:
    """``grad`` as the v1 request has it: OIP parameters are scalars, so a list of input names
    travels as one string, separated by commas."""
    if isinstance(value, str):
        if value.lower() in ("true", "false"):
            return value.lower() == "true"
        return [name.strip() for name in value.split(",") if name.strip()]
    return value


def loss_call(spec: LossSpec, request: InferRequest) -> LossCall:
    inputs = {i.name for i in spec.inputs}
    tensor_param_names = tensor_params(spec)
    document: dict[str, Any] = {}
    params: dict[str, Any] = {}
    for name, tensor in request.inputs.items():
        if name in inputs:
            document[name] = tensor
        elif name in tensor_param_names:
            params[name] = tensor
        else:
            known = [*inputs, *tensor_param_names]
            raise InvalidInput(f"input {name!r} is not an input of {spec.name}; inputs: {known}")
    scalar_params = {p.name for p in spec.params if p.kind != "tensor"}
    for key, value in request.parameters.items():
        if key in _CALL_PARAMETERS:
            document[key] = _grad(value) if key == "grad" else value
        elif key in scalar_params:
            params[key] = value
        else:
            known = sorted(scalar_params) + list(_CALL_PARAMETERS)
            raise InvalidInput(f"parameters.{key}: not a parameter of {spec.name}; known: {known}")
    if "grad" not in document and request.outputs is not None:
        wanted = [o.name[5:] for o in request.outputs if o.name.startswith("grad_")]
        if wanted:
            document["grad"] = wanted
    document["params"] = params
    return parse_loss_call(spec, document)


def _check_outputs(spec: LossSpec, request: InferRequest) -> None:
    known = output_names(spec)
    for output in request.outputs or ():
        if output.name not in known:
            raise InvalidInput(f"output {output.name!r} is not an output of {spec.name}: {known}")


def infer(
    spec: LossSpec, body: bytes, header_length: str | None, settings: Settings
) -> tuple[bytes, int | None]:
    """The response body to an inference request, and its JSON header's length when binary."""
    budget = new_budget(settings)
    document, data = split_body(body, header_length)
    request = decode_request(document, data, budget)
    _check_outputs(spec, request)
    result = evaluate(loss_call(spec, request), budget)
    computed: dict[str, torch.Tensor] = {"loss": result.loss}
    computed.update((f"grad_{name}", grad) for name, grad in result.grads.items())
    if request.outputs is None:
        chosen = [(name, tensor, request.binary_output) for name, tensor in computed.items()]
    else:
        chosen = []
        for output in request.outputs:
            if output.name not in computed:
                raise InvalidInput(
                    f"output {output.name!r} was not computed: its input was not given, or "
                    "holds class indices"
                )
            binary = request.binary_output if output.binary is None else output.binary
            chosen.append((output.name, computed[output.name], binary))
    parameters: dict[str, Any] = {"dtype": result.dtype, "device": result.device}
    if result.warnings:  # a parameter is a string: one warning per line
        parameters["warnings"] = "\n".join(result.warnings)
    header: dict[str, Any] = {"model_name": spec.name, "model_version": VERSION}
    if request.id is not None:
        header["id"] = request.id
    header["parameters"] = parameters
    return encode_response(header, chosen)


def error_message(spec: LossSpec, error: ServiceError) -> str:
    """The error's sentence, with each field named as the protocol's request names it."""
    if not error.errors:
        return error.detail
    names = tensor_params(spec)
    return "; ".join(
        f"{where}: {e.msg}" if (where := _where(e.loc, names)) else e.msg for e in error.errors
    )


def _where(loc: tuple[str | int, ...], tensor_param_names: list[str]) -> str:
    if not loc or loc[0] != "body":
        return ".".join(str(part) for part in loc)
    rest = loc[1:]
    if not rest:
        return ""
    head, tail = rest[0], "".join(f"[{part}]" for part in rest[1:])
    if head == "params" and len(rest) > 1:
        head, tail = rest[1], "".join(f"[{part}]" for part in rest[2:])
        if head not in tensor_param_names:
            return f"parameters.{head}{tail}"
    if head in _CALL_PARAMETERS:
        return f"parameters.{head}{tail}"
    return f"input {head!r}{tail}"


def error_status(error: ServiceError) -> int:
    """422 (the request cannot be computed with) is the protocol's 400."""
    return 400 if error.status == 422 else error.status
