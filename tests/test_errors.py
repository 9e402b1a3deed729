"""Every error of the loss API is an application/problem+json 4xx that names the field."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from service.losses.registry import catalogue
from tests.support.app import module_client
from tests.support.wire import assert_problem, post, post_raw

LOGITS = [[1.2, 0.4, -0.5], [0.8, 1.9, -1.2]]
LOG_PROBS = [[-1.2, -0.6, -1.6], [-0.3, -2.1, -1.9]]


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    yield from module_client(tmp_path_factory)


def ctc_body(**changes: Any) -> dict[str, Any]:
    """A valid ctc_loss request (T=3, N=2, C=3), with ``changes`` applied."""
    row = [-1.1, -1.1, -1.1]
    body: dict[str, Any] = {
        "log_probs": [[row, row]] * 3,
        "targets": [[1, 2], [2, 0]],
        "input_lengths": [3, 3],
        "target_lengths": [2, 1],
    }
    return body | changes


# ---------------------------------------------------------------------------------------------
# The body as a whole


@pytest.mark.parametrize(
    "content", [b"{", b"", b'{"input": [1,]}', b"\xff\xfe", b"{'a': 1}", b"NaN"]
)
def test_malformed_json(api: TestClient, content: bytes) -> None:
    assert_problem(post_raw(api, "/v1/losses/mse_loss", content), 422, ["body"], says="JSON")


@pytest.mark.parametrize("content", [b"[1, 2]", b"null", b'"x"', b"3"])
def test_non_object_body_names_the_body(api: TestClient, content: bytes) -> None:
    assert_problem(post_raw(api, "/v1/losses/mse_loss", content), 422, ["body"])


@pytest.mark.parametrize("content", [b"[1, 2]", b"null", b'"x"', b"3"])
def test_non_object_body_is_a_422_problem(api: TestClient, content: bytes) -> None:
    assert_problem(post_raw(api, "/v1/losses/mse_loss", content), 422, says="JSON object")


def test_unknown_top_level_field(api: TestClient) -> None:
    body = {"input": [1.0], "target": [1.0], "inputs": [2.0]}
    assert_problem(post(api, "/v1/losses/mse_loss", body), 422, ["body", "inputs"], says="unknown")


def test_missing_input(api: TestClient) -> None:
    assert_problem(post(api, "/v1/losses/mse_loss", {"input": [1.0]}), 422, ["body", "target"])


# ---------------------------------------------------------------------------------------------
# Tensors


@pytest.mark.parametrize(
    ("field", "value", "loc", "says"),
    [
        ("input", [[1.0, 2.0], [3.0]], ["body", "input", 1], "ragged"),
        ("input", [[1.0, 2.0], 3.0], ["body", "input", 1], "ragged"),
        ("target", {"shape": [2, 2], "data": [1, 2, 3]}, ["body", "target", "data"], "shape"),
        (
            "input",
            {"shape": [3], "dtype": "float32", "base64": "AACAPw=="},
            ["body", "input", "base64"],
            "bytes",
        ),
        (
            "input",
            {"shape": [1], "dtype": "float32", "base64": "AACAP"},
            ["body", "input", "base64"],
            "base64",
        ),
        (
            "input",
            {"shape": [1], "dtype": "float32", "base64": "AAC*Pw=="},
            ["body", "input", "base64"],
            "base64",
        ),
        (
            "input",
            {"shape": [1], "dtype": "complex64", "data": [1]},
            ["body", "input", "dtype"],
            "unknown dtype",
        ),
        (
            "input",
            {"shape": [1], "dtype": "fp32", "data": [1]},
            ["body", "input", "dtype"],
            "unknown dtype",
        ),
        ("input", ["one", "two"], ["body", "input", 0], "string"),
        ("input", [[1.0], [{"a": 1}]], ["body", "input", 1, 0], "object"),
        ("input", None, ["body", "input"], "required"),
        ("target", None, ["body", "target"], "required"),
        ("input", {"shape": "2", "data": [1, 2]}, ["body", "input", "shape"], "shape"),
        ("input", {"shape": [1.5], "data": [1]}, ["body", "input", "shape"], "shape"),
        ("input", {"shape": [2], "data": [[1], [2]]}, ["body", "input", "data"], "flat"),
    ],
)
def test_malformed_tensors(
    api: TestClient, field: str, value: Any, loc: list[Any], says: str | None
) -> None:
    body = {"input": [1.0, 2.0], "target": [1.0, 2.0], field: value}
    assert_problem(post(api, "/v1/losses/mse_loss", body), 422, loc, says)


@pytest.mark.parametrize("dtype", ["int64", "float8", "FP128", 32, None])
def test_request_dtype_must_be_a_float_dtype(api: TestClient, dtype: Any) -> None:
    body = {"input": [1.0], "target": [1.0], "dtype": dtype}
    assert_problem(post(api, "/v1/losses/mse_loss", body), 422, ["body", "dtype"])


@pytest.mark.parametrize("encoding", ["hex", "BASE64", 1])
def test_unknown_encoding(api: TestClient, encoding: Any) -> None:
    body = {"input": [1.0], "target": [1.0], "encoding": encoding}
    assert_problem(post(api, "/v1/losses/mse_loss", body), 422, ["body", "encoding"])


# ---------------------------------------------------------------------------------------------
# Losses and params


@pytest.mark.parametrize("path", ["/v1/losses/focal", "/v1/losses/MSE_Loss_", "/v1/losses/%20"])
def test_unknown_loss_lists_the_known(api: TestClient, path: str) -> None:
    problem = assert_problem(post(api, path, {"input": [1.0], "target": [1.0]}), 404)
    assert problem["known_losses"] == sorted(catalogue())
    assert "mse_loss" in problem["detail"] and "cross_entropy" in problem["detail"]


def test_unknown_param(api: TestClient) -> None:
    body = {"input": [1.0], "target": [1.0], "params": {"reductions": "sum"}}
    assert_problem(post(api, "/v1/losses/mse_loss", body), 422, ["body", "params", "reductions"])


@pytest.mark.parametrize("name", ["size_average", "reduce"])
@pytest.mark.parametrize("loss", ["mse_loss", "cross_entropy", "kl_div"])
def test_deprecated_params(api: TestClient, loss: str, name: str) -> None:
    body = {"input": [[0.5, 0.5]], "target": [[0.5, 0.5]], "params": {name: False}}
    problem = assert_problem(post(api, f"/v1/losses/{loss}", body), 422, ["body", "params", name])
    assert "deprecated" in problem["detail"]


@pytest.mark.parametrize(
    ("loss", "params", "name"),
    [
        ("mse_loss", {"reduction": "avg"}, "reduction"),
        ("mse_loss", {"reduction": None}, "reduction"),
        ("mse_loss", {"reduction": "batchmean"}, "reduction"),
        ("cross_entropy", {"label_smoothing": 1.5}, "label_smoothing"),
        ("cross_entropy", {"label_smoothing": "0.1"}, "label_smoothing"),
        ("cross_entropy", {"ignore_index": 1.5}, "ignore_index"),
        ("cross_entropy", {"ignore_index": True}, "ignore_index"),
        ("huber_loss", {"delta": -1.0}, "delta"),
        ("huber_loss", {"delta": "1"}, "delta"),
        ("poisson_nll_loss", {"log_input": 1}, "log_input"),
        ("multi_margin_loss", {"p": 3}, "p"),
        (
            "triplet_margin_with_distance_loss",
            {"distance_function": "manhattan"},
            "distance_function",
        ),
        ("cross_entropy", {"weight": "heavy"}, "weight"),
        ("cross_entropy", {"weight": [[1.0, 2.0], [3.0]]}, "weight"),
    ],
)
def test_invalid_param_values(
    api: TestClient, loss: str, params: dict[str, Any], name: str
) -> None:
    spec = catalogue()[loss]
    body: dict[str, Any] = {i.name: [[0.5, 0.5, 0.5]] for i in spec.inputs}
    body["params"] = params
    problem = assert_problem(post(api, f"/v1/losses/{loss}", body), 422)
    locs = [e["loc"][:3] for e in problem["errors"]]
    assert ["body", "params", name] in locs, problem


def test_params_must_be_an_object(api: TestClient) -> None:
    body = {"input": [1.0], "target": [1.0], "params": ["sum"]}
    assert_problem(post(api, "/v1/losses/mse_loss", body), 422, ["body", "params"])


# ---------------------------------------------------------------------------------------------
# Index inputs: dtypes and ranges


@pytest.mark.parametrize(
    ("loss", "target", "says"),
    [
        ("nll_loss", [1.0, 0.0], "integers"),
        ("nll_loss", [True, False], "boolean"),
        ("nll_loss", {"shape": [2], "dtype": "float32", "data": [1, 0]}, "floating point"),
        ("cross_entropy", [True, False], "boolean"),
        ("multi_margin_loss", [0.5, 1.0], "integers"),
    ],
)
def test_wrong_target_dtype(api: TestClient, loss: str, target: Any, says: str) -> None:
    body = {"input": LOG_PROBS, "target": target}
    assert_problem(post(api, f"/v1/losses/{loss}", body), 422, ["body", "target"], says)


@pytest.mark.parametrize(
    ("loss", "target", "params", "loc"),
    [
        ("nll_loss", [1, 3], {}, ["body", "target", 1]),
        ("nll_loss", [-1, 0], {}, ["body", "target", 0]),
        ("cross_entropy", [0, 7], {}, ["body", "target", 1]),
        ("cross_entropy", [0, -100], {"ignore_index": 2}, ["body", "target", 1]),
        ("multi_margin_loss", [3, 0], {}, ["body", "target", 0]),
        ("multilabel_margin_loss", [[0, -2, 1], [1, 1, 1]], {}, ["body", "target", 0, 1]),
        ("multilabel_margin_loss", [[0, 1, 3], [1, 1, 1]], {}, ["body", "target", 0, 2]),
    ],
)
def test_class_index_out_of_range(
    api: TestClient, loss: str, target: Any, params: dict[str, Any], loc: list[Any]
) -> None:
    body = {"input": LOG_PROBS, "target": target, "params": params}
    assert_problem(post(api, f"/v1/losses/{loss}", body), 422, loc, says="out of range")


@pytest.mark.parametrize("ignore_index", [-100, -1, 5, 2])
@pytest.mark.parametrize("loss", ["nll_loss", "cross_entropy"])
def test_ignore_index_is_allowed_out_of_range(
    api: TestClient, loss: str, ignore_index: int
) -> None:
    body = {
        "input": LOG_PROBS,
        "target": [ignore_index, 1],
        "params": {"ignore_index": ignore_index},
    }
    response = post(api, f"/v1/losses/{loss}", body)
    assert response.status_code == 200, response.text


@pytest.mark.parametrize(("value", "index"), [([0.5, 1.5], 1), ([-0.1, 0.5], 0), ([0.5, "NaN"], 1)])
def test_bce_input_outside_0_1(api: TestClient, value: list[Any], index: int) -> None:
    body = {"input": value, "target": [1.0, 0.0]}
    response = post(api, "/v1/losses/binary_cross_entropy", body)
    if value[index] == "NaN":  # NaN is not outside [0, 1]: torch answers NaN, never a 500
        assert response.status_code in (200, 422), response.text
        return
    assert_problem(response, 422, ["body", "input", index], says="[0, 1]")


@pytest.mark.parametrize(
    ("changes", "loc"),
    [
        ({"targets": [[1, 3], [2, 0]]}, ["body", "targets", 0, 1]),
        ({"targets": [[1, -1], [2, 0]]}, ["body", "targets", 0, 1]),
        ({"input_lengths": [4, 3]}, ["body", "input_lengths", 0]),
        ({"input_lengths": [3, -1]}, ["body", "input_lengths", 1]),
        ({"target_lengths": [3, 1]}, ["body", "target_lengths", 0]),
        ({"targets": [1, 2, 2], "target_lengths": [2, 2]}, ["body", "target_lengths"]),
        ({"params": {"blank": 3}}, ["body", "params", "blank"]),
        ({"params": {"blank": -1}}, ["body", "params", "blank"]),
        ({"log_probs": [-1.0, -2.0]}, ["body", "log_probs"]),
        ({"input_lengths": [3.0, 3.0]}, ["body", "input_lengths"]),
    ],
)
def test_ctc_indices_out_of_range(api: TestClient, changes: dict[str, Any], loc: list[Any]) -> None:
    assert post(api, "/v1/losses/ctc_loss", ctc_body()).status_code == 200
    assert_problem(post(api, "/v1/losses/ctc_loss", ctc_body(**changes)), 422, loc)


# ---------------------------------------------------------------------------------------------
# What torch itself rejects


@pytest.mark.parametrize(
    ("loss", "body", "says"),
    [
        ("cross_entropy", {"input": LOGITS, "target": [1, 2, 0]}, "batch_size"),
        (
            "mse_loss",
            {"input": [[1.0, 2.0]], "target": [[1.0], [2.0], [3.0]], "params": {"weight": [1.0]}},
            "size",
        ),
        (
            "cross_entropy",
            {"input": LOGITS, "target": [0, 1], "params": {"weight": [1.0, 2.0]}},
            "weight",
        ),
        (
            "gaussian_nll_loss",
            {"input": [1.0, 2.0], "target": [1.0, 2.0], "var": [-1.0, 1.0]},
            "var",
        ),
        ("kl_div", {"input": [[1.0, 2.0]], "target": [[1.0, 2.0, 3.0]]}, "size"),
    ],
)
def test_torch_errors_are_readable_422s(
    api: TestClient, loss: str, body: dict[str, Any], says: str
) -> None:
    problem = assert_problem(post(api, f"/v1/losses/{loss}", body), 422, says=says)
    assert problem["detail"].startswith(f"torch.nn.functional.{loss} rejected the inputs: ")


# ---------------------------------------------------------------------------------------------
# Gradients asked for


@pytest.mark.parametrize(
    ("loss", "grad", "loc", "says"),
    [
        ("mse_loss", ["output"], ["body", "grad", 0], "not an input"),
        ("mse_loss", ["input", "weights"], ["body", "grad", 1], "not an input"),
        ("nll_loss", ["target"], ["body", "grad", 0], "not differentiable"),
        ("cross_entropy", ["target"], ["body", "grad", 0], "class indices"),
        ("ctc_loss", ["input_lengths"], ["body", "grad", 0], "not differentiable"),
        ("cosine_embedding_loss", ["target"], ["body", "grad", 0], "not differentiable"),
    ],
)
def test_wrong_grad_names(
    api: TestClient, loss: str, grad: list[str], loc: list[Any], says: str
) -> None:
    bodies: dict[str, dict[str, Any]] = {
        "mse_loss": {"input": [1.0], "target": [2.0]},
        "nll_loss": {"input": LOG_PROBS, "target": [0, 1]},
        "cross_entropy": {"input": LOGITS, "target": [0, 1]},
        "ctc_loss": ctc_body(),
        "cosine_embedding_loss": {"input1": [[1.0]], "input2": [[2.0]], "target": [1.0]},
    }
    assert_problem(post(api, f"/v1/losses/{loss}", {**bodies[loss], "grad": grad}), 422, loc, says)


@pytest.mark.parametrize("grad", ["input", [1], {"input": True}, None, [["input"]]])
def test_grad_of_the_wrong_type(api: TestClient, grad: Any) -> None:
    body = {"input": [1.0], "target": [2.0], "grad": grad}
    problem = assert_problem(post(api, "/v1/losses/mse_loss", body), 422)
    assert all(e["loc"][:2] == ["body", "grad"] for e in problem["errors"]), problem


@pytest.mark.parametrize("grad", [1, 0, "true", [1], {"input": True}, None])
def test_grad_must_be_a_boolean_or_names(api: TestClient, grad: Any) -> None:
    body = {"input": [1.0], "target": [2.0], "grad": grad}
    assert_problem(post(api, "/v1/losses/mse_loss", body), 422, ["body", "grad"], says="list")


def test_torch_shape_errors_name_the_body(api: TestClient) -> None:
    body = {"input": [1.0, 2.0], "target": [1.0, 2.0, 3.0]}
    assert_problem(post(api, "/v1/losses/mse_loss", body), 422, ["body"], says="rejected")


def test_unbatched_ctc_targets_are_concatenated_labels(api: TestClient) -> None:
    body = {
        "log_probs": {"shape": [6, 4], "data": [-1.3863] * 24},
        "targets": [1, 2, 3],
        "input_lengths": 6,
        "target_lengths": 2,
    }
    assert_problem(post(api, "/v1/losses/ctc_loss", body), 422, ["body", "target_lengths"])
