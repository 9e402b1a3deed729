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
