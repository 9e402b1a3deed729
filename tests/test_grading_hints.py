"""Every hint code: submissions made by the wrong implementation (numpy, written as a student
would, several sizes, float32 and float64) get it; the right answer and near misses of it do
not. The catalogue's own examples get their codes, and the listing and docs page are current."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from service.grading.hint_docs import DOCS_PATH, hint_listing, markdown
from service.grading.mistakes import CATALOGUE
from service.settings import Settings
from tests.support.hint_eval import KindResult, Report, evaluate_kind
from tests.support.student_kinds import KINDS
from tests.support.students import Kind

ROOT = Path(__file__).resolve().parents[1]
TESTED = [kind for kind in KINDS if kind.tested]
_RESULTS: dict[str, KindResult] = {}


def result_of(kind: Kind) -> KindResult:
    """Each kind is graded once per test session (the evaluation test reuses the results)."""
    if kind.name not in _RESULTS:
        _RESULTS[kind.name] = evaluate_kind(kind, Settings())
    return _RESULTS[kind.name]


def test_every_hint_code_is_tested_with_a_wrong_implementation() -> None:
    tested = {kind.code for kind in TESTED}
    assert {mistake.code for mistake in CATALOGUE} <= tested


@pytest.mark.parametrize("kind", TESTED, ids=[kind.name for kind in TESTED])
def test_the_wrong_implementation_gets_its_hint_and_right_answers_none(kind: Kind) -> None:
    result = result_of(kind)
    assert result.submissions == 4  # two sizes, float32 and float64
    assert result.failed == result.submissions
    assert result.right == result.submissions, (result.kind.code, result.wrong)
    assert result.correct_failed == 0 and result.correct_hints == []
    assert result.near_passed == 0 and result.near_hints == []


def test_the_evaluation_set_meets_the_targets() -> None:
    """A wider set than the tests above (kinds the catalogue has no code for included):
    at least 80% of wrong submissions get the right hint, at least 95% of hints name the
    right mistake, no hint on a right answer or a near miss."""
    report = Report([result_of(kind) for kind in KINDS])
    assert len(report.results) > len(TESTED)
    assert report.recall >= 0.80, report.recall
    assert report.precision >= 0.95, report.precision
    assert report.correct_hints == 0 and report.near_hints == 0
    assert all(r.correct_failed == 0 for r in report.results)


def test_every_catalogue_example_gets_its_code() -> None:
    listing = hint_listing()
    assert [entry["code"] for entry in listing] == [mistake.code for mistake in CATALOGUE]
    for entry in listing:
        assert entry["example"]["hint"], entry["code"]


def test_the_listing_endpoint(client: TestClient) -> None:
    response = client.get("/v1/grade/hints")
    assert response.status_code == 200
    hints = response.json()["hints"]
    assert [h["code"] for h in hints] == [mistake.code for mistake in CATALOGUE]
    kl = next(h for h in hints if h["code"] == "mean_instead_of_batchmean")
    assert kl["losses"] == ["kl_div"] and kl["quantities"] == ["loss", "grad"]
    for entry in [*hints[:3], kl]:  # each example, posted as it is, gets its hint
        graded = client.post("/v1/grade", json=entry["example"]["request"]).json()
        check = next(c for c in graded["checks"] if c["quantity"] == entry["example"]["quantity"])
        assert [h["code"] for h in check["hints"]] == [entry["code"]]
        assert check["hints"][0]["message"] == entry["example"]["hint"]


def test_the_docs_page_is_generated_from_the_catalogue() -> None:
    page = (ROOT / DOCS_PATH).read_text(encoding="utf-8")
    assert page == markdown(), (
        "docs/grading-hints.md is stale: regenerate it with `python -m service.grading.hint_docs`"
    )


def _codes(body: dict[str, object], quantity: str) -> list[str]:
    from service.http.grading_requests import grade_document

    answer = grade_document(body, Settings())
    check = next(c for c in answer["checks"] if c["quantity"] == quantity)
    assert not check["passed"]
    return [hint["code"] for hint in check["hints"]]


def test_two_mistakes_that_give_the_same_numbers_get_no_hint() -> None:
    """With two elements and reduction 'sum', the gradient of the mean and the gradient
    without mse's factor 2 are the same numbers: naming either would be a guess."""
    x, y = [1.5, 2.0], [1.0, 2.5]
    half = [a - b for a, b in zip(x, y, strict=True)]
    body = {"loss": "mse_loss", "input": x, "target": y, "params": {"reduction": "sum"}}
    assert _codes({**body, "submission": {"grad": {"input": half}}}, "grad.input") == []
    three = {**body, "input": [*x, 3.2], "target": [*y, 2.8]}  # now they differ
    half3 = [*half, 3.2 - 2.8]
    codes = _codes({**three, "submission": {"grad": {"input": half3}}}, "grad.input")
    assert codes == ["mse_gradient_missing_2"]


def test_the_more_specific_mistake_is_named() -> None:
    """log(p + eps) is one way of not clamping like PyTorch: bce_log_eps, not bce_log_clamp."""
    import math

    p, y = [0.0, 0.7, 0.4], [1.0, 1.0, 0.0]
    shifted = [
        -(t * math.log(q + 1e-7) + (1 - t) * math.log(1 - q + 1e-7))
        for q, t in zip(p, y, strict=True)
    ]
    body: dict[str, object] = {"loss": "binary_cross_entropy", "input": p, "target": y}
    body["params"] = {"reduction": "none"}
    assert _codes({**body, "submission": {"loss": shifted}}, "loss") == ["bce_log_eps"]
    other = [50.0, *shifted[1:]]  # another clamp, not one the catalogue knows
    assert _codes({**body, "submission": {"loss": other}}, "loss") == ["bce_log_clamp"]
