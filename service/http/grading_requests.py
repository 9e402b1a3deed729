"""``POST /v1/grade`` and ``POST /v1/evaluate`` bodies, from parsed JSON to JSON-ready answers.

Synchronous and free of routing, like ``loss_requests``; the routes run these off the loop.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from service.compute.cost import leave_the_loop_for_items
from service.errors import InvalidInput, MalformedBody, PayloadTooLarge
from service.grading.checks import grade
from service.grading.reference import build_reference
from service.grading.tolerances import tolerance_for
from service.http.loss_requests import new_budget, parse_loss_call, response_payload
from service.http.problems import from_pydantic
from service.losses.registry import resolve
from service.observability.metrics import record_grading_checks
from service.settings import Settings

GRADING_FIELDS = frozenset(
    {"loss", "submission", "submissions", "rtol", "atol", "reveal_reference"}
)


class GradeOptions(BaseModel):
    """The fields of a grade request besides the loss request's own."""

    model_config = ConfigDict(extra="ignore", strict=True)

    loss: str
    rtol: float | None = Field(None, ge=0, allow_inf_nan=False)
    atol: float | None = Field(None, ge=0, allow_inf_nan=False)
    reveal_reference: bool = True
    submission: Any = None
    submissions: list[Any] | None = None


def grade_document(document: Any, settings: Settings) -> dict[str, Any]:
    if not isinstance(document, dict):
        raise MalformedBody.at(
            ("body",),
            "must be a JSON object: a loss request plus a submission",
            "dict_type",
        )
    try:
        options = GradeOptions.model_validate(document)
    except ValidationError as exc:
        raise from_pydantic(exc) from None
    many = options.submissions is not None
    if many == ("submission" in document):
        raise InvalidInput.at(
            ("body",), "give exactly one of 'submission' (one) or 'submissions' (a list)"
        )
    if options.submissions is not None and len(options.submissions) > settings.max_submissions:
        raise PayloadTooLarge.at(
            ("body", "submissions"),
            f"{len(options.submissions)} submissions; at most {settings.max_submissions} per "
            "call (LOSS_SERVICE_MAX_SUBMISSIONS)",
        )
    leave_the_loop_for_items(len(options.submissions or ()) or 1)
    spec = resolve(options.loss)
    problem = document.copy()
    for key in [k for k in GRADING_FIELDS if k in document]:
        del problem[key]
    call = parse_loss_call(spec, problem)
    budget = new_budget(settings)
    reference = build_reference(call, budget)
    tolerance = tolerance_for(call.dtype.torch, options.rtol, options.atol)
    reveal = options.reveal_reference

    def graded(submission: Any, loc: tuple[str | int, ...]) -> dict[str, Any]:
        result = grade(reference, submission, tolerance, loc, budget, reveal).as_dict(reveal)
        record_grading_checks(result["checks"])
        return result

    if options.submissions is None:
        answer = graded(options.submission, ("body", "submission"))
    else:
        results = [
            graded(item, ("body", "submissions", index))
            for index, item in enumerate(options.submissions)
        ]
        passed = sum(result["passed"] for result in results)
        answer = {
            "results": results,
            "summary": {
                "submissions": len(results),
                "passed": passed,
                "mean_score": sum(r["score"] for r in results) / len(results) if results else 0.0,
            },
        }
    answer["tolerance"] = {"rtol": tolerance.rtol, "atol": tolerance.atol}
    if reveal:
        answer["reference"] = response_payload(reference.result, problem.get("encoding", "json"))
    return answer
