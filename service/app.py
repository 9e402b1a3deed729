"""The application factory: settings, middleware, error rendering, routers, lifespan."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import torch
from fastapi import FastAPI

from service import __version__
from service.compute import torch_warnings
from service.http.auth import UNAUTHORIZED, ApiKeyGate
from service.http.body_guard import BodyKeyGuard
from service.http.context import AppContext
from service.http.docs_pages import install_docs
from service.http.limits import BodySizeLimit
from service.http.loss_fast_path import LossFastPath
from service.http.offload import Offloader
from service.http.openapi import install_openapi
from service.http.problems import install_problem_handlers
from service.http.rate_limit import RATE_LIMITED, RateLimit
from service.http.routes import evaluate, grading, information, jobs, losses, oip, operations
from service.http.streams import EventStreamCap
from service.jobs.lifespan import jobs_lifespan
from service.losses.registry import catalogue
from service.observability.wiring import install_observability
from service.settings import Settings, get_settings
from service.state import legacy_database_hint, state_report
from service.web import install_web

log = logging.getLogger("service.app")

DESCRIPTION = """\
PyTorch losses and their gradients for anyone who can send JSON, exactly as
`torch.nn.functional` computes them, and MNIST training jobs in the background.

Tensors travel as JSON numbers, nested arrays, `{shape, dtype, data}` objects or
`{shape, dtype, base64}` objects (the `Tensor` and `TensorObject` schemas); dtypes by their
torch names or their Open Inference Protocol spellings (`FP32`, `INT64`, ...); non-finite floats
as the strings `"NaN"`, `"Infinity"`, `"-Infinity"`. Errors are `application/problem+json`
(RFC 9457) whose `errors[].loc` names the field. The whole contract is `docs/contract.md` in
the repository.

API keys: a service started with keys (`LOSS_SERVICE_API_KEYS`) requires
`Authorization: Bearer <key>` on every `/v1` path except `/v1/info`, answers 401 without a
valid one, and its document declares the bearer scheme on those operations; a service without
keys (as this document was generated) requires none.

Limits: each client (its API key, or its address) may send `LOSS_SERVICE_RATE_LIMIT_PER_S`
requests per second to `/v1` (after a burst of `LOSS_SERVICE_RATE_LIMIT_BURST`) and follow
`LOSS_SERVICE_MAX_EVENT_STREAMS_PER_CLIENT` event streams; beyond, 429 with `Retry-After`.
"""

TAGS = [
    {"name": "losses", "description": "The loss catalogue, and computing losses and gradients."},
    {"name": "information", "description": "Entropy, cross-entropy and KL divergence."},
    {"name": "grading", "description": "Grading submitted losses and gradients, with hints."},
    {"name": "operations", "description": "Health, readiness and service information."},
    {"name": "jobs", "description": "MNIST training jobs in the background."},
    {
        "name": "inference protocol",
        "description": "The Open Inference Protocol (KServe v2, Triton) over HTTP: each loss "
        'is a model; errors are `{"error": ...}`.',
    },
]


def configure_torch(settings: Settings) -> None:
    # Each worker takes its share of the cores; torch's default (all cores per process)
    # makes workers fight over them and collapses multi-worker throughput.
    torch.set_num_threads(settings.effective_torch_threads())
    # Torch's advice (kl_div's 'mean', broadcasting targets) concerns the client's inputs, not
    # the service: it goes into the answer, never the log.
    torch_warnings.install()


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
                app.state.context.offloader.close()

    app = FastAPI(
        title="Loss Service",
        version=__version__,
        summary="PyTorch losses and their gradients over HTTP.",
        description=DESCRIPTION,
        openapi_tags=TAGS,
        lifespan=lifespan,
        docs_url=None,  # served by install_docs from the service's own files
        redoc_url=None,
    )
    app.state.ready = False
    app.state.context = AppContext(settings=settings, offloader=Offloader(settings))
    install_problem_handlers(app, settings.max_problem_errors)
    app.include_router(operations.router)
    # The 401 (and the bearer scheme) stays in the document only where keys are configured
    # (declare_security); the 429 of the rate limit always (it is on by default).
    for router in (losses.router, evaluate.router, grading.router, information.router, jobs.router):
        app.include_router(router, responses={**UNAUTHORIZED, **RATE_LIMITED})
    app.include_router(oip.router)
    # Middleware added first runs innermost: requests meet the request id and metrics, then
    # the rate limit, then the body limit, then the API key, then the event-stream cap, then
    # the loss fast path, then the unknown-key guard of the jobs routes' bodies, then
    # FastAPI's router.
    app.add_middleware(
        BodyKeyGuard, routes=jobs.router.routes, max_members=settings.max_json_members
    )
    app.add_middleware(LossFastPath)
    app.add_middleware(
        EventStreamCap,
        total=settings.max_event_streams,
        per_client=settings.max_event_streams_per_client,
        api_keys=settings.api_keys,
    )
    if settings.api_keys:
        app.add_middleware(ApiKeyGate, keys=settings.api_keys)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    if settings.rate_limit_per_s > 0:
        app.add_middleware(
            RateLimit,
            rate_per_s=settings.rate_limit_per_s,
            burst=settings.rate_limit_burst,
            api_keys=settings.api_keys,
        )
    install_observability(app, settings)
    install_openapi(app)
    install_docs(app)
    install_web(app)
    logging.getLogger("service").setLevel(settings.log_level.upper())
    return app
