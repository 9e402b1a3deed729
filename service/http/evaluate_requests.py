"""``POST /v1/evaluate``: many loss requests in one body, each answered or given its problem."""

from __future__ import annotations

from typing import Any

from service.compute.batched import evaluate_all
from service.compute.cost import leave_the_loop_for_items
from service.compute.engine import LossCall
from service.errors import (
    FieldError,
    InvalidInput,
    Loc,
    MalformedBody,
    PayloadTooLarge,
    ServiceError,
)
from service.http.loss_requests import new_budget, parse_loss_call, response_payload
from service.http.problems import render
from service.losses.registry import resolve
from service.settings import Settings
from service.tensors.wirejson import loads


def evaluate_document(document: Any, settings: Settings) -> dict[str, Any]:
    if not isinstance(document, dict) or set(document) != {"requests"}:
        raise MalformedBody.at(
            ("body",), 'must be a JSON object {"requests": [loss requests]}', "dict_type"
        )
    items = document["requests"]
    if not isinstance(items, list):
        raise InvalidInput.at(("body", "requests"), "must be a list of loss requests")
    if len(items) > settings.max_evaluate_items:
        raise PayloadTooLarge.at(
            ("body", "requests"),
            f"{len(items)} requests; at most {settings.max_evaluate_items} per call "
            "(LOSS_SERVICE_MAX_EVALUATE_ITEMS)",
        )
    leave_the_loop_for_items(len(items))
    calls = [_parse(item, ("body", "requests", index)) for index, item in enumerate(items)]
    outcomes = evaluate_all(calls, new_budget(settings))
    results: list[dict[str, Any]] = []
    for index, (item, outcome) in enumerate(zip(items, outcomes, strict=True)):
        if isinstance(outcome, ServiceError):
            results.append(
                {"error": problem_object(relocated(outcome, ("body", "requests", index)))}
            )
        else:
            results.append(response_payload(outcome, item.get("encoding", "json")))
    return {"results": results}


def _parse(item: Any, prefix: Loc) -> LossCall | ServiceError:
    try:
        if not isinstance(item, dict):
            raise InvalidInput.at(
                prefix, "each request must be an object with 'loss' and its fields"
            )
        name = item.get("loss")
        if not isinstance(name, str):
            raise InvalidInput.at((*prefix, "loss"), "required: the name of the loss", "missing")
        fields = item.copy()
        del fields["loss"]
        return parse_loss_call(resolve(name), fields, prefix)
    except ServiceError as exc:
        if isinstance(exc, PayloadTooLarge):
            raise
        return exc


def relocated(error: ServiceError, prefix: Loc) -> ServiceError:
    """The error with field locations that the engine gave as ("body", ...) put under
    ``prefix`` (the item), so that each names its item."""
    if not error.errors or all(e.loc[: len(prefix)] == prefix for e in error.errors):
        return error
    moved = [
        FieldError((*prefix, *e.loc[1:]) if e.loc[:1] == ("body",) else e.loc, e.msg, e.type)
        for e in error.errors
    ]
    first = moved[0]
    where = ".".join(str(part) for part in first.loc)
    more = f" (and {len(moved) - 1} more)" if len(moved) > 1 else ""
    copy = type(error)(
        f"{where}: {first.msg}{more}", moved, headers=error.headers, extra=error.extra
    )
    return copy


def problem_object(error: ServiceError) -> Any:
    """The problem document the error would be answered with on its own."""
    return loads(bytes(render(error).body))
