"""The thin layer between the job routes, the job store and the executor.

It validates and queues jobs, answers queries, and (in the leading process only) recovers,
dispatches and cancels. What it coordinates lives in the engines made for it:

- the store (``service.jobs.stores``) holds records, events and models, and says who leads:
  an ``fcntl`` lock beside a SQLite file on one host, an advisory lock in PostgreSQL across
  hosts. Any server process may die; another takes the lead within ``POLL_S``.
- the executor (``service.jobs.executors``) runs training: a process per job on the leader's
  host, or an actor on a Ray cluster. Either way the run writes its own record updates.

Event streams are woken by the store's change feed (PostgreSQL's LISTEN/NOTIFY) or, where
there is none (SQLite across processes), by polling every ``POLL_S``.

Recovery: when a process becomes leader, every record still ``running`` whose run the
executor cannot find is marked ``failed`` with reason ``interrupted``; ``queued`` jobs are
started in order.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from service.errors import Conflict, DeviceUnavailable, NotFound, TooManyRequests
from service.jobs.access import EVERYONE, Caller, check_quota
from service.jobs.config import JobConfig
from service.jobs.executors import Executor, LaunchError, make_executor
from service.jobs.limits import check_job_limits
from service.jobs.records import TERMINAL, RecordWriter, new_record, now_iso, seconds_between
from service.jobs.retention import SWEEP_EVERY_S, delete_job, sweep
from service.jobs.stores import DamagedRecord, JobStore, Record, open_store
from service.jobs.stores.base import ChangeKind
from service.jobs.subscribers import Subscribers
from service.observability.metrics import observe_job_event
from service.settings import Settings

log = logging.getLogger(__name__)

__all__ = ["TERMINAL", "JobManager", "now_iso"]

CANCEL_WAIT_S = 25.0  # how long DELETE waits for a cancelled job's record to become final
SHUTDOWN_GRACE_S = 5.0
POLL_S = 0.5
ORPHAN_CHECK_S = 5.0  # how often the leader looks for running records nobody trains
WAKE_EVERY_S = 5.0  # with a change feed, event streams still look at the database this often


class JobManager:
    def __init__(
        self,
        settings: Settings,
        *,
        store: JobStore | None = None,
        executor: Executor | None = None,
    ) -> None:
        self.settings = settings
        self.store = store or open_store(settings)
        self.models_dir = settings.models_dir
        self.records = RecordWriter(self.store, self._notify, settings.job_max_loss_points)
        self.executor = executor or make_executor(settings, self.store, self.records, self.dispatch)
        self._lock = threading.RLock()
        self.subscribers = Subscribers()
        self._poller: asyncio.Task[None] | None = None
        self._next_sweep = 0.0
        self._next_orphan_check = 0.0
        self._next_wake = 0.0
        self._pushed = False  # the store's change feed wakes event streams
        self.leader = False
        self.stopping = False

    # Lifecycle

    async def start(self) -> None:
        self.subscribers.loop = asyncio.get_running_loop()
        self._pushed = await asyncio.to_thread(self.store.listen, self._on_change)
        await self._try_lead()
        self._poller = asyncio.create_task(self._poll(), name="job-manager-poll")

    async def _try_lead(self) -> bool:
        """Take the lead if nobody holds it; on success recover and dispatch. The database
        and the cluster are asked from a thread: the event loop never waits on them."""
        if self.leader or self.stopping:
            return self.leader
        if not await asyncio.to_thread(self.store.try_lead):
            return False
        self.leader = True
        self.executor.start()
        await asyncio.to_thread(self.recover)
        self.dispatch()
        return True

    def _on_change(self, kind: ChangeKind, job_id: str) -> None:
        """From the store's listener thread: another process changed a job."""
        if kind == "event":
            self.subscribers.notify(job_id)
        elif kind == "cancel" and self.leader:
            self._take_cancels()

    async def _poll(self) -> None:
        while not self.stopping:
            await asyncio.sleep(POLL_S)
            try:
                if self.leader and not self.store.still_leading():
                    log.warning("this process lost the lead of the job queue (database gone?)")
                    self.leader = False
                now = time.monotonic()
                if (not self._pushed and not self.leader) or now >= self._next_wake:
                    # Event streams re-read the database: a follower's every POLL_S without a
                    # change feed (the leader hears its own runs), and every process's now and
                    # then (runs on a cluster write past the leader; a reconnecting change feed
                    # misses what happens meanwhile).
                    self._next_wake = now + WAKE_EVERY_S
                    self._wake_all()
                if not self.leader:
                    await self._try_lead()
                    continue
                self.dispatch()  # jobs queued by other processes
                await asyncio.to_thread(self._take_cancels)
                if now >= self._next_orphan_check:
                    self._next_orphan_check = now + ORPHAN_CHECK_S
                    await asyncio.to_thread(self.recover)
                if now >= self._next_sweep:
                    self._next_sweep = now + SWEEP_EVERY_S
                    await asyncio.to_thread(sweep, self.store, self.settings)
            except Exception:  # pragma: no cover - never let the poller die
                log.exception("job manager poll failed")

    def _take_cancels(self) -> None:
        for job_id in self.store.take_cancels():
            self.executor.cancel(job_id)

    def recover(self) -> None:
        """Mark ``running`` jobs that nobody trains any more (their server or actor died) as
        failed (interrupted)."""
        with self._lock:  # not between a launch's record update and the executor taking it
            running = set(self.executor.running())
            records = [r for r in self.store.with_status("running") if r["id"] not in running]
        for record in records:
            if self.executor.alive(record):
                continue
            self.records.interrupt(record)

    async def stop(self) -> None:
        """Stop the executor: local runs become ``failed`` (interrupted), runs on a cluster
        keep training. Queued jobs stay queued and run after the next start."""
        with self._lock:
            self.stopping = True
        if self._poller is not None:
            self._poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._poller
        await self.executor.stop(SHUTDOWN_GRACE_S)
        self._wake_all()
        self.store.close()

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
        if record["status"] != "succeeded":
            raise Conflict(
                f"job {job_id} is {record['status']}; its model exists once it has succeeded"
            )
        path = self.store.model_path(job_id, self.models_dir)
        if path is None:
            raise NotFound(f"the model file of job {job_id} is missing")
        return path

    # Commands

    def submit(self, config: JobConfig, caller: Caller = EVERYONE) -> Record:
        problem = self.executor.device_problem(config.device)
        if problem:
            raise DeviceUnavailable.at(("body", "device"), problem)
        check_job_limits(config, self.settings)
        record = new_record(config)
        job_id = record["id"]
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
        if not await asyncio.to_thread(self.executor.cancel, job_id):
            self.store.request_cancel(job_id)  # the leader runs it: ask through the store
        # The record is final as soon as the run reports it stopped (within one step).
        deadline = time.monotonic() + CANCEL_WAIT_S
        while self.get(job_id)["status"] not in TERMINAL and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        return self.view(job_id)

    # Scheduling

    def dispatch(self) -> None:
        """Start queued jobs, oldest first, while there is room."""
        with self._lock:
            if self.stopping or not self.leader:
                return
            free = self.settings.max_concurrent_jobs - self.store.count("running")
            if free <= 0:
                return
            for record in self.store.with_status("queued")[:free]:
                self._launch(record)

    def _launch(self, record: Record) -> None:
        started_at = now_iso()
        record.update(status="running", started_at=started_at, progress={"phase": "starting"})
        record["timings"]["queued_s"] = seconds_between(record["created_at"], started_at)
        if not self.records.save_if(record, "queued", "status", {"status": "running"}):
            return  # cancelled meanwhile (by another process)
        try:
            self.executor.launch(record)
        except LaunchError as exc:
            error = {"reason": "worker_error", "message": str(exc)}
            self.records.finish(record, "failed", error=error, expected="running")

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
        yield from self.executor.running()
