"""``POST /v1/information``: entropy, cross-entropy, KL divergence and self-information."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field, StrictBool, ValidationError, WithJsonSchema
from starlette.responses import Response

from service.compute.devices import DEVICE_PATTERN
from service.compute.information import InformationCall, InformationResult, measure
from service.errors import MalformedBody
from service.http.json_answer import answer_json
from service.http.loss_requests import new_budget
from service.http.problems import from_pydantic, reject_unknown_keys
from service.http.routes.losses import ERROR_RESPONSES
from service.http.schemas import (
    Encoding,
    FloatDType,
    WireTensor,
    grad_schema,
    request_body,
    schema_ref,
)
from service.tensors.codec import encode_scalar, encode_tensor
from service.tensors.dtypes import float_dtype

router = APIRouter(prefix="/v1", tags=["information"])

EXAMPLE: dict[str, Any] = {
    "p": [[0.7, 0.2, 0.1]],
    "q": [[0.5, 0.3, 0.2]],
    "base": "bits",
    "grad": True,
}


class InformationRequest(BaseModel):
    """Two distributions over the last dimension, as probabilities or logits."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [EXAMPLE]})

    p: WireTensor = Field(description="The true distribution P, shape (..., K).")
    q: WireTensor | None = Field(
        None, description="The model distribution Q, same shape as p; omit for H(P) alone."
    )
    logits: StrictBool = Field(False, description="p and q are logits (softmax is applied).")
    base: Literal["nats", "e", "bits", "2"] = Field(
        "nats", description="Units: nats (natural log, base e) or bits (log base 2)."
    )
    reduction: Literal["mean", "sum"] = Field("mean", description="How rows are reduced.")
    grad: Annotated[StrictBool | list[Literal["q"]], WithJsonSchema(grad_schema(("q",)))] = Field(
        False, description="true or ['q']: the gradient of the reduced H(P, Q) with respect to q."
    )
    dtype: FloatDType = "float32"
    device: str = Field("auto", pattern=DEVICE_PATTERN)
    encoding: Encoding = "json"


class InformationResponse(BaseModel):
    self_information: WireTensor = Field(description="-log P(x) of each outcome, shape of p.")
    entropy: WireTensor = Field(description="H(P) of each row.")
    cross_entropy: WireTensor | None = Field(None, description="H(P, Q) of each row.")
    kl_divergence: WireTensor | None = Field(None, description="D_KL(P || Q) of each row.")
    reduced: dict[str, float | str] = Field(
        description="Each measure reduced over the rows; H(P, Q) = H(P) + D_KL(P || Q)."
    )
    grad: dict[str, WireTensor] = Field(description="{'q': dH(P, Q)/dq} when asked for.")
    base: Literal["nats", "bits"]
    reduction: Literal["mean", "sum"]
    dtype: str
    device: str


def _payload(result: InformationResult, request: InformationRequest) -> dict[str, Any]:
    encoding = request.encoding
    payload: dict[str, Any] = {
        "self_information": encode_tensor(result.self_information, encoding),
        **{name: encode_tensor(value, encoding) for name, value in result.per_row.items()},
        "reduced": {name: encode_scalar(v.item()) for name, v in result.reduced.items()},
        "grad": {} if result.grad_q is None else {"q": encode_tensor(result.grad_q, encoding)},
        "base": "bits" if request.base in ("bits", "2") else "nats",
        "reduction": request.reduction,
        "dtype": result.dtype,
        "device": result.device,
    }
    return payload


def information_answer(document: Any, budget_settings: Any) -> dict[str, Any]:
    if not isinstance(document, dict):
        raise MalformedBody.at(("body",), "must be a JSON object with p (and q)", "dict_type")
    reject_unknown_keys(document, InformationRequest.model_fields, ("body",))
    try:
        request = InformationRequest.model_validate(document)
    except ValidationError as exc:
        raise from_pydantic(exc) from None
    call = InformationCall(
        p=request.p,
        q=request.q,
        logits=request.logits,
        bits=request.base in ("bits", "2"),
        reduction=request.reduction,
        grad_q=request.grad is True or request.grad == ["q"],
        dtype=float_dtype(request.dtype, ("body", "dtype")),
        device=request.device,
    )
    return _payload(measure(call, new_budget(budget_settings)), request)


@router.post(
    "/information",
    operation_id="information_measures",
    summary="Entropy, cross-entropy, KL divergence and self-information of distributions",
    response_model=InformationResponse,
    responses=ERROR_RESPONSES,
    openapi_extra=request_body(schema_ref(InformationRequest), EXAMPLE),
)
async def information(request: Request) -> Response:
    return await answer_json(request, information_answer)
