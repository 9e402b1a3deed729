"""POST /v1/grade: checks, tolerances, non-finite values, missing and malformed quantities,
many submissions, reveal_reference; never a 500."""

from __future__ import annotations

from typing import Any

import pytest
import torch
import torch.nn.functional as F
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

PRED, TRUE = [1.5, 2.0, 3.2], [1.0, 2.5, 2.8]
MSE = {"loss": "mse_loss", "input": PRED, "target": TRUE}


def mse_answer() -> tuple[float, list[float]]:
    x = torch.tensor(PRED, requires_grad=True)
    loss = F.mse_loss(x, torch.tensor(TRUE))
    (grad,) = torch.autograd.grad(loss, x)
    return loss.item(), grad.tolist()


def grade(client: TestClient, body: Any, status: int = 200) -> dict[str, Any]:
    response = client.post("/v1/grade", json=body)
    assert response.status_code == status, response.text
    result: dict[str, Any] = response.json()
    return result


def test_the_issue_example_message(client: TestClient) -> None:
    x = torch.arange(12, dtype=torch.float32).reshape(3, 4) / 10
    y = torch.zeros(3, 4)
    xg = x.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(F.mse_loss(xg, y, reduction="sum"), xg)
    wrong = grad.clone()
    wrong[1, 2] += 0.5
    wrong[0, 1] -= 0.25
    wrong[2, 0] += 0.125
    body = {"loss": "mse_loss", "input": x.tolist(), "target": y.tolist()}
    body |= {"params": {"reduction": "sum"}, "submission": {"grad": {"input": wrong.tolist()}}}
    result = grade(client, body)
    (check,) = result["checks"]
    expected, got = grad[1, 2].item(), wrong[1, 2].item()
    assert check["message"] == (
        "the gradient with respect to input differs at 3 of 12 elements; the largest error "
        f"0.5 is at [1, 2]: expected {expected:.6g}, got {got:.6g}"
    )
    assert check["mismatched"] == 3 and check["mismatched_share"] == 0.25
    assert check["max_abs_error_at"] == [1, 2] and check["worst"]["at"] == [1, 2]
    assert result["passed"] is False and result["score"] == 0.0


def test_score_is_the_share_of_checks_passed(client: TestClient) -> None:
    loss, _ = mse_answer()
    result = grade(client, {**MSE, "submission": {"loss": loss, "grad": {"input": [0, 0, 0]}}})
    assert [c["passed"] for c in result["checks"]] == [True, False]
    assert result["score"] == 0.5 and result["passed"] is False


DEFAULTS = {
    "float32": (1.3e-6, 1e-5),
    "float64": (1e-7, 1e-7),
    "float16": (1e-3, 1e-5),
    "bfloat16": (1.6e-2, 1e-5),
}


@pytest.mark.parametrize("dtype", DEFAULTS)
def test_default_tolerances_are_assert_close_s(client: TestClient, dtype: str) -> None:
    loss, _ = mse_answer()
    result = grade(client, {**MSE, "dtype": dtype, "submission": {"loss": loss}})
    rtol, atol = DEFAULTS[dtype]
    assert result["tolerance"] == {"rtol": rtol, "atol": atol}


def test_just_inside_and_just_outside_the_tolerance(client: TestClient) -> None:
    body = {**MSE, "dtype": "float64"}
    expected = grade(client, {**body, "submission": {}})["reference"]["loss"]
    allowed = 1e-7 + 1e-7 * abs(expected)
    assert grade(client, {**body, "submission": {"loss": expected + 0.8 * allowed}})["passed"]
    assert not grade(client, {**body, "submission": {"loss": expected + 1.2 * allowed}})["passed"]


def test_request_tolerances_replace_the_defaults(client: TestClient) -> None:
    loss, _ = mse_answer()
    body = {**MSE, "submission": {"loss": loss * 1.01}}
    assert not grade(client, body)["passed"]
    assert grade(client, {**body, "rtol": 0.02})["passed"]
    assert grade(client, {**body, "atol": 0.1})["passed"]
    problem = grade(client, {**body, "rtol": -1}, status=422)
    assert problem["errors"][0]["loc"] == ["body", "rtol"]


