"""Turning what a training process reports into record updates, events and loss points.

The loss series is kept bounded: points go to their own table (one insert each, the record is
not rewritten), at most ``LOSS_SERVICE_JOB_MAX_LOSS_POINTS`` of them. When the series is full,
every other point is dropped and only points on the doubled spacing are kept from then on, so
the kept points stay evenly spaced and ``train_loss_series.every_steps`` says their spacing.
Each point costs O(1) amortised, whatever ``log_every`` is.
"""

from __future__ import annotations

import secrets
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from service.jobs.config import JobConfig
from service.jobs.stores import JobStore, Record
from service.observability.metrics import observe_job_event

TERMINAL = frozenset({"succeeded", "failed", "cancelled"})


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def new_record(config: JobConfig) -> Record:
    """The record of a job just submitted (``queued``), its seed drawn when the config has
    none, so that every job can be repeated."""
    seed = config.seed if config.seed is not None else secrets.randbelow(2**31)
    return {
        "id": uuid.uuid4().hex,
        "status": "queued",
        "config": config.model_copy(update={"seed": seed}).model_dump(mode="json"),
        "created_at": now_iso(),
        "started_at": None,
        "finished_at": None,
        "progress": None,
        "metrics": [],
        "train_loss_series": {"every_steps": config.log_every, "points": []},
        "timings": {},
        "device": None,
        "error": None,
        "model": None,
    }


