"""Queue, concurrency limit, cancellation and restart recovery of training jobs.

Each running job is a worker process (``service.jobs.worker``) whose stdout a reader thread
turns into record updates and events, written to SQLite and announced to SSE subscribers on
the event loop. The event loop only starts processes and reads small records, so requests stay
fast while jobs train.

Recovery: on start every record still ``running`` belongs to a worker that died with the
previous server process (its stdin closed, so it stopped too); it is marked ``failed`` with
reason ``interrupted``. ``queued`` jobs are started in order.

Several server processes (``--workers N``, or two servers on one database) share the jobs
through SQLite: the one holding an exclusive lock on ``<db>.lock`` is the leader and alone
starts, recovers and supervises training processes. The others insert queued jobs, ask the
leader to cancel through the ``job_cancels`` table, and poll the database for SSE; every
``POLL_S`` they try to take the lock, so a leader that dies is replaced.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import secrets
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from service.errors import Conflict, DeviceUnavailable, NotFound, TooManyRequests
from service.jobs.config import JobConfig
from service.jobs.store import JobStore, Record
from service.jobs.training import device_problem
from service.jobs.worker import WorkerSpec
from service.observability.metrics import observe_job_event
from service.settings import Settings

log = logging.getLogger(__name__)

TERMINAL = frozenset({"succeeded", "failed", "cancelled"})
CANCEL_GRACE_S = 10.0
SHUTDOWN_GRACE_S = 5.0
POLL_S = 0.5


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _seconds_between(start: str | None, end: str) -> float | None:
    if not start:
        return None
    return (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds()


@dataclass
class RunningJob:
    job_id: str
    process: subprocess.Popen[str]
    started: float = field(default_factory=time.monotonic)
    cancel_requested: bool = False
    started_up: bool = False  # the worker has imported torch and listens to stdin
    finished: threading.Event = field(default_factory=threading.Event)  # the process is gone
    settled: threading.Event = field(default_factory=threading.Event)  # the record is final
    terminal_seen: bool = False


class JobManager:
    def __init__(self, settings: Settings, *, store: JobStore | None = None) -> None:
        self.settings = settings
        self.store = store or JobStore(settings.db_path)
        self.models_dir = settings.models_dir
        self._lock = threading.RLock()
        self._running: dict[str, RunningJob] = {}
        self._subscribers: dict[str, set[asyncio.Event]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._readers: list[threading.Thread] = []
        self._lock_file: Any = None
        self._poller: asyncio.Task[None] | None = None
        self.leader = False
        self.stopping = False

    # Lifecycle

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._try_lead()
        self._poller = asyncio.create_task(self._poll(), name="job-manager-poll")

    def _try_lead(self) -> bool:
        """Take the leader lock if it is free; on success recover and dispatch."""
        if self.leader or self.stopping:
            return self.leader
        path = self.store.path
        if str(path) == ":memory:":
            self.leader = True
        else:
            handle = open(f"{path}.lock", "a+")  # noqa: SIM115 - held open while leading
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                handle.close()
                return False
            self._lock_file = handle
            self.leader = True
        self.recover()
        self.dispatch()
        return True

    async def _poll(self) -> None:
        while not self.stopping:
            await asyncio.sleep(POLL_S)
            try:
                if not self.leader:
                    self._try_lead()
                    self._wake_all()  # followers' SSE streams re-read the database
                    continue
                self.dispatch()  # jobs queued by other processes
                for job_id in self.store.take_cancels():
                    with self._lock:
                        job = self._running.get(job_id)
                        if job is not None:
                            job.cancel_requested = True
                            self._send_cancel(job)
            except Exception:  # pragma: no cover - never let the poller die
                log.exception("job manager poll failed")

    def recover(self) -> None:
        """Mark jobs that a previous server left ``running`` as failed (interrupted)."""
        for record in self.store.with_status("running"):
            progress = record.get("progress") or {}
            where = (
                f" at epoch {progress.get('epoch')}, step {progress.get('step')}"
                if progress.get("epoch")
                else ""
            )
            self._finish(
                record,
                "failed",
                error={
                    "reason": "interrupted",
                    "message": f"the service stopped while this job was running{where}; "
                    "start a new job to train again",
                },
            )

    async def stop(self) -> None:
        """Stop every worker; their jobs become ``failed`` (interrupted). Queued jobs stay
        queued and run after the next start."""
        with self._lock:
            self.stopping = True
            running = list(self._running.values())
        if self._poller is not None:
            self._poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._poller
        for job in running:
            self._send_cancel(job)
        deadline = time.monotonic() + SHUTDOWN_GRACE_S
        for job in running:
            await asyncio.to_thread(job.finished.wait, max(0.0, deadline - time.monotonic()))
            if not job.finished.is_set():
                job.process.kill()
        for thread in list(self._readers):
            await asyncio.to_thread(thread.join, SHUTDOWN_GRACE_S)
        self._wake_all()
        self.store.close()
        if self._lock_file is not None:
            self._lock_file.close()  # releases the lock

    # Queries

    def get(self, job_id: str) -> Record:
        record = self.store.get(job_id)
        if record is None:
            raise NotFound(f"no job {job_id!r}")
        return record

    def page(self, status: str | None, limit: int, offset: int) -> tuple[list[Record], int]:
        return self.store.page(status, limit, offset)

    def model_path(self, job_id: str) -> Path:
        record = self.get(job_id)
        path = self.models_dir / f"{job_id}.safetensors"
        if record["status"] != "succeeded":
            raise Conflict(
                f"job {job_id} is {record['status']}; its model exists once it has succeeded"
            )
        if not path.is_file():
            raise NotFound(f"the model file of job {job_id} is missing from {self.models_dir}")
        return path

    # Commands

    def submit(self, config: JobConfig) -> Record:
        problem = device_problem(config.device)
        if problem:
            raise DeviceUnavailable.at(("body", "device"), problem)
        seed = config.seed if config.seed is not None else secrets.randbelow(2**31)
        effective = config.model_copy(update={"seed": seed})
        job_id = uuid.uuid4().hex
        record: Record = {
            "id": job_id,
            "status": "queued",
            "config": effective.model_dump(mode="json"),
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
        with self._lock:
            if self.stopping:
                raise TooManyRequests("the service is shutting down; try again shortly")
            queued = self.store.count("queued")
            slot_free = self.store.count("running") < self.settings.max_concurrent_jobs
            if not slot_free and queued >= self.settings.max_queued_jobs:
                raise TooManyRequests(
                    f"{queued} jobs are already waiting (LOSS_SERVICE_MAX_QUEUED_JOBS="
                    f"{self.settings.max_queued_jobs}); try again when one has finished",
                    headers={"Retry-After": "30"},
                )
            self.store.insert(record, "status", {"status": "queued"})
            observe_job_event(job_id, "status", {"status": "queued"})
            self.dispatch()  # starts it now when there is room; the answer shows it queued
            return record

    async def cancel(self, job_id: str) -> Record:
        with self._lock:
            record = self.get(job_id)
            status = record["status"]
            if status == "queued":
                finished = self._finish(record, "cancelled", expected="queued")
                if finished is not None:
                    return finished
                record = self.get(job_id)  # started meanwhile by the leader
                status = record["status"]
            if status == "cancelled":
                return record
            if status in TERMINAL:
                raise Conflict(f"job {job_id} has already {status}; there is nothing to cancel")
            job = self._running.get(job_id)
            if job is not None:
                job.cancel_requested = True
                self._send_cancel(job)
        if job is None:  # another process runs it: ask it, and watch the record
            self.store.request_cancel(job_id)
            deadline = time.monotonic() + 2 * CANCEL_GRACE_S + POLL_S
            while self.get(job_id)["status"] not in TERMINAL and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            return self.get(job_id)
        # The record is final as soon as the worker reports it stopped (within one step);
        # the process itself may take a moment longer to exit.
        await asyncio.to_thread(job.settled.wait, CANCEL_GRACE_S)
        if not job.settled.is_set():
            log.warning("job %s ignored cancel for %.0fs; killing it", job_id, CANCEL_GRACE_S)
            job.process.kill()
            await asyncio.to_thread(job.finished.wait, CANCEL_GRACE_S)
        return self.get(job_id)

    # Scheduling

    def dispatch(self) -> None:
        """Start queued jobs, oldest first, while there is room."""
        with self._lock:
            if self.stopping or not self.leader:
                return
            free = self.settings.max_concurrent_jobs - len(self._running)
            if free <= 0:
                return
            for record in self.store.with_status("queued")[:free]:
                self._launch(record)

    def _launch(self, record: Record) -> None:
        job_id = record["id"]
        settings = self.settings
        started_at = now_iso()
        record.update(status="running", started_at=started_at, progress={"phase": "starting"})
        record["timings"]["queued_s"] = _seconds_between(record["created_at"], started_at)
        if not self._save_if(record, "queued", "status", {"status": "running"}):
            return  # cancelled meanwhile (by another process)
        mirrors = (
            settings.fashion_mnist_mirrors
            if record["config"]["dataset"] == "fashion-mnist"
            else settings.mnist_mirrors
        )
        spec = WorkerSpec(
            job_id=job_id,
            config=record["config"],
            seed=record["config"]["seed"],
            data_dir=str(settings.data_dir.resolve()),
            mirrors=mirrors or None,
            download_timeout_s=settings.download_timeout_s,
            model_path=str((self.models_dir / f"{job_id}.safetensors").resolve()),
            torch_threads=settings.job_torch_threads,
            nice=settings.job_nice,
            progress_interval_s=settings.job_progress_interval_s,
        )
        root = str(Path(__file__).resolve().parents[2])
        path = os.environ.get("PYTHONPATH")
        env = {
            **os.environ,
            "OMP_NUM_THREADS": str(settings.job_torch_threads),
            "PYTHONPATH": f"{root}{os.pathsep}{path}" if path else root,
        }
        try:
            process = subprocess.Popen(
                [sys.executable, "-m", "service.jobs.worker"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
                bufsize=1,
                env=env,
            )
            assert process.stdin is not None
            process.stdin.write(spec.model_dump_json() + "\n")
            process.stdin.flush()
        except OSError as exc:
            self._finish(record, "failed", error={"reason": "worker_error", "message": str(exc)})
            return
        job = RunningJob(job_id, process)
        self._running[job_id] = job
        reader = threading.Thread(
            target=self._read_worker, args=(job,), name=f"job-{job_id[:8]}", daemon=True
        )
        self._readers.append(reader)
        reader.start()

    def _send_cancel(self, job: RunningJob) -> None:
        if not job.started_up:
            # Still importing torch: nothing to save and nobody reading stdin yet; stop it now.
            with contextlib.suppress(OSError):
                job.process.kill()
            return
        with contextlib.suppress(OSError, ValueError):
            assert job.process.stdin is not None
            job.process.stdin.write("cancel\n")
            job.process.stdin.flush()

    # Worker messages (reader threads)

    def _read_worker(self, job: RunningJob) -> None:
        assert job.process.stdout is not None
        try:
            for line in job.process.stdout:
                try:
                    message = orjson.loads(line)
                except orjson.JSONDecodeError:
                    log.warning("job %s: unreadable worker line %r", job.job_id, line[:200])
                    continue
                self._on_message(job, message)
            code = job.process.wait()
            if not job.terminal_seen:
                self._on_exit(job, code)
        except Exception:  # pragma: no cover - keep the record consistent whatever happens
            log.exception("job %s: reader failed", job.job_id)
            with contextlib.suppress(Exception):
                job.process.kill()
                self._on_exit(job, -1)
        finally:
            with contextlib.suppress(OSError):
                if job.process.stdin is not None:
                    job.process.stdin.close()
            with self._lock:
                self._running.pop(job.job_id, None)
                with contextlib.suppress(ValueError):
                    self._readers.remove(threading.current_thread())
            job.settled.set()
            job.finished.set()
            self.dispatch()

    def _on_message(self, job: RunningJob, message: dict[str, Any]) -> None:
        kind = message.pop("type", None)
        with self._lock:
            record = self.store.get(job.job_id)
            if record is None or record["status"] in TERMINAL:
                return
            if kind == "started":
                job.started_up = True
                record["device"] = message.get("device")
                record["timings"]["worker_start_s"] = time.monotonic() - job.started
                self._save(record)
            elif kind == "phase":
                progress = record.get("progress") or {}
                progress["phase"] = message["phase"]
                record["progress"] = progress
                self._save(record, "progress", progress)
            elif kind == "download":
                progress = record.get("progress") or {}
                progress.update(phase="downloading", download=message)
                record["progress"] = progress
                self._save(record, "progress", progress)
            elif kind == "progress":
                progress = record.get("progress") or {}
                progress.update(message, phase="training")
                progress.pop("download", None)
                record["progress"] = progress
                self._save(record, "progress", progress)
            elif kind == "loss":
                record["train_loss_series"]["points"].append(message)
                if record.get("progress"):
                    record["progress"]["loss"] = message["loss"]
                self._save(record)
            elif kind == "epoch":
                record["metrics"].append(message)
                self._save(record, "epoch", message)
            elif kind in TERMINAL:
                job.terminal_seen = True
                job.settled.set()
                record["timings"].update(message.get("timings") or {})
                if kind == "succeeded":
                    model = message["model"]
                    record["model"] = {
                        "format": "safetensors",
                        "bytes": model["bytes"],
                        "tensors": model["tensors"],
                        "url": f"/v1/jobs/{job.job_id}/model",
                    }
                    if record.get("progress"):
                        record["progress"]["phase"] = "done"
                    self._finish(record, "succeeded")
                elif kind == "cancelled":
                    self._finish_stopped(job, record)
                else:
                    self._finish(
                        record,
                        "failed",
                        error={"reason": message["reason"], "message": message["message"]},
                    )

    def _on_exit(self, job: RunningJob, code: int) -> None:
        """The worker ended without a final message."""
        with self._lock:
            record = self.store.get(job.job_id)
            if record is None or record["status"] in TERMINAL:
                return
            if job.cancel_requested or self.stopping:
                self._finish_stopped(job, record)
            else:
                self._finish(
                    record,
                    "failed",
                    error={
                        "reason": "worker_crashed",
                        "message": f"the training process exited with code {code} "
                        "before finishing (out of memory?)",
                    },
                )

    def _finish_stopped(self, job: RunningJob, record: Record) -> None:
        if job.cancel_requested:
            self._finish(record, "cancelled")
        else:
            self._finish(
                record,
                "failed",
                error={
                    "reason": "interrupted",
                    "message": "the service was stopped while this job was running; "
                    "start a new job to train again",
                },
            )

    # Records and events

    def _finish(
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
        total = _seconds_between(record.get("started_at"), finished)
        if total is not None:
            record["timings"]["total_s"] = total
        change = {"status": status, "error": error}
        if expected is None:
            self._save(record, "status", change)
        elif not self._save_if(record, expected, "status", change):
            return None
        self._save(record, "done", record)
        return record

    def _save_if(self, record: Record, expected: str, event: str, data: Record) -> bool:
        if not self.store.update_if(record, expected, event, data):
            return False
        observe_job_event(record["id"], event, data)
        self._notify(record["id"])
        return True

    def _save(self, record: Record, event: str | None = None, data: Record | None = None) -> None:
        self.store.update(record, event, data)
        observe_job_event(record["id"], event, data)
        if event:
            self._notify(record["id"])

    # Subscribers (SSE)

    def subscribe(self, job_id: str) -> asyncio.Event:
        event = asyncio.Event()
        with self._lock:
            self._subscribers.setdefault(job_id, set()).add(event)
        return event

    def unsubscribe(self, job_id: str, event: asyncio.Event) -> None:
        with self._lock:
            waiting = self._subscribers.get(job_id)
            if waiting is not None:
                waiting.discard(event)
                if not waiting:
                    del self._subscribers[job_id]

    def _notify(self, job_id: str) -> None:
        with self._lock:
            events = list(self._subscribers.get(job_id, ()))
        self._set_all(events)

    def _wake_all(self) -> None:
        with self._lock:
            events = [e for group in self._subscribers.values() for e in group]
        self._set_all(events)

    def _set_all(self, events: list[asyncio.Event]) -> None:
        loop = self._loop
        if not events or loop is None or loop.is_closed():
            return
        for event in events:
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(event.set)

    def running_ids(self) -> Iterator[str]:
        with self._lock:
            yield from list(self._running)
