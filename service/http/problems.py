"""Every error as application/problem+json (RFC 9457); never a stack trace."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from service.errors import PROBLEM_TYPE_BASE, FieldError, InvalidInput, ServiceError
from service.tensors.wirejson import dumps

PROBLEM_MEDIA_TYPE = "application/problem+json"
log = logging.getLogger("service.errors")


def problem_response(
    status: int,
    title: str,
    detail: str,
    slug: str,
    errors: Iterable[FieldError] = (),
    instance: str | None = None,
    headers: dict[str, str] | None = None,
    extra: dict[str, object] | None = None,
) -> Response:
    if instance is not None and (instance == "/v2" or instance.startswith("/v2/")):
        # The Open Inference Protocol's error form, which its clients read.
        return Response(
            dumps({"error": detail}),
            status_code=400 if status == 422 else status,
            media_type="application/json",
            headers=headers,
        )
    body: dict[str, Any] = {
        "type": PROBLEM_TYPE_BASE + slug,
        "title": title,
        "status": status,
        "detail": detail,
    }
    if instance:
        body["instance"] = instance
    error_list = [e.as_dict() for e in errors]
    if error_list:
        body["errors"] = error_list
    if extra:
        body.update({k: v for k, v in extra.items() if k not in body})
    return Response(dumps(body), status_code=status, media_type=PROBLEM_MEDIA_TYPE, headers=headers)


def render(error: ServiceError, instance: str | None = None) -> Response:
    return problem_response(
        error.status,
        error.title,
        error.detail,
        error.slug,
        error.errors,
        instance,
        error.headers,
        error.extra,
    )


def from_pydantic(exc: ValidationError, prefix: Sequence[str | int] = ("body",)) -> InvalidInput:
    """A pydantic validation error as a 422 that names every field."""
    return invalid_from_errors(exc.errors(include_url=False), prefix)


def invalid_from_errors(raw: Iterable[Any], prefix: Sequence[str | int] = ()) -> InvalidInput:
    errors = [
        FieldError((*prefix, *item["loc"]), _message(item), str(item.get("type", "value_error")))
        for item in raw
    ]
    if not errors:
        return InvalidInput("the request is invalid")
    first = errors[0]
    where = ".".join(str(p) for p in first.loc)
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return InvalidInput(f"{where}: {first.msg}{more}", errors)


def _message(item: Any) -> str:
    msg = str(item.get("msg", "invalid"))
    if item.get("type") == "extra_forbidden":
        return "unknown field (not one of this endpoint's fields or params)"
    return msg


def install_problem_handlers(app: FastAPI) -> None:
    @app.exception_handler(ServiceError)
    async def _service_error(request: Request, exc: ServiceError) -> Response:
        return render(exc, request.url.path)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> Response:
        return render(invalid_from_errors(exc.errors()), request.url.path)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
        titles = {404: "Not found", 405: "Method not allowed", 413: "Payload too large"}
        title = titles.get(exc.status_code, "HTTP error")
        detail = str(exc.detail)
        if exc.status_code == 404 and detail == "Not Found":
            detail = f"no route {request.method} {request.url.path}; see /docs"
        slug = title.lower().replace(" ", "-")
        return problem_response(
            exc.status_code, title, detail, slug, instance=request.url.path,
            headers=dict(exc.headers or {}),
        )  # fmt: skip

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return problem_response(
            500,
            "Internal error",
            "the service failed to handle this request; it has been logged",
            "internal",
            instance=request.url.path,
        )
