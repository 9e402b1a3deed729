"""HTTP endpoints of training jobs (docs/contract.md, "MNIST training jobs")."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

import anyio
import torch
from fastapi import APIRouter, Body, FastAPI, Header, Query, Request, Response
from fastapi.responses import FileResponse, StreamingResponse

from service.datasets.catalog import dataset_spec
from service.http.schemas import Problem
from service.jobs.config import JobConfig
from service.jobs.events import job_events
from service.jobs.inference import ModelCache, images_to_input, predict
from service.jobs.manager import JobManager
from service.jobs.schemas import Job, JobList, JobStatus, PredictRequest, PredictResponse
from service.settings import Settings
from service.tensors.codec import ElementBudget, decode_tensor, encode_tensor
from service.tensors.wirejson import dumps

router = APIRouter(prefix="/v1/jobs", tags=["jobs"])


def _problems(*items: tuple[int, str]) -> dict[int | str, dict[str, Any]]:
    # Their media type, application/problem+json, is set for every error in service.http.openapi.
    return {status: {"model": Problem, "description": text} for status, text in items}


NOT_FOUND = (404, "No such job.")
NOT_SUCCEEDED = (409, "The job has not succeeded, so it has no model.")
_models = ModelCache()


@asynccontextmanager
async def jobs_lifespan(app: FastAPI, settings: Settings) -> AsyncIterator[JobManager]:
    """Start the job manager (recovering records of a previous run) and stop it at exit."""
    manager = JobManager(settings)
    app.state.job_manager = manager
    await manager.start()
    try:
        yield manager
    finally:
        await manager.stop()


def _manager(request: Request) -> JobManager:
    manager: JobManager = request.app.state.job_manager
    return manager


def _settings(request: Request) -> Settings:
    return _manager(request).settings


@router.post(
    "/mnist",
    status_code=202,
    response_model=Job,
    operation_id="create_mnist_job",
    summary="Start an MNIST / Fashion-MNIST training job",
    responses=_problems(
        (422, "A config field is invalid; `errors` names it."),
        (429, "The queue of waiting jobs is full."),
    ),
)
async def create_job(
    request: Request,
    response: Response,
    config: Annotated[JobConfig, Body()] = JobConfig(),  # noqa: B008 - an immutable default
) -> dict[str, Any]:
    record = _manager(request).submit(config)
    response.headers["Location"] = f"/v1/jobs/{record['id']}"
    return record


@router.get("", response_model=JobList, operation_id="list_jobs", summary="List jobs, newest first")
async def list_jobs(
    request: Request,
    status: Annotated[JobStatus | None, Query(description="Only jobs in this state.")] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> dict[str, Any]:
    jobs, total = _manager(request).page(status, limit, offset)
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
    return _manager(request).get(job_id)


@router.delete(
    "/{job_id}",
    response_model=Job,
    operation_id="cancel_job",
    summary="Cancel a queued or running job (idempotent)",
    responses=_problems(NOT_FOUND, (409, "The job has already succeeded or failed.")),
)
async def cancel_job(request: Request, job_id: str) -> dict[str, Any]:
    return await _manager(request).cancel(job_id)


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
        **_problems(NOT_FOUND),
    },
)
async def stream_events(
    request: Request,
    job_id: str,
    last_event_id_header: Annotated[int | None, Header(alias="Last-Event-ID")] = None,
    last_event_id: Annotated[int | None, Query(ge=0, description="As Last-Event-ID.")] = None,
) -> StreamingResponse:
    manager = _manager(request)
    manager.get(job_id)
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
    path = _manager(request).model_path(job_id)
    return FileResponse(
        path, media_type="application/octet-stream", filename=f"mnist-{job_id}.safetensors"
    )


@router.post(
    "/{job_id}/predict",
    response_model=PredictResponse,
    operation_id="predict_with_job_model",
    summary="Classify 28x28 images with a job's model",
    responses=_problems(NOT_FOUND, NOT_SUCCEEDED, (422, "The images are not usable.")),
)
async def predict_images(request: Request, job_id: str, body: PredictRequest) -> Response:
    manager = _manager(request)
    path = manager.model_path(job_id)
    settings = manager.settings
    classes = list(dataset_spec(manager.get(job_id)["config"]["dataset"]).classes)
    budget = ElementBudget(settings.max_tensor_elements, settings.max_nesting_depth)
    images = decode_tensor(body.images, ("body", "images"), torch.float32, budget)

    def run() -> bytes:
        x = images_to_input(images, ("body", "images"), body.normalized)
        model = _models.get(path)
        predicted, probabilities = predict(model, x)
        indices = predicted.tolist()
        return dumps(
            {
                "job_id": job_id,
                "classes": indices,
                "labels": [classes[i] for i in indices],
                "probabilities": encode_tensor(probabilities, body.encoding),
            }
        )

    content = run() if images.numel() <= 28 * 28 * 16 else await anyio.to_thread.run_sync(run)
    return Response(content, media_type="application/json")
