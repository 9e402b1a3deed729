"""Operations endpoints: liveness, readiness, versions and devices. Never behind API keys."""

from __future__ import annotations

import platform

import numpy as np
import torch
from fastapi import APIRouter, Request
from pydantic import BaseModel, Field
from starlette.responses import Response

from service import __version__
from service.compute.devices import describe_devices
from service.http.context import context
from service.losses.registry import catalogue

router = APIRouter(tags=["operations"])


class Health(BaseModel):
    status: str = Field(examples=["ok"])


class Limits(BaseModel):
    max_body_bytes: int
    max_tensor_elements: int
    max_nesting_depth: int
    compute_timeout_s: float


class ServiceInfo(BaseModel):
    service: str
    version: str
    python: str
    torch: str
    numpy: str
    cuda_available: bool
    cuda_version: str | None
    devices: list[dict[str, object]]
    default_device: str
    torch_threads: int
    losses: int
    limits: Limits


@router.get("/healthz", operation_id="healthz", summary="Liveness: the process answers")
def healthz() -> Health:
    return Health(status="ok")


@router.get(
    "/readyz",
    operation_id="readyz",
    summary="Readiness: ready to serve requests",
    responses={503: {"model": Health, "description": "Starting or shutting down."}},
)
def readyz(request: Request) -> Response:
    ready = bool(request.app.state.ready)
    body = Health(status="ready" if ready else "unavailable").model_dump_json()
    return Response(body, status_code=200 if ready else 503, media_type="application/json")


INFO_EXAMPLE = {
    "service": "loss-service",
    "version": "0.1.0",
    "python": "3.11.7",
    "torch": "2.13.0+cu128",
    "numpy": "2.4.6",
    "cuda_available": True,
    "cuda_version": "12.8",
    "devices": [
        {"name": "cpu", "type": "cpu"},
        {"name": "cuda:0", "type": "cuda", "model": "NVIDIA H100", "memory_bytes": 85520809984},
    ],
    "default_device": "cuda:0",
    "torch_threads": 8,
    "losses": 22,
    "limits": {
        "max_body_bytes": 67108864,
        "max_tensor_elements": 16000000,
        "max_nesting_depth": 32,
        "compute_timeout_s": 60.0,
    },
}


@router.get(
    "/v1/info",
    operation_id="service_info",
    summary="Versions, devices and limits",
    responses={200: {"content": {"application/json": {"example": INFO_EXAMPLE}}}},
)
def info(request: Request) -> ServiceInfo:
    settings = context(request).settings
    cuda = torch.cuda.is_available()
    return ServiceInfo(
        service="loss-service",
        version=__version__,
        python=platform.python_version(),
        torch=torch.__version__,
        numpy=np.__version__,
        cuda_available=cuda,
        cuda_version=torch.version.cuda,
        devices=describe_devices(),
        default_device="cuda:0" if cuda else "cpu",
        torch_threads=torch.get_num_threads(),
        losses=len(catalogue()),
        limits=Limits(
            max_body_bytes=settings.max_body_bytes,
            max_tensor_elements=settings.max_tensor_elements,
            max_nesting_depth=settings.max_nesting_depth,
            compute_timeout_s=settings.compute_timeout_s,
        ),
    )
