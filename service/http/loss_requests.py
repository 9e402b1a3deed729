"""From a parsed JSON loss request to the JSON-ready answer, synchronously.

Shared by ``POST /v1/losses/{name}`` and every endpoint that evaluates losses in bulk.
"""

from __future__ import annotations

from typing import Any

import torch
from pydantic import ValidationError

from service.compute.engine import LossCall, LossResult, evaluate
from service.errors import InvalidInput, Loc, MalformedBody
from service.http.loss_models import params_model, request_model
from service.http.problems import from_pydantic, reject_unknown_keys
from service.losses.catalogue import DEPRECATED_PARAMS, LossSpec
from service.settings import Settings
from service.tensors.codec import ElementBudget, Encoding, encode_scalar, encode_tensor
from service.tensors.dtypes import float_dtype


def new_budget(settings: Settings) -> ElementBudget:
    return ElementBudget(
        settings.max_tensor_elements, settings.max_nesting_depth, settings.max_compute_elements
    )


def parse_loss_call(spec: LossSpec, document: Any, prefix: Loc = ("body",)) -> LossCall:
    """Validate the envelope of a loss request (tensors stay on the wire until computed)."""
    if not isinstance(document, dict):
        raise MalformedBody.at(
            ("body",),
            "must be a JSON object with the loss's inputs and params",
            "dict_type",
        )
    reject_unknown_keys(document, request_model(spec).model_fields, prefix)
    params = document.get("params")
    if isinstance(params, dict):
        for name in sorted(n for n in DEPRECATED_PARAMS if n in params):
            raise InvalidInput.at(
                (*prefix, "params", name),
                f"{name} is deprecated in PyTorch and not accepted; use reduction "
                "('mean', 'sum' or 'none')",
                "deprecated",
            )
        reject_unknown_keys(params, params_model(spec).model_fields, (*prefix, "params"))
    try:
        model = request_model(spec).model_validate(document)
    except ValidationError as exc:
        raise from_pydantic(exc, prefix) from None
    inputs = {i.name: getattr(model, i.name) for i in spec.inputs}
    given_inputs = {name: value for name, value in inputs.items() if value is not None}
    given = model.params  # type: ignore[attr-defined]
    given_params = {name: getattr(given, name) for name in given.model_fields_set}
    return LossCall(
        spec=spec,
        inputs=given_inputs,
        params=given_params,
        grad=model.grad,  # type: ignore[attr-defined]
        dtype=float_dtype(model.dtype, (*prefix, "dtype")),  # type: ignore[attr-defined]
        device=model.device,  # type: ignore[attr-defined]
    )


def response_payload(result: LossResult, encoding: str) -> dict[str, Any]:
    enc: Encoding = "base64" if encoding == "base64" else "json"
    payload = {
        "loss": encode_loss(result.loss, enc),
        "grad": {name: encode_tensor(g, enc) for name, g in result.grads.items()},
        "dtype": result.dtype,
        "device": result.device,
    }
    if result.warnings:  # only then: answers without warnings keep their shape
        payload["warnings"] = list(result.warnings)
    return payload


def encode_loss(loss: torch.Tensor, encoding: str) -> Any:
    if loss.dim() == 0:
        return encode_scalar(loss.item())
    return encode_tensor(loss, "base64" if encoding == "base64" else "json")


def compute(spec: LossSpec, document: Any, settings: Settings) -> dict[str, Any]:
    call = parse_loss_call(spec, document)
    result = evaluate(call, new_budget(settings))
    return response_payload(result, document.get("encoding", "json"))
