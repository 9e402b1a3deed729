"""Optional API keys: with keys configured every /v1 endpoint needs a valid Bearer key;
operations endpoints and the docs stay open."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from service.http.auth import OPEN_PATHS

MSE = {"input": [1.5, 2.0], "target": [1.0, 2.5]}
PROTECTED = [
    ("GET", "/v1/losses", None),
    ("GET", "/v1/losses/mse_loss", None),
    ("POST", "/v1/losses/mse_loss", MSE),
    ("POST", "/v1/losses/MSELoss", MSE),
    ("POST", "/v1/evaluate", {"requests": [{"loss": "mse_loss", **MSE}]}),
    ("POST", "/v1/grade", {"loss": "mse_loss", **MSE, "submission": {"loss": 0.25}}),
    ("GET", "/v1/jobs", None),
    ("GET", "/v1/jobs/0123456789abcdef", None),
]
OPEN = ["/healthz", "/readyz", "/metrics", "/docs", "/openapi.json", "/v1/info"]
OPEN += ["/v2", "/v2/health/live", "/v2/health/ready"]


@pytest.fixture
def keyed(make_client: Any) -> TestClient:
    client: TestClient = make_client(api_keys="alpha-key, beta-key")
    return client


def call(client: TestClient, method: str, path: str, body: Any, key: str | None) -> Any:
    headers = {"Authorization": key} if key is not None else {}
    return client.request(method, path, json=body, headers=headers)


@pytest.mark.parametrize(("method", "path", "body"), PROTECTED)
def test_v1_endpoints_need_a_valid_key(
    keyed: TestClient, method: str, path: str, body: Any
) -> None:
    for header in (None, "Bearer wrong", "Bearer alpha-key2", "Basic alpha-key", "alpha-key"):
        response = call(keyed, method, path, body, header)
        assert response.status_code == 401, (header, response.text)
        assert response.headers["content-type"] == "application/problem+json"
        assert response.headers["www-authenticate"] == "Bearer"
        assert response.json()["title"] == "Unauthorized"
    for key in ("Bearer alpha-key", "Bearer beta-key", "bearer beta-key"):
        assert call(keyed, method, path, body, key).status_code != 401


@pytest.mark.parametrize("path", OPEN)
def test_operations_and_docs_stay_open(keyed: TestClient, path: str) -> None:
    assert keyed.get(path).status_code == 200


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/v2/models"), ("GET", "/v2/models/mse_loss"), ("POST", "/v2/models/mse_loss/infer")],
)
def test_inference_protocol_models_need_a_key_and_say_so_as_the_protocol_does(
    keyed: TestClient, method: str, path: str
) -> None:
    response = call(keyed, method, path, None, None)
    assert response.status_code == 401
    assert response.json() == {"error": "send the API key as 'Authorization: Bearer <key>'"}
    assert call(keyed, method, path, None, "Bearer alpha-key").status_code != 401


def test_without_keys_nothing_needs_one(client: TestClient) -> None:
    for method, path, body in PROTECTED:
        assert call(client, method, path, body, None).status_code != 401


def test_keys_come_from_the_environment(monkeypatch: pytest.MonkeyPatch, make_client: Any) -> None:
    monkeypatch.setenv("LOSS_SERVICE_API_KEYS", '["from-env"]')
    client: TestClient = make_client()
    assert client.get("/v1/losses").status_code == 401
    assert client.get("/v1/losses", headers={"Authorization": "Bearer from-env"}).status_code == 200


def test_protected_operations_document_401_only_with_keys(keyed: TestClient) -> None:
    document = keyed.get("/openapi.json").json()
    assert "HTTPBearer" in document["components"]["securitySchemes"]
    for path, operations in document["paths"].items():
        for operation in operations.values():
            if path.startswith(("/v1/", "/v2")) and path not in OPEN_PATHS:
                assert "401" in operation["responses"], path
                assert operation.get("security") == [{"HTTPBearer": []}], path
            else:
                assert "401" not in operation["responses"], path


def test_without_keys_no_operation_requires_a_bearer_scheme(client: TestClient) -> None:
    """The scheme stays optional (so generated clients can send a key), never required."""
    document = client.get("/openapi.json").json()
    assert "HTTPBearer" in document["components"]["securitySchemes"]
    for path, operations in document["paths"].items():
        for operation in operations.values():
            assert "401" not in operation["responses"], path
            assert operation.get("security", [{}])[0] == {}, path
