"""The committed OpenAPI document is exactly what the app serves."""

from __future__ import annotations

import json
from pathlib import Path

from fastapi.testclient import TestClient

from service.http.openapi import COMMITTED_PATH

ROOT = Path(__file__).resolve().parents[1]


def test_committed_openapi_matches_the_app(client: TestClient) -> None:
    committed = json.loads((ROOT / COMMITTED_PATH).read_text(encoding="utf-8"))
    served = client.get("/openapi.json").json()
    assert committed == served, (
        "openapi/openapi.json is stale: regenerate it with `python -m service.http.openapi`"
    )


def test_every_operation_has_an_id_and_a_summary(client: TestClient) -> None:
    document = client.get("/openapi.json").json()
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            assert operation.get("operationId"), f"{method} {path}"
            assert operation.get("summary"), f"{method} {path}"


def test_every_loss_has_its_own_documented_request_schema(client: TestClient) -> None:
    document = client.get("/openapi.json").json()
    losses = client.get("/v1/losses").json()["losses"]
    schemas = document["components"]["schemas"]
    for loss in losses:
        operation = document["paths"][loss["endpoint"]]["post"]
        ref = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"]
        schema = schemas[ref.rsplit("/", 1)[1]]
        for spec_input in loss["inputs"]:
            assert spec_input["name"] in schema["properties"]
        params_ref = schema["properties"]["params"]["$ref"].rsplit("/", 1)[1]
        assert set(schemas[params_ref]["properties"]) == {p["name"] for p in loss["params"]}


def test_every_error_response_is_a_declared_problem(client: TestClient) -> None:
    """... but under /v2, where errors are the Open Inference Protocol's {"error"}."""
    document = client.get("/openapi.json").json()
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            for status, response in operation["responses"].items():
                if path == "/v2" or path.startswith("/v2/"):
                    assert status != "422", (method, path)
                    if status[0] in "45" and path != "/v2/health/ready":
                        schema = response["content"]["application/json"]["schema"]
                        assert schema == {"$ref": "#/components/schemas/OipError"}, path
                elif status[0] in "45":
                    content = response["content"]
                    assert list(content) == ["application/problem+json"], (method, path, status)
                    schema = content["application/problem+json"]["schema"]
                    assert schema == {"$ref": "#/components/schemas/Problem"}


def test_loss_examples_in_the_document_are_what_the_service_answers(client: TestClient) -> None:
    document = client.get("/openapi.json").json()
    checked = 0
    for path, operations in document["paths"].items():
        operation = operations.get("post")
        if operation is None or not path.startswith(("/v1/losses/", "/v1/information")):
            continue
        if "{" in path:
            path = path.replace("{name}", "MSELoss")
        request = operation["requestBody"]["content"]["application/json"]["example"]
        response = operation["responses"]["200"]["content"]["application/json"]["example"]
        answer = client.post(path, json={**request, "device": "cpu"})
        assert answer.status_code == 200, (path, answer.text)
        assert answer.json() == response, path
        checked += 1
    assert checked >= 23
