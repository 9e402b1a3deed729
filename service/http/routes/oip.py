"""``/v2``: the Open Inference Protocol (KServe v2, Triton) over HTTP, one model per loss.

Errors here are the protocol's ``{"error": "..."}`` with a 4xx status (``problems.py`` renders
the ones raised outside these routes the same way for every ``/v2`` path).
"""

from __future__ import annotations

from contextlib import nullcontext
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from service import __version__
from service.errors import InvalidInput, NotFound, ServiceError
from service.http.context import LARGE_BODY_BYTES, context
from service.http.oip_models import (
    InferRequest,
    InferResponse,
    Liveness,
    ModelMetadata,
    OipError,
    Readiness,
    RepositoryIndex,
    RepositoryModel,
    ServerMetadata,
)
from service.http.oip_requests import (
    VERSION,
    error_message,
    error_status,
    infer,
    metadata,
)
from service.http.schemas import request_body, schema_ref
from service.losses.catalogue import LossSpec
from service.losses.registry import catalogue, resolve
from service.observability.metrics import record_loss_evaluation
from service.oip.codec import HEADER_LENGTH
from service.tensors.wirejson import dumps, gc_paused

router = APIRouter(prefix="/v2", tags=["inference protocol"])
SERVER_NAME = "loss-service"
EXTENSIONS = ["binary_tensor_data", "model_repository"]


def _errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    text = {
        400: "The request cannot be computed with; `error` says why.",
        401: "A valid API key is required.",
        404: "Unknown model (loss) or version.",
        413: "The body or its tensors exceed a limit.",
        503: "Not ready, or the computation exceeded the time limit.",
    }
    return {s: {"model": OipError, "description": text[s]} for s in statuses}


def oip_error(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    return Response(
        dumps({"error": message}), status_code=status, media_type="application/json",
        headers=headers,
    )  # fmt: skip


@router.get("", operation_id="oip_server_metadata", summary="Server metadata")
def server_metadata() -> ServerMetadata:
    return ServerMetadata(name=SERVER_NAME, version=__version__, extensions=EXTENSIONS)


@router.get("/health/live", operation_id="oip_server_live", summary="Server liveness")
def server_live() -> Liveness:
    return Liveness(live=True)


@router.get(
    "/health/ready",
    operation_id="oip_server_ready",
    summary="Server readiness",
    response_model=Readiness,
    responses={503: {"model": Readiness, "description": "Starting or shutting down."}},
)
def server_ready(request: Request) -> Response:
    ready = bool(request.app.state.ready)
    return Response(
        Readiness(ready=ready).model_dump_json(),
        status_code=200 if ready else 503,
        media_type="application/json",
    )


def _index() -> list[RepositoryModel]:
    return [RepositoryModel(name=n, version=VERSION, state="READY") for n in catalogue()]


@router.get(
    "/models",
    operation_id="oip_models",
    summary="Every model (loss), all ready",
    responses=_errors(401),
)
def list_models() -> RepositoryIndex:
    return RepositoryIndex(models=_index())


@router.post(
    "/repository/index",
    operation_id="oip_repository_index",
    summary="Repository index (the model repository extension's; the body is ignored)",
    responses=_errors(401),
)
def repository_index() -> list[RepositoryModel]:
    return _index()


def _model(name: str, version: str | None) -> LossSpec:
    if version is not None and version != VERSION:
        raise NotFound(f"model {name!r} has only version {VERSION}, not {version[:40]!r}")
    return resolve(name)


def _guarded(name: str, version: str | None, answer: Any) -> Any:
    try:
        return answer(_model(name, version))
    except ServiceError as error:
        return oip_error(error.status, error.detail, error.headers)


async def _infer(request: Request, name: str, version: str | None) -> Response:
    try:
        spec = _model(name, version)
    except ServiceError as error:
        return oip_error(error.status, error.detail)
    ctx = context(request)
    body = await request.body()
    header_length = request.headers.get(HEADER_LENGTH)
    encoding = request.headers.get("content-encoding", "identity").lower()

    def work() -> tuple[bytes, int | None]:
        if encoding != "identity":
            raise InvalidInput(
                f"Content-Encoding {encoding[:40]!r} is not supported; send the body uncompressed"
            )
        with gc_paused() if len(body) > LARGE_BODY_BYTES else nullcontext():
            return infer(spec, body, header_length, ctx.settings)

    try:
        answer, json_length = await ctx.offloader.run(work, len(body))
    except ServiceError as error:
        return oip_error(error_status(error), error_message(spec, error), error.headers)
    record_loss_evaluation(spec.name)
    if json_length is None:
        return Response(answer, media_type="application/json")
    return Response(
        answer,
        media_type="application/octet-stream",
        headers={HEADER_LENGTH: str(json_length)},
    )


_INFER_BODY = request_body(schema_ref(InferRequest))
_INFER_BODY["requestBody"]["content"]["application/octet-stream"] = {
    "schema": {
        "type": "string",
        "format": "binary",
        "description": "The JSON request followed by the inputs' bytes (binary tensor data "
        f"extension); the {HEADER_LENGTH} header gives the JSON's length.",
    },
}
_INFER_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The outputs; with binary outputs, the JSON is followed by their bytes "
        f"and the {HEADER_LENGTH} header gives its length.",
        "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
    },
    **_errors(400, 401, 404, 413, 503),
}


_MODEL = "/models/{name}"
_VERSION = "/models/{name}/versions/{version}"


@router.get(
    _MODEL, operation_id="oip_model_metadata", summary="Model (loss) metadata",
    responses=_errors(401, 404), response_model=ModelMetadata,
)  # fmt: skip
def model_metadata(name: str) -> Any:
    return _guarded(name, None, metadata)


@router.get(
    _VERSION, operation_id="oip_model_version_metadata", summary="Model (loss) metadata",
    responses=_errors(401, 404), response_model=ModelMetadata,
)  # fmt: skip
def model_version_metadata(name: str, version: str) -> Any:
    return _guarded(name, version, metadata)


@router.get(
    f"{_MODEL}/ready", operation_id="oip_model_ready", summary="Model (loss) readiness",
    responses=_errors(401, 404), response_model=Readiness,
)  # fmt: skip
def model_ready(name: str) -> Any:
    return _guarded(name, None, lambda _spec: Readiness(ready=True))


@router.get(
    f"{_VERSION}/ready", operation_id="oip_model_version_ready",
    summary="Model (loss) readiness", responses=_errors(401, 404), response_model=Readiness,
)  # fmt: skip
def model_version_ready(name: str, version: str) -> Any:
    return _guarded(name, version, lambda _spec: Readiness(ready=True))


_INFER_SUMMARY = "Compute the loss and its gradients (an inference request)"


@router.post(
    f"{_MODEL}/infer", operation_id="oip_model_infer", summary=_INFER_SUMMARY,
    response_model=InferResponse, responses=_INFER_RESPONSES, openapi_extra=_INFER_BODY,
)  # fmt: skip
async def model_infer(request: Request, name: str) -> Response:
    return await _infer(request, name, None)


@router.post(
    f"{_VERSION}/infer", operation_id="oip_model_version_infer", summary=_INFER_SUMMARY,
    response_model=InferResponse, responses=_INFER_RESPONSES, openapi_extra=_INFER_BODY,
)  # fmt: skip
async def model_version_infer(request: Request, name: str, version: str) -> Response:
    return await _infer(request, name, version)
