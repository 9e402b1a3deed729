"""``GET /metrics``: Prometheus text format. Open like the other operations endpoints."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from service.observability.metrics import exposition, set_jobs_by_status

router = APIRouter(tags=["operations"])

JOB_STATUSES = ("queued", "running", "succeeded", "failed", "cancelled")
EXAMPLE = """\
# HELP loss_service_http_requests_total HTTP requests answered, by method, route template and \
status code.
# TYPE loss_service_http_requests_total counter
loss_service_http_requests_total{method="POST",route="/v1/losses/mse_loss",status="200"} 3.0
"""


@router.get(
    "/metrics",
    operation_id="metrics",
    summary="Prometheus metrics: requests, latency, losses, grading, jobs, training speed",
    response_class=Response,
    responses={
        200: {
            "description": "Prometheus text exposition format 0.0.4.",
            "content": {"text/plain": {"schema": {"type": "string"}, "example": EXAMPLE}},
        }
    },
)
def metrics(request: Request) -> Response:
    manager = getattr(request.app.state, "job_manager", None)
    if manager is not None:
        set_jobs_by_status({status: manager.store.count(status) for status in JOB_STATUSES})
    body, content_type = exposition()
    return Response(body, media_type=content_type)
