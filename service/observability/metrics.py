"""The service's Prometheus metrics, and small functions that record them.

The metric objects live here; other modules call the ``record_*`` functions, never
``prometheus_client`` directly, so names and labels are defined once. Label values are
bounded: routes are templates (``/v1/jobs/{job_id}``), never raw paths, and jobs are counted
by status, never by id.

With ``PROMETHEUS_MULTIPROC_DIR`` set (the container image sets it), ``/metrics`` adds up the
values of every uvicorn worker (``prometheus_client`` multiprocess mode) instead of showing the
one worker that answered; ``python -m service`` empties the folder at start.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable, Mapping
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.multiprocess import MultiProcessCollector

from service.observability.multiprocess import ENVIRONMENT_VARIABLE

# The ``*_created`` timestamp series double the output and no dashboard reads them.
disable_created_metrics()  # type: ignore[no-untyped-call]

UNMATCHED_ROUTE = "<unmatched>"
LATENCY_BUCKETS = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
)

HTTP_REQUESTS = Counter(
    "loss_service_http_requests",
    "HTTP requests answered, by method, route template and status code.",
    ["method", "route", "status"],
)
HTTP_LATENCY = Histogram(
    "loss_service_http_request_duration_seconds",
    "Time from receiving a request to the end of its response, by method and route template.",
    ["method", "route"],
    buckets=LATENCY_BUCKETS,
)
HTTP_IN_PROGRESS = Gauge(
    "loss_service_http_requests_in_progress",
    "Requests being answered now.",
    multiprocess_mode="livesum",
)
LOSS_EVALUATIONS = Counter(
    "loss_service_loss_evaluations",
    "Losses computed successfully, by the loss's PyTorch name (aliases resolved).",
    ["loss"],
)
GRADING_CHECKS = Counter(
    "loss_service_grading_checks",
    "Grading checks of submitted quantities, by result (passed or failed).",
    ["result"],
)
JOB_TRANSITIONS = Counter(
    "loss_service_jobs",
    "Training jobs entering each status (queued, running, succeeded, failed, cancelled).",
    ["status"],
)
JOBS_BY_STATUS = Gauge(
    "loss_service_jobs_current",
    "Training jobs in the job database by status, counted when /metrics is read.",
    ["status"],
    multiprocess_mode="mostrecent",
)
TRAINING_SAMPLES_PER_SECOND = Gauge(
    "loss_service_training_samples_per_second",
    "Training throughput of the running jobs together, as they last reported it (0: none).",
    multiprocess_mode="livesum",
)

_request_children: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}
_job_throughput: dict[str, float] = {}
_throughput_lock = threading.Lock()


def record_request(method: str, route: str, status: int, seconds: float) -> None:
    key = (method, route, status)
    children = _request_children.get(key)
    if children is None:  # label lookups take a lock; do them once per combination
        children = (
            HTTP_REQUESTS.labels(method, route, str(status)),
            HTTP_LATENCY.labels(method, route),
        )
        _request_children[key] = children
    children[0].inc()
    children[1].observe(seconds)


def record_loss_evaluation(loss: str) -> None:
    LOSS_EVALUATIONS.labels(loss).inc()


def record_grading_check(passed: bool) -> None:
    GRADING_CHECKS.labels("passed" if passed else "failed").inc()


def record_grading_checks(checks: Iterable[Mapping[str, Any]]) -> None:
    """Each check of a graded submission (items with a boolean ``passed``)."""
    for check in checks:
        record_grading_check(bool(check["passed"]))


def record_job_status(status: str) -> None:
    JOB_TRANSITIONS.labels(status).inc()


def set_training_samples_per_second(job_id: str, samples_per_s: float | None) -> None:
    """The job's latest throughput; ``None`` once it has stopped."""
    with _throughput_lock:
        if samples_per_s is None:
            _job_throughput.pop(job_id, None)
        else:
            _job_throughput[job_id] = samples_per_s
        TRAINING_SAMPLES_PER_SECOND.set(sum(_job_throughput.values()))


TERMINAL_STATUSES = frozenset({"succeeded", "failed", "cancelled"})


def observe_job_event(job_id: str, event: str | None, data: dict[str, object] | None) -> None:
    """Record what a job's stored event says: its status changes and its throughput."""
    if not event or data is None:
        return
    if event == "status":
        status = str(data.get("status"))
        record_job_status(status)
        if status in TERMINAL_STATUSES:
            set_training_samples_per_second(job_id, None)
    elif event == "progress":
        rate = data.get("samples_per_s")
        if isinstance(rate, int | float):
            set_training_samples_per_second(job_id, float(rate))


def set_jobs_by_status(counts: dict[str, int]) -> None:
    for status, count in counts.items():
        JOBS_BY_STATUS.labels(status).set(count)


def exposition() -> tuple[bytes, str]:
    """The metrics in Prometheus text format, and its content type."""
    directory = os.environ.get(ENVIRONMENT_VARIABLE)
    if directory:
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=directory)  # type: ignore[no-untyped-call]
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
