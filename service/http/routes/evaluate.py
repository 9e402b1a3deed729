"""``POST /v1/evaluate``: many loss requests in one call, answered in order."""

from __future__ import annotations

from contextlib import nullcontext

from fastapi import APIRouter, Request
from starlette.responses import Response

from service.http.context import LARGE_BODY_BYTES, context
from service.http.evaluate_requests import evaluate_document
from service.http.grading_models import EvaluateRequest, EvaluateResponse, request_body
from service.http.routes.losses import ERROR_RESPONSES
from service.tensors.wirejson import dumps, gc_paused, loads

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
    openapi_extra=request_body(EvaluateRequest, EXAMPLE),
)
async def evaluate(request: Request) -> Response:
    ctx = context(request)
    body = await request.body()

    def work() -> bytes:
        with gc_paused() if len(body) > LARGE_BODY_BYTES else nullcontext():
            return dumps(evaluate_document(loads(body), ctx.settings))

    return Response(await ctx.offloader.run(work, len(body)), media_type="application/json")
