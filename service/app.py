"""The application factory: settings, middleware, error rendering, routers, lifespan."""

from __future__ import annotations

import logging
import warnings
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import torch
from fastapi import FastAPI

from service import __version__
from service.http.auth import UNAUTHORIZED, ApiKeyGate
from service.http.context import AppContext
from service.http.limits import BodySizeLimit
from service.http.loss_fast_path import LossFastPath
from service.http.offload import Offloader
from service.http.openapi import install_openapi
from service.http.problems import install_problem_handlers
from service.http.routes import evaluate, grading, information, losses, operations
from service.jobs.routes import jobs_lifespan
from service.jobs.routes import router as jobs_router
from service.losses.registry import catalogue
from service.observability.wiring import install_observability
from service.settings import Settings, get_settings
from service.state import legacy_database_hint, state_report

log = logging.getLogger("service.app")

DESCRIPTION = """\
PyTorch losses and their gradients for anyone who can send JSON, exactly as
`torch.nn.functional` computes them, and MNIST training jobs in the background.

Tensors travel as JSON numbers, nested arrays, `{shape, dtype, data}` objects or
`{shape, dtype, base64}` objects; errors are `application/problem+json` (RFC 9457).
"""

TAGS = [
    {"name": "losses", "description": "The loss catalogue, and computing losses and gradients."},
    {"name": "information", "description": "Entropy, cross-entropy and KL divergence."},
    {"name": "grading", "description": "Grading submitted losses and gradients, with hints."},
    {"name": "operations", "description": "Health, readiness and service information."},
    {"name": "jobs", "description": "MNIST training jobs in the background."},
]


def configure_torch(settings: Settings) -> None:
    # Each worker takes its share of the cores; torch's default (all cores per process)
    # makes workers fight over them and collapses multi-worker throughput.
    torch.set_num_threads(settings.effective_torch_threads())
    # Torch's advice (kl_div's 'mean', broadcasting targets) would fill the log once per request;
    # it concerns the client's inputs, not the service.
    warnings.filterwarnings("ignore", category=UserWarning, module=r"(torch|service)\.")


def log_state(settings: Settings, hint: str | None) -> None:
    """Name the places of the service's state (service.state) in the log."""
    message, places = state_report(settings)
    log.info(message, extra=places)
    if hint:
        log.warning(hint)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    configure_torch(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        catalogue()  # built before the first request, not during it
        hint = legacy_database_hint(settings)  # before the job store creates its database
        async with jobs_lifespan(app, settings) as manager:
            if manager.leader:  # one line per start, however many workers
                log_state(settings, hint)
            app.state.ready = True
            try:
                yield
            finally:
                app.state.ready = False

    app = FastAPI(
        title="Loss Service",
        version=__version__,
        summary="PyTorch losses and their gradients over HTTP.",
        description=DESCRIPTION,
        openapi_tags=TAGS,
        lifespan=lifespan,
    )
    app.state.ready = False
    app.state.context = AppContext(settings=settings, offloader=Offloader(settings))
    install_problem_handlers(app)
    app.include_router(operations.router)
    for router in (losses.router, evaluate.router, grading.router, information.router, jobs_router):
        app.include_router(router, responses=UNAUTHORIZED)
    # Middleware added first runs innermost: requests meet the request id and metrics, then
    # the body limit, then the API key, then the loss fast path, then FastAPI's router.
    app.add_middleware(LossFastPath)
    if settings.api_keys:
        app.add_middleware(ApiKeyGate, keys=settings.api_keys)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    install_observability(app, settings)
    install_openapi(app)
    logging.getLogger("service").setLevel(settings.log_level.upper())
    return app
