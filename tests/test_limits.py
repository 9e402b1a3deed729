"""The limits that protect the server: body size (413), tensor elements (413), nesting (422)."""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterator
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient

from tests.support.wire import assert_problem, post, post_raw

MAX_BODY = 4096
MAX_ELEMENTS = 1000
MAX_DEPTH = 4

MakeClient = Callable[..., TestClient]


@pytest.fixture
def limited(make_client: MakeClient) -> TestClient:
    return make_client(
        max_body_bytes=MAX_BODY, max_tensor_elements=MAX_ELEMENTS, max_nesting_depth=MAX_DEPTH
    )


@pytest.fixture
def few_elements(make_client: MakeClient) -> TestClient:
    """Elements limited, bodies not: the element count is what stops a request."""
    return make_client(max_tensor_elements=MAX_ELEMENTS, max_nesting_depth=MAX_DEPTH)


def nested(depth: int, leaf: Any = 1.0) -> Any:
    value = leaf
    for _ in range(depth):
        value = [value]
    return value


# ---------------------------------------------------------------------------------------------
# Body size


def test_body_over_the_limit_is_a_413(limited: TestClient) -> None:
    body = {"input": [0.5] * 600, "target": [0.5] * 600}
    content = orjson.dumps(body)
    assert len(content) > MAX_BODY
    assert_problem(post_raw(limited, "/v1/losses/mse_loss", content), 413, says="bytes")


def test_body_just_under_the_limit_is_computed(limited: TestClient) -> None:
    body = {"input": [0.5] * 300, "target": [0.25] * 300}
    assert len(orjson.dumps(body)) < MAX_BODY
    assert post(limited, "/v1/losses/mse_loss", body).status_code == 200


def test_chunked_body_without_content_length_is_a_413(limited: TestClient) -> None:
    chunk = b"[" + b"0.5," * 500

    def chunks() -> Iterator[bytes]:
        yield b'{"input": '
        for _ in range(4):
            yield chunk
        yield b"0.5]}"

    response = limited.post(
        "/v1/losses/mse_loss", content=chunks(), headers={"content-type": "application/json"}
    )
    assert_problem(response, 413, says="bytes")


def test_small_chunked_body_is_computed(limited: TestClient) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"input": [1.5, 2.0],'
        yield b' "target": [1.0, 2.5]}'

    response = limited.post(
        "/v1/losses/mse_loss", content=chunks(), headers={"content-type": "application/json"}
    )
    assert response.status_code == 200, response.text
    assert response.json()["loss"] == 0.25


def test_every_loss_route_and_alias_is_limited(limited: TestClient) -> None:
    content = orjson.dumps({"input": [0.5] * 1200})
    for path in ("/v1/losses/cross_entropy", "/v1/losses/MSELoss", "/v1/losses/no_such_loss"):
        assert_problem(post_raw(limited, path, content), 413)


# ---------------------------------------------------------------------------------------------
# Tensor elements


@pytest.mark.parametrize(
    "body",
    [
        {"input": [0.0] * 400, "target": [0.0] * 400, "params": {"weight": [1.0] * 400}},
        {"input": {"shape": [1001], "dtype": "float32", "data": [0.0]}, "target": [0.0]},
        {"input": {"shape": [100, 100], "dtype": "float32", "base64": "AAAAAA=="}, "target": 0.0},
        {"input": {"shape": [2**31, 2**31], "dtype": "float32", "data": []}, "target": 0.0},
        {"input": {"shape": [0, 2**62, 2**62], "dtype": "float32", "data": []}, "target": 0.0},
        {"input": {"shape": [0, 2**62, 2**62], "dtype": "float32", "base64": ""}, "target": 0.0},
        {"input": {"shape": [2000, 0], "dtype": "bool", "data": []}, "target": 0.0},
    ],
)
def test_too_many_elements_is_a_413(few_elements: TestClient, body: dict[str, Any]) -> None:
    assert_problem(post(few_elements, "/v1/losses/mse_loss", body), 413, says="elements")


def test_elements_are_counted_across_all_tensors(few_elements: TestClient) -> None:
    fits = {"input": [0.0] * 330, "target": [0.0] * 330}
    assert post(few_elements, "/v1/losses/mse_loss", fits).status_code == 200
    over = {"input": fits["input"], "target": fits["target"], "params": {"weight": [1.0] * 400}}
    assert_problem(
        post(few_elements, "/v1/losses/mse_loss", over), 413, ["body", "params", "weight"]
    )


def test_element_limit_applies_to_base64(few_elements: TestClient) -> None:
    raw = base64.b64encode(bytes(4 * 1001)).decode()
    body = {"input": {"shape": [1001], "dtype": "float32", "base64": raw}, "target": 0.0}
    problem = assert_problem(post(few_elements, "/v1/losses/l1_loss", body), 413)
    assert problem["errors"][0]["loc"][:2] == ["body", "input"]


# ---------------------------------------------------------------------------------------------
# Nesting depth


def test_nesting_at_the_limit_is_computed(limited: TestClient) -> None:
    body = {"input": nested(MAX_DEPTH), "target": nested(MAX_DEPTH, 0.5)}
    answer = post(limited, "/v1/losses/l1_loss", body)
    assert answer.status_code == 200, answer.text
    assert answer.json()["loss"] == 0.5


@pytest.mark.parametrize(
    "value",
    [
        nested(MAX_DEPTH + 1),
        nested(MAX_DEPTH + 1, "NaN"),
        [nested(MAX_DEPTH), nested(MAX_DEPTH - 1)],
        {"shape": [1] * (MAX_DEPTH + 1), "data": [1.0]},
    ],
)
def test_nesting_too_deep_is_a_422(limited: TestClient, value: Any) -> None:
    body = {"input": value, "target": 0.5}
    problem = assert_problem(post(limited, "/v1/losses/l1_loss", body), 422)
    assert problem["errors"][0]["loc"][:2] == ["body", "input"]
    assert "deeper" in problem["detail"] or "ragged" in problem["detail"]


@pytest.mark.parametrize("depth", [33, 2000, 100_000])
def test_default_nesting_limit_and_pathological_depth(client: TestClient, depth: int) -> None:
    content = b'{"input": ' + b"[" * depth + b"1.0" + b"]" * depth + b', "target": 1.0}'
    response = post_raw(client, "/v1/losses/l1_loss", content)
    assert_problem(response, 422)
