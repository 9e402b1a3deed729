"""Deleting finished jobs: one at a time (``DELETE /v1/jobs/{id}``), or by retention.

Retention keeps finished jobs (succeeded, failed, cancelled) for
``LOSS_SERVICE_JOB_RETENTION_DAYS`` after they finished and at most the newest
``LOSS_SERVICE_JOB_RETENTION_COUNT`` of them; the leader deletes the others, with their models,
at start and every ``SWEEP_EVERY_S``. Queued and running jobs are never removed by retention.
"""

from __future__ import annotations

import contextlib
import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path

from service.jobs.stores import JobStore
from service.settings import Settings

log = logging.getLogger(__name__)

SWEEP_EVERY_S = 60.0
SWEEP_BATCH = 200  # most jobs deleted per sweep, so one sweep stays short


def model_file(models_dir: Path, job_id: str) -> Path:
    return models_dir / f"{job_id}.safetensors"


def delete_job(store: JobStore, models_dir: Path, job_id: str, status: str | None = None) -> bool:
    """Remove a job's record, series, events and model file (only while its status is
    ``status``, when given); whether the record was there."""
    if not store.delete(job_id, status):
        return False
    with contextlib.suppress(FileNotFoundError):
        model_file(models_dir, job_id).unlink()
    return True


def cutoff(settings: Settings, now: datetime | None = None) -> str | None:
    """The ISO time before which finished jobs are too old (None: no age limit)."""
    if not settings.job_retention_days:
        return None
    moment = (now or datetime.now(UTC)) - timedelta(days=settings.job_retention_days)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def sweep(store: JobStore, settings: Settings) -> list[str]:
    """Delete the finished jobs retention no longer keeps (at most ``SWEEP_BATCH``); their
    ids."""
    keep = settings.job_retention_count or None
    expired = store.expired(cutoff(settings), keep, SWEEP_BATCH)
    deleted = [job_id for job_id in expired if delete_job(store, settings.models_dir, job_id, None)]
    if deleted:
        log.info(
            "retention deleted %d finished jobs and their models "
            "(LOSS_SERVICE_JOB_RETENTION_DAYS=%g, LOSS_SERVICE_JOB_RETENTION_COUNT=%d)",
            len(deleted),
            settings.job_retention_days,
            settings.job_retention_count,
        )
    return deleted
