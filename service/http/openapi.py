"""The OpenAPI document: FastAPI's, plus the request schemas of routes that parse their own
bodies (the loss routes read JSON with orjson, so FastAPI never sees their models)."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from service.http.loss_models import all_request_models

REF_TEMPLATE = "#/components/schemas/{model}"


def extra_models() -> list[type[BaseModel]]:
    from service.http.grading_models import request_models
    from service.http.routes.information import InformationRequest

    return [*all_request_models(), InformationRequest, *request_models()]


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
