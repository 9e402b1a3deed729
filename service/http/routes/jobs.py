"""HTTP endpoints of training jobs (docs/contract.md, "MNIST training jobs")."""

from __future__ import annotations

import logging
from functools import partial
from pathlib import Path
from typing import Annotated, Any

import torch
from fastapi import APIRouter, Header, Query, Request, Response
from fastapi.responses import FileResponse, StreamingResponse
from pydantic import ValidationError

from service.datasets.catalog import dataset_spec
from service.errors import MalformedBody, PayloadTooLarge
from service.http.job_models import Job, JobList, JobStatus, PredictRequest, PredictResponse
from service.http.json_answer import answer_json
from service.http.problems import from_pydantic
from service.http.schemas import Problem, request_body, schema_ref
from service.jobs.access import Caller, caller_of
from service.jobs.config import JobConfig
from service.jobs.events import MAX_EVENT_ID, job_events
from service.jobs.inference import ModelCache, images_to_input, predict
from service.jobs.manager import JobManager
from service.settings import Settings
from service.tensors.codec import ElementBudget, decode_tensor, encode_tensor
from service.tensors.wirejson import loads

log = logging.getLogger(__name__)
router = APIRouter(prefix="/v1/jobs", tags=["jobs"])

MAX_CONFIG_BYTES = 64 * 1024  # a job config is a few hundred bytes
MAX_OFFSET = 2**63 - 1  # SQLite's largest integer


def _problems(*items: tuple[int, str]) -> dict[int | str, dict[str, Any]]:
    # Their media type, application/problem+json, is set for every error in service.http.openapi.
    return {status: {"model": Problem, "description": text} for status, text in items}


NOT_FOUND = (404, "No such job (or it belongs to another API key).")
NOT_SUCCEEDED = (409, "The job has not succeeded, so it has no model.")

_models = ModelCache()


def _manager(request: Request) -> JobManager:
    manager: JobManager = request.app.state.job_manager
    return manager


def _caller(request: Request) -> Caller:
    return caller_of(request, _manager(request).settings)


