"""``POST /v1/grade``: a submitted loss and gradients against torch's, with hints."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from service.grading.hint_docs import hint_listing
from service.http.grading_models import (
    GradeManyResponse,
    GradeRequest,
    GradeResponse,
    HintListing,
)
from service.http.grading_requests import grade_document
from service.http.json_answer import answer_json
from service.http.routes.losses import ERROR_RESPONSES
from service.http.schemas import Problem, request_body, schema_ref

router = APIRouter(prefix="/v1", tags=["grading"])

EXAMPLE = {
    "loss": "cross_entropy",
    "input": [[2.0, 1.0, 0.1], [0.5, 2.5, 0.3]],
    "target": [0, 1],
    "grad": ["input"],
    "submission": {"loss": 0.6, "grad": {"input": [[-0.2, 0.1, 0.1], [0.1, -0.2, 0.1]]}},
}


@router.post(
    "/grade",
    operation_id="grade",
    summary="Grade a submitted loss and gradients (one submission or many) against PyTorch",
    description="The body is a loss request (as for POST /v1/losses/{name}) plus `loss`, and "
    "`submission` or `submissions`. Each check compares one quantity with "
    "torch.testing.assert_close's tolerances (or `rtol` / `atol`); hints name known mistakes "
    "the numbers confirm. With `submissions` the reference is computed once and the answer "
    "is `{results, summary}`.",
    response_model=GradeResponse | GradeManyResponse,
    responses={**ERROR_RESPONSES, 404: {"model": Problem, "description": "Unknown loss."}},
    openapi_extra=request_body(schema_ref(GradeRequest), EXAMPLE),
)
async def grade(request: Request) -> Response:
    return await answer_json(request, grade_document)


@router.get(
    "/grade/hints",
    operation_id="list_hints",
    summary="Every hint code grading can give, with the losses it applies to and an example",
    description="Generated from the catalogue of known mistakes. A hint names a mistake only "
    "when the mistake's own recomputation reproduces the submission within the grading "
    "tolerance; each entry's example is a complete POST /v1/grade body that gets it.",
    response_model=HintListing,
)
def list_hints() -> dict[str, Any]:
    return {"hints": list(hint_listing())}