def seconds_between(start: str | None, end: str) -> float | None:
    if not start:
        return None
    return (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds()


@dataclass
class RunningJob:
    job_id: str
    process: Any = None  # the local executor's subprocess.Popen; None for a Ray actor's run
    log_every: int = 1
    started: float = field(default_factory=time.monotonic)
    cancel_requested: bool = False
    started_up: bool = False  # the worker has imported torch and listens to stdin
    finished: threading.Event = field(default_factory=threading.Event)  # the process is gone
    settled: threading.Event = field(default_factory=threading.Event)  # the record is final
    terminal_seen: bool = False
    stride: int = 1  # kept loss points are those whose index is a multiple of this
    points: int = 0  # loss points stored
    last_loss: Any = None


class RecordWriter:
    """Writes records and events to the store and tells subscribers (``notify``)."""

    def __init__(self, store: JobStore, notify: Callable[[str], None], max_points: int) -> None:
        self.store = store
        self.notify = notify
        self.max_points = max_points

    # Records and events

    def finish(
        self,
        record: Record,
        status: str,
        error: dict[str, str] | None = None,
        expected: str | None = None,
    ) -> Record | None:
        """Make the record final; with ``expected``, only while it still has that status
        (None when it had moved on)."""
        finished = now_iso()
        record.update(status=status, finished_at=finished, error=error)
        total = seconds_between(record.get("started_at"), finished)
        if total is not None:
            record["timings"]["total_s"] = total
        change: Record = {"status": status, "error": error}
        # The final status and ``done`` (the whole job) in one transaction: an event stream
        # that sees the job finished also finds its ``done`` event.
        done = self.store.with_points([record])[0]
        if expected is None:
            self.store.update(record, "status", change, done=done)
        elif not self.store.update_if(record, expected, "status", change, done=done):
            return None
        observe_job_event(record["id"], "status", change)
        self.notify(record["id"])
        return record

    def interrupt(self, record: Record) -> None:
        """A ``running`` job that nobody trains any more (its server or actor died): failed,
        reason ``interrupted``, with the epochs it finished kept."""
        progress = record.get("progress") or {}
        where = (
            f" at epoch {progress.get('epoch')}, step {progress.get('step')}"
            if progress.get("epoch")
            else ""
        )
        error = {
            "reason": "interrupted",
            "message": f"the service stopped while this job was running{where}; "
            "start a new job to train again",
        }
        self.finish(record, "failed", error=error, expected="running")

    def save_if(self, record: Record, expected: str, event: str, data: Record) -> bool:
        if not self.store.update_if(record, expected, event, data):
            return False
        observe_job_event(record["id"], event, data)
        self.notify(record["id"])
        return True

    def save(self, record: Record, event: str | None = None, data: Record | None = None) -> None:
        self.store.update(record, event, data)
        observe_job_event(record["id"], event, data)
        if event:
            self.notify(record["id"])

    # Worker messages

    def on_message(self, job: RunningJob, message: dict[str, Any]) -> None:
        kind = message.pop("type", None)
        if kind == "loss":
            self._add_point(job, message)
            return
        record = self.store.get(job.job_id)
        if record is None or record["status"] in TERMINAL:
            return
        if kind == "started":
            job.started_up = True
            record["device"] = message.get("device")
            record["timings"]["worker_start_s"] = time.monotonic() - job.started
            self.save(record)
        elif kind in ("phase", "download", "progress"):
            progress = record.get("progress") or {}
            if kind == "phase":
                progress["phase"] = message["phase"]
            elif kind == "download":
                progress.update(phase="downloading", download=message)
            else:
                progress.update(message, phase="training")
                progress.pop("download", None)
                if job.last_loss is not None:
                    progress["loss"] = job.last_loss
            record["progress"] = progress
            self.save(record, "progress", progress)
        elif kind == "epoch":
            record["metrics"].append(message)
            self.save(record, "epoch", message)
        elif kind in TERMINAL:
            job.terminal_seen = True
            record["timings"].update(message.get("timings") or {})
            self._latest(job, record)
            if kind == "succeeded":
                model = message["model"]
                # Kept by the store (a file here, a row in PostgreSQL) before the record says
                # succeeded, so that whoever reads it finds the model.
                self.store.save_model(job.job_id, Path(model["path"]))
                record["model"] = {
                    "format": "safetensors",
                    "bytes": model["bytes"],
                    "tensors": model["tensors"],
                    "url": f"/v1/jobs/{job.job_id}/model",
                }
                if record.get("progress"):
                    record["progress"]["phase"] = "done"
                self.finish(record, "succeeded")
            elif kind == "cancelled":
                self.finish_stopped(job, record)
            else:
                error = {"reason": message["reason"], "message": message["message"]}
                self.finish(record, "failed", error=error)
            job.settled.set()  # only now is the record final: a waiting cancel reads it

    def _add_point(self, job: RunningJob, point: dict[str, Any]) -> None:
        job.last_loss = point.get("loss")
        n = int(point["step"]) // job.log_every
        if n % job.stride:
            return
        self.store.add_point(job.job_id, n, point)
        job.points += 1
        if job.points <= self.max_points:
            return
        job.stride *= 2
        job.points = self.store.thin_points(job.job_id, job.stride)
        record = self.store.get(job.job_id)
        if record is not None and record["status"] not in TERMINAL:
            record["train_loss_series"]["every_steps"] = job.log_every * job.stride
            self.save(record)

    def _latest(self, job: RunningJob, record: Record) -> None:
        if job.last_loss is not None and record.get("progress"):
            record["progress"]["loss"] = job.last_loss

    def on_exit(self, job: RunningJob, code: int, stopping: bool) -> None:
        """The worker ended without a final message."""
        record = self.store.get(job.job_id)
        if record is None or record["status"] in TERMINAL:
            return
        self._latest(job, record)
        if job.cancel_requested or stopping:
            self.finish_stopped(job, record)
        else:
            self.finish(
                record,
                "failed",
                error={
                    "reason": "worker_crashed",
                    "message": f"the training process exited with code {code} "
                    "before finishing (out of memory?)",
                },
            )

    def finish_stopped(self, job: RunningJob, record: Record) -> None:
        """Cancelled when a client asked; otherwise the service was stopping."""
        if job.cancel_requested:
            self.finish(record, "cancelled")
        else:
            self.finish(
                record,
                "failed",
                error={
                    "reason": "interrupted",
                    "message": "the service was stopped while this job was running; "
                    "start a new job to train again",
                },
            )