def test_nan_where_the_reference_is_nan_matches(client: TestClient) -> None:
    body = {"loss": "mse_loss", "input": ["NaN", 1.0], "target": [0.0, 0.0]}
    body["params"] = {"reduction": "none"}
    assert grade(client, {**body, "submission": {"loss": ["NaN", 1.0]}})["passed"]
    assert not grade(client, {**body, "submission": {"loss": [0.0, 1.0]}})["passed"]


@pytest.mark.parametrize("bad", ["NaN", "Infinity", "-Infinity"])
def test_non_finite_where_the_reference_is_finite_fails(client: TestClient, bad: str) -> None:
    (check,) = grade(client, {**MSE, "submission": {"loss": bad}})["checks"]
    assert not check["passed"] and check["reason"] == "non_finite", check


def test_non_finite_elements_are_counted(client: TestClient) -> None:
    body = {**MSE, "params": {"reduction": "none"}, "submission": {"loss": [0.25, "NaN", 0.16]}}
    (check,) = grade(client, body)["checks"]
    assert check["non_finite"] == 1 and "NaN or infinite" in check["message"]
    assert check["reason"] == "non_finite"


def test_wrong_shape_fails_with_a_reason(client: TestClient) -> None:
    result = grade(client, {**MSE, "submission": {"grad": {"input": [0.1, 0.2]}}})
    (check,) = result["checks"]
    assert check["reason"] == "shape" and not check["passed"]
    assert check["message"] == (
        "the gradient with respect to input has shape [2] but must have shape [3]"
    )


def test_a_gradient_the_problem_asks_for_is_missing(client: TestClient) -> None:
    loss, _ = mse_answer()
    result = grade(client, {**MSE, "grad": ["input"], "submission": {"loss": loss}})
    checks = [(c["quantity"], c["reason"]) for c in result["checks"]]
    assert checks == [("loss", "match"), ("grad.input", "missing")]
    assert result["score"] == 0.5


def test_an_empty_submission_misses_the_loss(client: TestClient) -> None:
    result = grade(client, {**MSE, "submission": {}})
    assert [(c["quantity"], c["reason"]) for c in result["checks"]] == [("loss", "missing")]


def test_unreadable_unknown_and_impossible_quantities_fail_their_checks(
    client: TestClient,
) -> None:
    loss, _ = mse_answer()
    grads = {"input": [[1, 2], [3]], "weight": [1, 2, 3]}
    result = grade(client, {**MSE, "submission": {"loss": loss, "grad": grads, "grads": {}}})
    reasons = {c["quantity"]: c["reason"] for c in result["checks"]}
    assert reasons == {
        "grads": "unknown_field",
        "loss": "match",
        "grad.input": "unreadable",
        "grad.weight": "no_gradient",
    }
    unreadable = next(c for c in result["checks"] if c["quantity"] == "grad.input")
    assert "body.submission.grad.input.1" in unreadable["message"]


def test_a_submission_that_is_not_an_object_fails(client: TestClient) -> None:
    result = grade(client, {**MSE, "submission": [1, 2]})
    assert result["checks"][0]["reason"] == "unreadable" and not result["passed"]


def test_problems_in_the_problem_are_4xx_naming_the_field(client: TestClient) -> None:
    problem = grade(client, {**MSE, "params": {"reduction": "avg"}, "submission": {}}, 422)
    assert problem["errors"][0]["loc"][:3] == ["body", "params", "reduction"]
    assert "submission" in grade(client, MSE, 422)["detail"]
    assert (
        "exactly one" in grade(client, {**MSE, "submission": {}, "submissions": []}, 422)["detail"]
    )
    assert grade(client, {**MSE, "loss": "nope", "submission": {}}, 404)["status"] == 404
    problem = grade(client, {**MSE, "colour": 1, "submission": {}}, 422)
    assert problem["errors"][0]["loc"] == ["body", "colour"]


def test_reveal_reference_false_hides_expected_values(client: TestClient) -> None:
    loss, grad = mse_answer()
    wrong_grad = [g + 0.5 for g in grad]
    body = {**MSE, "submission": {"loss": loss + 1.0, "grad": {"input": wrong_grad}}}
    shown = grade(client, body)
    hidden = grade(client, {**body, "reveal_reference": False})
    assert "reference" in shown and "reference" not in hidden
    for check in hidden["checks"]:
        assert not {"expected", "abs_error", "max_abs_error", "max_rel_error"} & set(check)
        assert "expected" not in check.get("worst", {})
        text = check["message"] + " ".join(h["message"] for h in check["hints"])
        for secret in (loss, *grad):
            assert f"{secret:.6g}" not in text
    shown_loss = next(c for c in shown["checks"] if c["quantity"] == "loss")
    assert shown_loss["expected"] == loss and f"{loss:.6g}" in shown_loss["message"]


