"""Puts logging, `/metrics`, CORS and the request-id middleware into the app."""

from __future__ import annotations

from fastapi import FastAPI
from starlette.middleware.cors import CORSMiddleware

from service.observability.logs import configure_logging
from service.observability.middleware import RequestObservability
from service.settings import Settings

CORS_HEADERS = ["Authorization", "Content-Type", "X-Request-ID", "Last-Event-ID"]
EXPOSED_HEADERS = ["X-Request-ID", "Location", "Retry-After"]


def install_observability(app: FastAPI, settings: Settings) -> None:
    """Logging, ``/metrics``, CORS and the request-id middleware (outermost, so that every
    answer, a 413 or a CORS preflight included, is counted and carries its id)."""
    from service.http.routes import metrics

    configure_logging(settings.log_level, settings.log_format)
    app.include_router(metrics.router)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "DELETE", "OPTIONS"],
            allow_headers=CORS_HEADERS,
            expose_headers=EXPOSED_HEADERS,
            max_age=600,
        )
    app.add_middleware(RequestObservability, log_requests=settings.access_log)
