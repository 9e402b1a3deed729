"""Answers that every route gives alike: a 405 names every method the path takes in
``Allow``; a body that is not UTF-8 is a 422 malformed-body problem on every JSON route."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("PUT", "/v1/jobs/0123456789abcdef", "GET, DELETE"),
        ("POST", "/v1/jobs/0123456789abcdef", "GET, DELETE"),
        ("DELETE", "/v1/jobs", "GET"),
        ("GET", "/v1/jobs/0123456789abcdef/predict", "POST"),
        ("GET", "/v1/evaluate", "POST"),
        ("POST", "/healthz", "GET"),
        ("DELETE", "/openapi.json", "GET, HEAD"),
    ],
)
def test_405_allow_names_every_method_of_the_path(
    client: TestClient, method: str, path: str, allowed: str
) -> None:
    response = client.request(method, path)
    assert response.status_code == 405
    assert response.headers["allow"] == allowed
    assert allowed in response.json()["detail"]
    for other in allowed.split(", "):  # each method named is taken
        assert client.request(other, path).status_code != 405, other


@pytest.mark.parametrize(
    "path",
    ["/v1/losses/mse_loss", "/v1/evaluate", "/v1/grade", "/v1/information", "/v1/jobs/mnist"],
)
def test_a_body_that_is_not_utf8_is_a_422_malformed_body(client: TestClient, path: str) -> None:
    response = client.post(
        path, content=b'{"input": "\xff\xfe"}', headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = response.json()
    assert problem["type"].endswith("/malformed-body")
    assert problem["detail"].startswith("body: not valid JSON")