def test_many_submissions_of_one_problem(client: TestClient) -> None:
    loss, grad = mse_answer()
    submissions = [
        {"loss": loss, "grad": {"input": grad}},
        {"loss": loss * 3},  # the sum of 3 elements
        {"grad": {"input": [-g for g in grad]}},
        "not an object",
    ]
    result = grade(client, {**MSE, "submissions": submissions})
    assert [r["passed"] for r in result["results"]] == [True, False, False, False]
    assert result["summary"] == {"submissions": 4, "passed": 1, "mean_score": 0.25}
    assert result["results"][1]["checks"][0]["hints"][0]["code"] == "sum_instead_of_mean"
    assert result["results"][2]["checks"][0]["hints"][0]["code"] == "sign_flipped"
    one = grade(client, {**MSE, "submission": submissions[1]})
    assert one["checks"] == result["results"][1]["checks"]


def test_too_many_submissions_is_413(make_client: Any) -> None:
    client = make_client(max_submissions=2)
    problem = grade(client, {**MSE, "submissions": [{}, {}, {}]}, 413)
    assert problem["errors"][0]["loc"] == ["body", "submissions"]


def test_the_reference_is_what_the_loss_endpoint_answers(client: TestClient) -> None:
    body = {"input": PRED, "target": TRUE, "grad": True, "encoding": "base64"}
    expected = client.post("/v1/losses/mse_loss", json=body).json()
    result = grade(client, {**body, "loss": "MSELoss", "submission": {}})
    assert result["reference"] == expected


JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=5),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=10,
)
FIELDS = st.dictionaries(st.sampled_from(["rtol", "atol", "grad", "reveal_reference"]), JSON)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(submission=JSON, extra=FIELDS)
def test_no_body_gets_a_500(client: TestClient, submission: Any, extra: dict[str, Any]) -> None:
    for body in (
        {**MSE, **extra, "submission": submission},
        {**MSE, **extra, "submissions": [submission, {"grad": submission}]},
    ):
        response = client.post("/v1/grade", json=body)
        assert response.status_code in (200, 404, 413, 422), response.text


@pytest.mark.parametrize("body", [b"[1]", b"{", b'"x"', b"{}"])
def test_malformed_bodies_are_422(client: TestClient, body: bytes) -> None:
    assert client.post("/v1/grade", content=body).status_code == 422


def _perturbed(reference: dict[str, Any]) -> list[dict[str, Any]]:
    """Submissions a student might send, derived from the reference answer."""
    loss, grads = reference["loss"], reference["grad"]

    tensors = {name: torch.tensor(g, dtype=torch.float64) for name, g in grads.items()}
    variants: list[dict[str, Any]] = [{"loss": loss, "grad": grads}]
    for scale in (2.0, -1.0, 0.0, float("nan")):
        variants.append(
            {
                "loss": _wire(torch.tensor(loss, dtype=torch.float64) * scale),
                "grad": {name: _wire(t * scale) for name, t in tensors.items()},
            }
        )
    variants.append(
        {"grad": {name: _wire(t.permute(*reversed(range(t.dim())))) for name, t in tensors.items()}}
    )
    variants.append({"grad": {name: _wire(t.flatten()[:-1]) for name, t in tensors.items()}})
    return variants


def _wire(tensor: torch.Tensor) -> Any:
    values = tensor.tolist()

    def fix(value: Any) -> Any:
        if isinstance(value, list):
            return [fix(item) for item in value]
        return "NaN" if value != value else value

    return fix(values)


def test_every_loss_grades_perturbed_answers_without_error(client: TestClient) -> None:
    from service.http.examples import LOSS_EXAMPLES

    for name, example in LOSS_EXAMPLES.items():
        body = {**example, "grad": True}
        reference = client.post(f"/v1/losses/{name}", json=body).json()
        variants = _perturbed(reference)
        response = client.post("/v1/grade", json={**body, "loss": name, "submissions": variants})
        assert response.status_code == 200, (name, response.text)
        results = response.json()["results"]
        assert results[0]["passed"], (name, results[0])
        assert all(isinstance(r["score"], float) for r in results)
