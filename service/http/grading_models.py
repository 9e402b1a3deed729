"""Wire models of ``/v1/evaluate`` and ``/v1/grade``: for the OpenAPI document.

The routes read their bodies with orjson and validate them themselves (tensors are never
walked by pydantic); these models describe the same fields.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from service.grading.mistakes import CATALOGUE
from service.http.schemas import LossResponse, Problem, WireTensor


class EvaluateItem(BaseModel):
    """A loss request as for ``POST /v1/losses/{name}``, plus the loss's name."""

    model_config = ConfigDict(extra="allow")

    loss: str = Field(description="The loss's name or alias, e.g. 'mse_loss' or 'MSELoss'.")


class EvaluateRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    requests: list[EvaluateItem] = Field(
        description="Loss requests, each the body of POST /v1/losses/{name} plus `loss`."
    )


class EvaluateError(BaseModel):
    error: Problem = Field(description="Why this item could not be computed.")


class EvaluateResponse(BaseModel):
    results: list[LossResponse | EvaluateError] = Field(
        description="One per request, in order: the loss response, or an `error` problem."
    )


class Submission(BaseModel):
    """What a student computed: the loss and/or gradients by input name."""

    model_config = ConfigDict(extra="forbid")

    loss: WireTensor | None = Field(None, description="A number, or a tensor for 'none'.")
    grad: dict[str, WireTensor] | None = Field(None, description="Gradients by input name.")


class GradeRequest(BaseModel):
    """A loss request (inputs, `params`, `grad`, `dtype`, ... as for POST /v1/losses/{name})
    plus the loss's name and one submission or a list of them."""

    model_config = ConfigDict(extra="allow")

    loss: str = Field(description="The loss's name or alias.")
    submission: Submission | None = Field(None, description="One submission to grade.")
    submissions: list[Submission] | None = Field(
        None, description="Many submissions of the same problem: the reference is computed once."
    )
    rtol: float | None = Field(
        None, ge=0, description="Relative tolerance; default torch.testing.assert_close's."
    )
    atol: float | None = Field(
        None, ge=0, description="Absolute tolerance; default torch.testing.assert_close's."
    )
    reveal_reference: bool = Field(
        True,
        description="false: leave expected values (and errors they can be derived from) out "
        "of the answer, for feedback passed straight to students.",
    )


class Hint(BaseModel):
    code: str = Field(
        description="The mistake, one of: "
        + ", ".join(mistake.code for mistake in CATALOGUE)
        + ". GET /v1/grade/hints describes each."
    )
    message: str = Field(description="What the mistake is and how to fix it, for a student.")


class Worst(BaseModel):
    at: list[int]
    expected: float | str | None = None
    submitted: float | str


class Check(BaseModel):
    quantity: str = Field(description="'loss' or 'grad.<input>'.")
    passed: bool
    reason: str = Field(
        description="match, mismatch, non_finite, shape, missing, unreadable, no_gradient, "
        "unknown_field"
    )
    message: str = Field(description="One sentence a student can act on.")
    hints: list[Hint]
    rtol: float
    atol: float
    shape: dict[str, list[int] | None]
    expected: float | str | None = Field(None, description="Scalar losses, when revealed.")
    submitted: float | str | None = None
    abs_error: float | str | None = None
    rel_error: float | str | None = None
    elements: int | None = None
    mismatched: int | None = None
    mismatched_share: float | None = None
    non_finite: int | None = None
    max_abs_error: float | str | None = None
    max_abs_error_at: list[int] | None = None
    max_rel_error: float | str | None = None
    max_rel_error_at: list[int] | None = None
    worst: Worst | None = None


class GradeResult(BaseModel):
    passed: bool
    score: float = Field(description="The share of checks passed.")
    checks: list[Check]


class Tolerances(BaseModel):
    rtol: float
    atol: float


class Summary(BaseModel):
    submissions: int
    passed: int
    mean_score: float


class GradeResponse(GradeResult):
    """One submission's grade (the `submission` form)."""

    tolerance: Tolerances
    reference: LossResponse | None = Field(None, description="Absent with reveal_reference false.")


class GradeManyResponse(BaseModel):
    """One grade per submission, in order (the `submissions` form)."""

    results: list[GradeResult]
    summary: Summary
    tolerance: Tolerances
    reference: LossResponse | None = Field(None, description="Absent with reveal_reference false.")


class HintExample(BaseModel):
    request: dict[str, Any] = Field(
        description="A complete POST /v1/grade body: a small problem and the submission the "
        "mistake produces."
    )
    quantity: str = Field(description="The check that gets the hint: 'loss' or 'grad.<input>'.")
    hint: str | None = Field(description="The hint's message for this example.")


class HintCode(BaseModel):
    code: str
    losses: list[str] = Field(description="The losses whose checks can get this hint.")
    quantities: list[str] = Field(description="'loss', 'grad' or both.")
    description: str = Field(description="The mistake, as a student makes it.")
    example: HintExample


class HintListing(BaseModel):
    """Every hint code, generated from the catalogue of mistakes."""

    hints: list[HintCode]


def request_models() -> list[type[BaseModel]]:
    return [EvaluateRequest, GradeRequest]