async def _small_body(request: Request, limit: int) -> bytes:
    """The body, refused with 413 as soon as it passes ``limit`` bytes."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"a job config is at most {limit} bytes; this body has {declared}")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"a job config is at most {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def parse_config(body: bytes) -> JobConfig:
    """The job config in a request body (an empty body: every default)."""
    document = loads(body) if body.strip() else {}
    if not isinstance(document, dict):
        raise MalformedBody.at(("body",), "must be a JSON object (the job config)", "model_type")
    try:
        return JobConfig.model_validate(document)
    except ValidationError as exc:
        raise from_pydantic(exc) from None


@router.post(
    "/mnist",
    status_code=202,
    response_model=Job,
    operation_id="create_mnist_job",
    summary="Start an MNIST / Fashion-MNIST training job",
    responses=_problems(
        (413, f"The body is larger than a job config can be ({MAX_CONFIG_BYTES} bytes)."),
        (
            422,
            "The body is not JSON (or not UTF-8), a config field is invalid, or the job is "
            "over a limit (training steps, model size); `errors` names the field.",
        ),
        (429, "The queue of waiting jobs is full, or this API key has its most jobs active."),
    ),
    openapi_extra={
        "requestBody": {
            "required": False,
            "content": {"application/json": {"schema": schema_ref(JobConfig)}},
        }
    },
)
async def create_job(request: Request, response: Response) -> dict[str, Any]:
    config = parse_config(await _small_body(request, MAX_CONFIG_BYTES))
    record = _manager(request).submit(config, _caller(request))
    response.headers["Location"] = f"/v1/jobs/{record['id']}"
    return record


@router.get(
    "",
    response_model=JobList,
    operation_id="list_jobs",
    summary="List jobs, newest first (with API keys: the caller's own)",
)
async def list_jobs(
    request: Request,
    status: Annotated[JobStatus | None, Query(description="Only jobs in this state.")] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> dict[str, Any]:
    jobs, total = _manager(request).page(status, limit, offset, _caller(request))
    next_offset = offset + len(jobs) if offset + len(jobs) < total else None
    return {
        "jobs": jobs,
        "total": total,
        "limit": limit,
        "offset": offset,
        "next_offset": next_offset,
    }


@router.get(
    "/{job_id}",
    response_model=Job,
    operation_id="get_job",
    summary="One job: status, progress, metrics",
    responses=_problems(NOT_FOUND),
)
async def get_job(request: Request, job_id: str) -> dict[str, Any]:
    return _manager(request).view(job_id, _caller(request))


@router.delete(
    "/{job_id}",
    response_model=Job,
    operation_id="cancel_job",
    summary="Cancel a queued or running job; delete a finished one with its model",
    description="A queued or running job is cancelled and kept: the answer (200) is the job, "
    "now `cancelled`. A finished job (`succeeded`, `failed` or `cancelled`) is deleted with "
    "its model: the answer is 204, and the job is 404 from then on.",
    responses={
        204: {"description": "The job had finished; it and its model are deleted."},
        **_problems(NOT_FOUND),
    },
)
async def cancel_job(request: Request, job_id: str) -> Any:
    record = await _manager(request).cancel_or_delete(job_id, _caller(request))
    return Response(status_code=204) if record is None else record


@router.get(
    "/{job_id}/events",
    operation_id="job_events",
    summary="Follow a job as Server-Sent Events",
    response_class=StreamingResponse,
    responses={
        200: {
            "content": {"text/event-stream": {"schema": {"type": "string"}}},
            "description": "Events `status`, `progress`, `epoch`, and last `done` (the job).",
        },
        **_problems(NOT_FOUND, (422, "Last-Event-ID is not an event id (0 .. 2^63-1).")),
    },
)
async def stream_events(
    request: Request,
    job_id: str,
    last_event_id_header: Annotated[
        int | None, Header(alias="Last-Event-ID", ge=0, le=MAX_EVENT_ID)
    ] = None,
    last_event_id: Annotated[
        int | None, Query(ge=0, le=MAX_EVENT_ID, description="As Last-Event-ID.")
    ] = None,
) -> StreamingResponse:
    manager = _manager(request)
    manager.get(job_id, _caller(request))  # 404 before the stream starts
    after = last_event_id_header if last_event_id_header is not None else last_event_id
    return StreamingResponse(
        job_events(manager, job_id, after or 0),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


@router.get(
    "/{job_id}/model",
    operation_id="download_job_model",
    summary="The trained model as safetensors",
    response_class=FileResponse,
    responses={
        200: {
            "content": {"application/octet-stream": {}},
            "description": "Tensors fc1.weight, fc1.bias, fc2.weight, fc2.bias (float32).",
        },
        **_problems(NOT_FOUND, NOT_SUCCEEDED),
    },
)
async def download_model(request: Request, job_id: str) -> FileResponse:
    path = _manager(request).model_path(job_id, _caller(request))
    return FileResponse(
        path, media_type="application/octet-stream", filename=f"mnist-{job_id}.safetensors"
    )


def predict_answer(
    document: Any, settings: Settings, *, job_id: str, path: Path, classes: list[str]
) -> dict[str, Any]:
    """Parse, decode and classify: the answer of ``predict``, off the event loop when the
    body is large."""
    try:
        body = PredictRequest.model_validate(document)
    except ValidationError as exc:
        raise from_pydantic(exc) from None
    budget = ElementBudget(settings.max_tensor_elements, settings.max_nesting_depth)
    images = decode_tensor(body.images, ("body", "images"), torch.float32, budget)
    x = images_to_input(images, ("body", "images"), body.normalized)
    predicted, probabilities = predict(_models.get(path), x)
    indices = predicted.tolist()
    return {
        "job_id": job_id,
        "classes": indices,
        "labels": [classes[i] for i in indices],
        "probabilities": encode_tensor(probabilities, body.encoding),
    }


@router.post(
    "/{job_id}/predict",
    response_model=PredictResponse,
    operation_id="predict_with_job_model",
    summary="Classify 28x28 images with a job's model",
    responses=_problems(
        NOT_FOUND,
        NOT_SUCCEEDED,
        (413, "The body or its tensors exceed a limit."),
        (422, "The body is not JSON (or not UTF-8), or the images are not usable."),
        (503, "The computation exceeded the time limit."),
    ),
    openapi_extra=request_body(schema_ref(PredictRequest)),
)
async def predict_images(request: Request, job_id: str) -> Response:
    manager = _manager(request)
    caller = _caller(request)
    path = manager.model_path(job_id, caller)
    classes = list(dataset_spec(manager.get(job_id, caller)["config"]["dataset"]).classes)
    answer = partial(predict_answer, job_id=job_id, path=path, classes=classes)
    return await answer_json(request, answer)
