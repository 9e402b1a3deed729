"""``POST /v1/evaluate``: many loss requests in one call, answered in order."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from service.http.evaluate_requests import evaluate_document
from service.http.grading_models import EvaluateRequest, EvaluateResponse
from service.http.json_answer import answer_json
from service.http.routes.losses import ERROR_RESPONSES
from service.http.schemas import request_body, schema_ref

router = APIRouter(prefix="/v1", tags=["losses"])

EXAMPLE = {
    "requests": [
        {"loss": "mse_loss", "input": [1.5, 2.0], "target": [1.0, 2.5], "grad": True},
        {"loss": "l1_loss", "input": [1.5, 2.0], "target": [1.0, 2.5, 0.0]},
    ]
}


@router.post(
    "/evaluate",
    operation_id="evaluate",
    summary="Compute many losses in one call, answered in order",
    description="Each item is a loss request plus `loss` (its name); an item that cannot be "
    "computed gets an `error` problem object and the others are answered. Items that share "
    "an element-wise loss with reduction 'none' and their shapes are stacked and computed "
    "together, with results identical to one by one.",
    response_model=EvaluateResponse,
    responses=ERROR_RESPONSES,
    openapi_extra=request_body(schema_ref(EvaluateRequest), EXAMPLE),
)
async def evaluate(request: Request) -> Response:
    return await answer_json(request, evaluate_document)
