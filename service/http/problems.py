"""Every error as application/problem+json (RFC 9457); never a stack trace."""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterable, Mapping, Sequence
from itertools import islice
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from service.errors import (
    PROBLEM_TYPE_BASE,
    FieldError,
    InvalidInput,
    MalformedBody,
    ServiceError,
)
from service.http.methods import allowed_methods
from service.tensors.wirejson import dumps

PROBLEM_MEDIA_TYPE = "application/problem+json"
log = logging.getLogger("service.errors")


class ErrorCap:
    """How many field errors one problem document lists (``max_problem_errors``); the rest
    are counted in ``errors_omitted``. Set from the settings by ``install_problem_handlers``."""

    limit = 20


def capped(errors: Iterable[FieldError], total: int | None = None) -> tuple[list[FieldError], int]:
    """The first ``ErrorCap.limit`` errors, and how many more there are (``total`` when the
    caller knows it without walking them)."""
    if isinstance(errors, Sequence) and total is None:
        total = len(errors)
    first = list(islice(errors, ErrorCap.limit))
    if total is None:  # an iterator: count the rest without keeping it
        total = len(first) + sum(1 for _ in errors)
    return first, max(0, total - len(first))


def reject_unknown_keys(
    document: Mapping[str, Any], known: Collection[str], prefix: Sequence[str | int]
) -> None:
    """A 422 naming the first unknown keys of ``document`` (at most ``ErrorCap.limit``) and
    counting the rest, found without walking every key of a body that holds millions."""
    if len(document) <= len(known) and all(key in known for key in document):
        return  # the usual case, in as many steps as the document has keys
    unknown = len(document) - sum(1 for key in known if key in document)
    if unknown <= 0:
        return
    names = islice((key for key in document if key not in known), ErrorCap.limit)
    errors = [
        FieldError(
            (*prefix, key),
            "unknown field (not one of this endpoint's fields or params)",
            "extra_forbidden",
        )
        for key in names
    ]
    raise invalid(errors, unknown)


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
    listed, omitted = capped(errors)
    if listed:
        body["errors"] = [e.as_dict() for e in listed]
    if omitted:
        body["errors_omitted"] = omitted
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
    items = list(raw) if not isinstance(raw, Sequence) else raw
    errors = [
        FieldError((*prefix, *item["loc"]), _message(item), str(item.get("type", "value_error")))
        for item in islice(items, ErrorCap.limit)
    ]
    return invalid(errors, len(items))


def invalid(errors: Sequence[FieldError], total: int) -> InvalidInput:
    """A 422 for ``errors``, the first of ``total``; the detail names the first."""
    if not errors:
        return InvalidInput("the request is invalid")
    first = errors[0]
    where = ".".join(str(p) for p in first.loc)
    more = f" (and {total - 1} more)" if total > 1 else ""
    extra: dict[str, object] = {}
    if total > len(errors):
        extra["errors_omitted"] = total - len(errors)
    return InvalidInput(f"{where}: {first.msg}{more}", errors, extra=extra)


def _message(item: Any) -> str:
    msg = str(item.get("msg", "invalid"))
    if item.get("type") == "extra_forbidden":
        return "unknown field (not one of this endpoint's fields or params)"
    return msg


UNPARSEABLE_BODY = "There was an error parsing the body"
NOT_JSON_DETAIL = "body: not valid JSON (a JSON body is UTF-8 text)"


def install_problem_handlers(app: FastAPI, max_errors: int | None = None) -> None:
    if max_errors is not None:
        ErrorCap.limit = max_errors

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
        headers = dict(exc.headers or {})
        if exc.status_code == 400 and detail == UNPARSEABLE_BODY:
            # FastAPI's answer to a body it cannot decode (not UTF-8): the loss routes' 422.
            return render(MalformedBody(NOT_JSON_DETAIL), request.url.path)
        if exc.status_code == 404 and detail == "Not Found":
            detail = f"no route {request.method} {request.url.path}; see /docs"
        if exc.status_code == 405:
            allowed = allowed_methods(request.app.router.routes, request.scope)
            headers["Allow"] = ", ".join(allowed)
            detail = (
                f"{request.method} is not allowed on {request.url.path}; use {headers['Allow']}"
            )
        slug = title.lower().replace(" ", "-")
        return problem_response(
            exc.status_code, title, detail, slug, instance=request.url.path, headers=headers
        )

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
