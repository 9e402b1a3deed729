"""The OpenAPI document: FastAPI's, plus the request schemas of routes that parse their own
bodies (the loss routes read JSON with orjson, so FastAPI never sees their models)."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from service.http.auth import declare_security
from service.http.loss_models import all_request_models
from service.http.problems import PROBLEM_MEDIA_TYPE
from service.http.schemas import TENSOR_SCHEMAS, Problem
from service.tensors.wirejson import dumps, loads

REF_TEMPLATE = "#/components/schemas/{model}"


def extra_models() -> list[type[BaseModel]]:
    from service.http.grading_models import request_models
    from service.http.job_models import PredictRequest
    from service.http.oip_models import InferRequest, OipError
    from service.http.routes.information import InformationRequest
    from service.jobs.config import JobConfig

    return [
        *all_request_models(), InformationRequest, *request_models(), JobConfig, PredictRequest,
        Problem, InferRequest, OipError,
    ]  # fmt: skip


def _declare_problem_bodies(document: dict[str, Any]) -> None:
    """Every error response is a problem+json body with the Problem schema, but under /v2,
    where the Open Inference Protocol's routes declare their own (and never answer 422)."""
    content = {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": REF_TEMPLATE.format(model="Problem")}}}
    for path, operations in document.get("paths", {}).items():
        if path == "/v2" or path.startswith("/v2/"):
            for operation in operations.values():
                operation.get("responses", {}).pop("422", None)
            continue
        for operation in operations.values():
            for status, response in operation.get("responses", {}).items():
                if status[:1] in ("4", "5"):
                    response["content"] = content


_TENSOR_REF = {"$ref": REF_TEMPLATE.format(model="Tensor")}


# Optional tensors: pydantic writes the strict params models' ``WireTensor | None`` as
# ``[{}, null]`` and the others' as ``[Tensor, null]``.
_OPTIONAL_TENSORS = ([_TENSOR_REF, {"type": "null"}], [{}, {"type": "null"}])


def _collapse_optional_tensors(node: Any) -> None:
    """``anyOf: [Tensor, null]`` -> ``Tensor``: the Tensor schema takes any JSON value (null
    too), and generators make a class of an anyOf that they cannot compile."""
    if isinstance(node, dict):
        if node.get("anyOf") in _OPTIONAL_TENSORS:
            del node["anyOf"]
            node.update(_TENSOR_REF)
        for value in node.values():
            _collapse_optional_tensors(value)
    elif isinstance(node, list):
        for value in node:
            _collapse_optional_tensors(value)


def _models_as_one_of(node: Any, schemas: dict[str, Any]) -> None:
    """An ``anyOf`` of models told apart by their required fields (GradeResponse or
    GradeManyResponse, LossResponse or EvaluateError) -> ``oneOf``: typescript-fetch merges an
    anyOf into one interface that requires every member's fields, and fails on each answer."""
    if isinstance(node, dict):
        members = node.get("anyOf")
        if members and all(set(m) == {"$ref"} for m in members):
            required = [
                frozenset(schemas[m["$ref"].rsplit("/", 1)[1]].get("required", ())) for m in members
            ]
            if all(not a <= b for a in required for b in required if a is not b):
                node["oneOf"] = node.pop("anyOf")
        for value in node.values():
            _models_as_one_of(value, schemas)
    elif isinstance(node, list):
        for value in node:
            _models_as_one_of(value, schemas)


def _real_examples() -> dict[str, tuple[dict[str, Any], dict[str, Any]]]:
    """Operation id -> (request example, the response the service gives to it)."""
    from service.http.examples import LOSS_EXAMPLES
    from service.http.loss_requests import compute
    from service.http.routes.information import EXAMPLE, information_answer
    from service.losses.registry import resolve
    from service.settings import Settings

    settings = Settings()
    examples: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {}
    for name, example in LOSS_EXAMPLES.items():
        # On the CPU, so that the document is the same on hosts with and without a GPU.
        request = {**example, "device": "cpu"}
        examples[f"compute_{name}"] = (
            example,
            loads(dumps(compute(resolve(name), request, settings))),
        )
    alias_example = {**LOSS_EXAMPLES["mse_loss"], "device": "cpu"}
    examples["compute_loss_by_name"] = (
        alias_example,
        loads(dumps(compute(resolve("MSELoss"), alias_example, settings))),
    )
    from service.http.routes.losses import describe

    mse = describe(resolve("mse_loss")).model_dump(mode="json")
    examples["describe_loss"] = ({}, mse)
    examples["list_losses"] = ({}, {"losses": [mse], "aliases": {"MSELoss": "mse_loss"}})
    from service.grading.hint_docs import hint_listing

    examples["list_hints"] = ({}, {"hints": list(hint_listing()[:1])})
    examples["healthz"] = ({}, {"status": "ok"})
    examples["readyz"] = ({}, {"status": "ready"})
    info_request = {**EXAMPLE, "device": "cpu"}
    examples["information_measures"] = (
        EXAMPLE,
        loads(dumps(information_answer(info_request, settings))),
    )
    return examples


def _add_examples(document: dict[str, Any]) -> None:
    examples = _real_examples()
    for operations in document.get("paths", {}).values():
        for operation in operations.values():
            pair = examples.get(operation.get("operationId", ""))
            if pair is None:
                continue
            request, response = pair
            body = operation.get("requestBody", {}).get("content", {}).get("application/json")
            if body is not None:
                body.setdefault("example", request)
            ok = operation.get("responses", {}).get("200", {}).get("content", {})
            if "application/json" in ok:
                ok["application/json"]["example"] = response


def build_openapi(app: FastAPI) -> dict[str, Any]:
    document = get_openapi(
        title=app.title,
        version=app.version,
        summary=app.summary,
        description=app.description,
        routes=app.routes,
        tags=app.openapi_tags,
    )
    _, extra = models_json_schema(
        [(model, "validation") for model in extra_models()], ref_template=REF_TEMPLATE
    )
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    for name, schema in extra.get("$defs", {}).items():
        schemas.setdefault(name, schema)
    schemas.update(TENSOR_SCHEMAS)
    _collapse_optional_tensors(document)
    _models_as_one_of(document, schemas)
    _declare_problem_bodies(document)
    declare_security(document, keys_configured=bool(app.state.context.settings.api_keys))
    _add_examples(document)
    return document


def install_openapi(app: FastAPI) -> None:
    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = build_openapi(app)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


COMMITTED_PATH = "openapi/openapi.json"


def render_document() -> str:
    import json

    from service.app import create_app

    return json.dumps(create_app().openapi(), indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    """``python -m service.http.openapi``: write the committed OpenAPI document afresh;
    with ``--check``, fail when it differs from what the app serves."""
    import sys
    from pathlib import Path

    args = sys.argv[1:] if argv is None else argv
    path = Path(COMMITTED_PATH)
    document = render_document()
    if "--check" in args:
        current = path.read_text(encoding="utf-8") if path.exists() else ""
        if current != document:
            print(f"{path} is stale: run `python -m service.http.openapi`", file=sys.stderr)
            return 1
        print(f"{path} is current")
        return 0
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(document, encoding="utf-8")
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
