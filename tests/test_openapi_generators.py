"""The OpenAPI document is one that client generators can use: no case-duplicate enum values,
no self-referencing schema, no oneOf/anyOf with an array member, tensors as one named schema;
and the spellings it leaves out of its enums are still accepted by the service."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from service.http.openapi import COMMITTED_PATH
from service.tensors.dtypes import WIRE_DTYPES

ROOT = Path(__file__).resolve().parents[1]
DOCUMENT: dict[str, Any] = json.loads((ROOT / COMMITTED_PATH).read_text(encoding="utf-8"))
SCHEMAS: dict[str, Any] = DOCUMENT["components"]["schemas"]
TENSOR_REF = {"$ref": "#/components/schemas/Tensor"}


def nodes(node: Any, path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    if isinstance(node, dict):
        yield path, node
        for key, value in node.items():
            yield from nodes(value, f"{path}/{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from nodes(value, f"{path}/{index}")


def test_enum_values_are_unique_ignoring_case() -> None:
    for path, node in nodes(DOCUMENT):
        if "enum" in node and isinstance(node["enum"], list):
            folded = [str(value).lower() for value in node["enum"]]
            assert len(folded) == len(set(folded)), (path, node["enum"])


def test_no_schema_refers_to_itself() -> None:
    for name, schema in SCHEMAS.items():
        refs = {node["$ref"] for _, node in nodes(schema) if "$ref" in node}
        assert f"#/components/schemas/{name}" not in refs, name


def test_no_union_has_an_array_member_or_an_untyped_optional() -> None:
    # openapi-generator's java template writes List<X>.class for an array member (a compile
    # error) and typescript-fetch turns arrays into {}; [{}, null] becomes a class AnyOf.
    for path, node in nodes(DOCUMENT):
        for key in ("anyOf", "oneOf"):
            members = [m for m in node.get(key, []) if m != {"type": "null"}]
            for member in members:
                assert member != {}, (path, key)
                if len(members) > 1:  # [X, null] is a nullable X, which generators handle
                    assert member.get("type") != "array", (path, key)


def test_every_tensor_field_refers_to_the_tensor_schema(client: TestClient) -> None:
    tensor = SCHEMAS["Tensor"]
    assert "oneOf" not in tensor and "anyOf" not in tensor and "type" not in tensor
    assert "TensorObject" in tensor["description"]
    assert set(SCHEMAS["TensorObject"]["properties"]) == {"shape", "dtype", "data", "base64"}
    request = SCHEMAS["CrossEntropyRequest"]
    assert request["properties"]["input"]["$ref"] == TENSOR_REF["$ref"]
    params = SCHEMAS["CrossEntropyParams"]["properties"]
    assert params["weight"]["$ref"] == TENSOR_REF["$ref"]
    assert SCHEMAS["LossResponse"]["properties"]["grad"]["additionalProperties"] == TENSOR_REF


def test_dtype_enums_list_canonical_names_and_describe_the_oip_spellings() -> None:
    assert SCHEMAS["DType"]["enum"] == [d.name for d in WIRE_DTYPES]
    for d in WIRE_DTYPES:
        assert f"{d.oip} ({d.name})" in SCHEMAS["DType"]["description"]
    compute = SCHEMAS["MseLossRequest"]["properties"]["dtype"]
    assert compute["enum"] == ["float16", "bfloat16", "float32", "float64"]
    assert "FP32 (float32)" in compute["description"]
    assert "INT8" not in compute["description"]


@pytest.mark.parametrize("dtype", ["FP32", "FP64", "float32"])
def test_oip_spellings_left_out_of_the_enums_are_still_accepted(
    client: TestClient, dtype: str
) -> None:
    body = {
        "input": {"shape": [2], "dtype": "FP32", "data": [1.0, 2.0]},
        "target": {"shape": [2], "dtype": "INT64", "data": [1, 3]},
        "dtype": dtype,
        "grad": ["input"],
    }
    answer = client.post("/v1/losses/mse_loss", json=body)
    assert answer.status_code == 200, answer.text
    assert answer.json()["loss"] == 0.5
    information = client.post("/v1/information", json={"p": [0.5, 0.5], "dtype": dtype})
    assert information.status_code == 200, information.text


def test_grad_is_described_with_its_input_names() -> None:
    grad = SCHEMAS["CrossEntropyRequest"]["properties"]["grad"]
    assert "anyOf" not in grad and grad["default"] is False
    assert "(input, target)" in grad["description"]


def test_answers_that_are_one_of_several_models_are_a_one_of() -> None:
    # typescript-fetch merges an anyOf into one interface that requires every member's fields.
    grade = DOCUMENT["paths"]["/v1/grade"]["post"]["responses"]["200"]["content"]
    assert [m["$ref"].rsplit("/", 1)[1] for m in grade["application/json"]["schema"]["oneOf"]] == [
        "GradeResponse",
        "GradeManyResponse",
    ]
    results = SCHEMAS["EvaluateResponse"]["properties"]["results"]["items"]
    assert "oneOf" in results and "anyOf" not in results
