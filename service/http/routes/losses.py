"""``/v1/losses``: the catalogue, and computing a loss with its gradients."""

from __future__ import annotations

from functools import partial
from typing import Any

from fastapi import APIRouter, Request
from fastapi.routing import APIRoute
from starlette.responses import Response

from service.http.json_answer import answer_json
from service.http.loss_models import request_model
from service.http.loss_requests import compute
from service.http.schemas import (
    InputDescription,
    LossDescription,
    LossList,
    LossResponse,
    ParamDescription,
    Problem,
    request_body,
    schema_ref,
)
from service.losses.catalogue import ROLE_TEXT, LossSpec
from service.losses.registry import catalogue, resolve
from service.observability.metrics import record_loss_evaluation

router = APIRouter(prefix="/v1/losses", tags=["losses"])

ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": Problem, "description": text}
    for status, text in (
        (401, "A valid API key is required."),
        (413, "The body, its tensors or the work they ask for exceed a limit."),
        (422, "The request cannot be computed with; `errors` names each field."),
        (
            503,
            "The computation exceeded the time limit, or every compute worker is busy "
            "(`Retry-After`).",
        ),
    )
}


def describe(spec: LossSpec) -> LossDescription:
    return LossDescription(
        name=spec.name,
        summary=spec.summary,
        formula=spec.formula,
        source=spec.source,
        aliases=list(spec.aliases),
        inputs=[
            InputDescription(
                name=i.name,
                role=i.role,
                role_description=ROLE_TEXT[i.role],
                required=i.required,
                differentiable=i.differentiable,
                description=i.description,
            )
            for i in spec.inputs
        ],
        params=[
            ParamDescription(
                name=p.name,
                type=p.kind,
                default=p.default,
                description=p.description,
                choices=list(p.choices) if p.choices is not None else None,
                minimum=p.minimum,
                maximum=p.maximum,
            )
            for p in spec.params
        ],
        differentiable=list(spec.differentiable),
        broadcast=list(spec.broadcast),
        endpoint=f"/v1/losses/{spec.name}",
        notes=spec.notes,
    )


@router.get("", operation_id="list_losses", summary="List every supported loss")
def list_losses() -> LossList:
    specs = catalogue().values()
    return LossList(
        losses=[describe(spec) for spec in specs],
        aliases={alias: spec.name for spec in specs for alias in spec.aliases},
    )


@router.get(
    "/{name}",
    operation_id="describe_loss",
    summary="Describe one loss: inputs, params, differentiable inputs, formula",
    responses={404: ERROR_RESPONSES[422] | {"description": "Unknown loss; lists the known."}},
)
def describe_loss(name: str) -> LossDescription:
    return describe(resolve(name))


async def compute_loss(request: Request, spec: LossSpec) -> Response:
    response = await answer_json(request, partial(compute, spec))
    record_loss_evaluation(spec.name)
    return response


def _add_loss_route(spec: LossSpec, example: dict[str, Any] | None) -> None:
    async def endpoint(request: Request) -> Response:
        return await compute_loss(request, spec)

    endpoint.__name__ = f"compute_{spec.name}"
    router.add_api_route(
        f"/{spec.name}",
        endpoint,
        methods=["POST"],
        operation_id=f"compute_{spec.name}",
        summary=spec.summary,
        description=f"Formula: {spec.formula}\n\nComputed by `{spec.source}`."
        + (f"\n\n{spec.notes}" if spec.notes else ""),
        response_model=LossResponse,
        responses=ERROR_RESPONSES,
        openapi_extra=request_body(schema_ref(request_model(spec)), example),
    )


def _add_routes() -> None:
    from service.http.examples import LOSS_EXAMPLES

    for spec in catalogue().values():
        _add_loss_route(spec, LOSS_EXAMPLES.get(spec.name))

    async def compute_by_name(request: Request, name: str) -> Response:
        return await compute_loss(request, resolve(name))

    router.add_api_route(
        "/{name}",
        compute_by_name,
        methods=["POST"],
        operation_id="compute_loss_by_name",
        summary="Compute any loss by name or alias (e.g. MSELoss, mae)",
        description="The same as the loss's own endpoint; the body is that loss's request.",
        response_model=LossResponse,
        responses={
            **ERROR_RESPONSES,
            404: {"model": Problem, "description": "Unknown loss; lists the known."},
        },
        openapi_extra=request_body(
            {"oneOf": [schema_ref(request_model(s)) for s in catalogue().values()]}
        ),
    )


_add_routes()


def loss_routes() -> list[APIRoute]:
    return [r for r in router.routes if isinstance(r, APIRoute)]
