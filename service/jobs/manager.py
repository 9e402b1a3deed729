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
import secrets
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

from service.errors import Conflict, DeviceUnavailable, NotFound, TooManyRequests
from service.jobs.access import EVERYONE, Caller, check_quota
from service.jobs.config import JobConfig
from service.jobs.launcher import send_cancel, start_worker
from service.jobs.limits import check_job_limits
from service.jobs.records import TERMINAL, RecordWriter, RunningJob, now_iso, seconds_between
from service.jobs.retention import SWEEP_EVERY_S, delete_job, model_file, sweep
from service.jobs.store import DamagedRecord, JobStore, Record
from service.jobs.subscribers import Subscribers
from service.jobs.training import device_problem
from service.observability.metrics import observe_job_event
from service.settings import Settings

log = logging.getLogger(__name__)

__all__ = ["TERMINAL", "JobManager", "now_iso"]

CANCEL_GRACE_S = 10.0
SHUTDOWN_GRACE_S = 5.0
POLL_S = 0.5


class JobManager:
    def __init__(self, settings: Settings, *, store: JobStore | None = None) -> None:
        self.settings = settings
        self.store = store or JobStore(settings.db_path)
        self.models_dir = settings.models_dir
        self.records = RecordWriter(self.store, self._notify, settings.job_max_loss_points)
        self._lock = threading.RLock()
        self._running: dict[str, RunningJob] = {}
        self.subscribers = Subscribers()
        self._readers: list[threading.Thread] = []
        self._lock_file: Any = None
        self._poller: asyncio.Task[None] | None = None
        self._next_sweep = 0.0
        self.leader = False
        self.stopping = False

    # Lifecycle

    async def start(self) -> None:
        self.subscribers.loop = asyncio.get_running_loop()
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
                if time.monotonic() >= self._next_sweep:
                    self._next_sweep = time.monotonic() + SWEEP_EVERY_S
                    await asyncio.to_thread(sweep, self.store, self.settings)
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
            self.records.finish(
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

    def _head(self, job_id: str, caller: Caller) -> tuple[str, str | None]:
        """``(status, owner)`` of a job ``caller`` may see, or 404."""
        head = self.store.head(job_id)
        if head is None or not caller.sees(head[1]):
            raise NotFound(f"no job {job_id!r}")
        return head

    def get(self, job_id: str, caller: Caller = EVERYONE) -> Record:
        """The record without its loss points (see ``view``); 404 when ``caller`` may not
        see it, or when its stored JSON is damaged."""
        self._head(job_id, caller)
        try:
            record = self.store.get(job_id)
        except DamagedRecord:
            raise NotFound(
                f"the stored record of job {job_id!r} is damaged and cannot be shown "
                "(reported in the service log); DELETE removes it"
            ) from None
        if record is None:
            raise NotFound(f"no job {job_id!r}")
        return record

    def view(self, job_id: str, caller: Caller = EVERYONE) -> Record:
        """The whole job as clients see it (with its loss series)."""
        return self.store.with_points([self.get(job_id, caller)])[0]

    def page(
        self, status: str | None, limit: int, offset: int, caller: Caller = EVERYONE
    ) -> tuple[list[Record], int]:
        records, total = self.store.page(status, limit, offset, caller.scope)
        return self.store.with_points(records), total

    def model_path(self, job_id: str, caller: Caller = EVERYONE) -> Path:
        record = self.get(job_id, caller)
        path = model_file(self.models_dir, job_id)
        if record["status"] != "succeeded":
            raise Conflict(
                f"job {job_id} is {record['status']}; its model exists once it has succeeded"
            )
        if not path.is_file():
            raise NotFound(f"the model file of job {job_id} is missing")
        return path

    # Commands

    def submit(self, config: JobConfig, caller: Caller = EVERYONE) -> Record:
        problem = device_problem(config.device)
        if problem:
            raise DeviceUnavailable.at(("body", "device"), problem)
        check_job_limits(config, self.settings)
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
        settings = self.settings
        with self._lock:
            if self.stopping:
                raise TooManyRequests("the service is shutting down; try again shortly")
            check_quota(self.store, caller, settings)
            queued = self.store.count("queued")
            slot_free = self.store.count("running") < settings.max_concurrent_jobs
            if not slot_free and queued >= settings.max_queued_jobs:
                raise TooManyRequests(
                    f"{queued} jobs are already waiting (LOSS_SERVICE_MAX_QUEUED_JOBS="
                    f"{settings.max_queued_jobs}); try again when one has finished",
                    headers={"Retry-After": "30"},
                )
            self.store.insert(record, "status", {"status": "queued"}, caller.owner)
            observe_job_event(job_id, "status", {"status": "queued"})
            self.dispatch()  # starts it now when there is room; the answer shows it queued
            return record

    async def cancel_or_delete(self, job_id: str, caller: Caller = EVERYONE) -> Record | None:
        """A queued or running job is cancelled (and kept): its record. A finished one is
        deleted with its model: None."""
        status, _ = self._head(job_id, caller)
        if status in TERMINAL or status not in ("queued", "running"):
            # Finished, or a damaged record whatever it says: remove it.
            if delete_job(self.store, self.models_dir, job_id, status):
                self._notify(job_id)
                return None
            # Moved on meanwhile (another process): look again.
            return await self.cancel_or_delete(job_id, caller)
        return await self.cancel(job_id, caller)

    async def cancel(self, job_id: str, caller: Caller = EVERYONE) -> Record:
        with self._lock:
            record = self.get(job_id, caller)
            status = record["status"]
            if status == "queued":
                finished = self.records.finish(record, "cancelled", expected="queued")
                if finished is not None:
                    return self.store.with_points([finished])[0]
                record = self.get(job_id)  # started meanwhile by the leader
                status = record["status"]
            if status == "cancelled":
                return self.view(job_id)
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
            return self.view(job_id)
        # The record is final as soon as the worker reports it stopped (within one step);
        # the process itself may take a moment longer to exit.
        await asyncio.to_thread(job.settled.wait, CANCEL_GRACE_S)
        if not job.settled.is_set():
            log.warning("job %s ignored cancel for %.0fs; killing it", job_id, CANCEL_GRACE_S)
            job.process.kill()
            await asyncio.to_thread(job.finished.wait, CANCEL_GRACE_S)
        return self.view(job_id)

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
        record["timings"]["queued_s"] = seconds_between(record["created_at"], started_at)
        if not self.records.save_if(record, "queued", "status", {"status": "running"}):
            return  # cancelled meanwhile (by another process)
        try:
            process = start_worker(record, settings)
        except OSError as exc:
            error = {
                "reason": "worker_error",
                "message": f"cannot start the training process: {exc.strerror}",
            }
            self.records.finish(record, "failed", error=error)
            return
        job = RunningJob(job_id, process, log_every=int(record["config"]["log_every"]))
        self._running[job_id] = job
        reader = threading.Thread(
            target=self._read_worker, args=(job,), name=f"job-{job_id[:8]}", daemon=True
        )
        self._readers.append(reader)
        reader.start()

    def _send_cancel(self, job: RunningJob) -> None:
        send_cancel(job)

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
                with self._lock:
                    self.records.on_message(job, message)
            code = job.process.wait()
            if not job.terminal_seen:
                with self._lock:
                    self.records.on_exit(job, code, self.stopping)
        except Exception:  # pragma: no cover - keep the record consistent whatever happens
            log.exception("job %s: reader failed", job.job_id)
            with contextlib.suppress(Exception):
                job.process.kill()
                with self._lock:
                    self.records.on_exit(job, -1, self.stopping)
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

    # Subscribers (SSE)

    def subscribe(self, job_id: str) -> asyncio.Event:
        return self.subscribers.subscribe(job_id)

    def unsubscribe(self, job_id: str, event: asyncio.Event) -> None:
        self.subscribers.unsubscribe(job_id, event)

    def _notify(self, job_id: str) -> None:
        self.subscribers.notify(job_id)

    def _wake_all(self) -> None:
        self.subscribers.wake_all()

    def running_ids(self) -> Iterator[str]:
        with self._lock:
            yield from list(self._running)
