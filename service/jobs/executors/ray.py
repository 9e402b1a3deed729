"""The Ray executor (``LOSS_SERVICE_JOBS_EXECUTOR=ray``): each job trains in an actor on the
Ray cluster at ``LOSS_SERVICE_RAY_ADDRESS``.

Actors (``executors.ray_actor``) are detached and named ``trainer-<shape>-<hex>`` in
``LOSS_SERVICE_RAY_NAMESPACE``, so that any replica finds them and they outlive the replica that
made them: a job keeps training, and its actor completes its record, when that replica dies. The
leader keeps ``LOSS_SERVICE_RAY_WARM_ACTORS`` idle ones (torch imported) of the shape most jobs
take, so a job starts at once; with none idle it starts a new one (cold). An actor serves job
after job. Shapes: ``cpu`` (``job_torch_threads`` CPUs), ``gpu`` (one GPU as well: jobs asking
for ``cuda``, and ``auto`` ones when the cluster has GPUs).

Everything that talks to Ray runs in threads of this executor, never on the event loop, except
``cancel`` and ``alive``, which answer after at most a few round trips to the cluster.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import ray
from ray.exceptions import ActorUnavailableError, RayError, RayTaskError

from service.jobs.executors.local import worker_spec
from service.jobs.executors.ray_pool import ActorPool
from service.jobs.records import RecordWriter
from service.jobs.retention import model_file
from service.jobs.stores import JobStore, Record
from service.settings import Settings

log = logging.getLogger(__name__)

POLL_S = 1.0  # how often waiting threads look up from Ray (stop, cancel)
KEEP_EVERY_S = 5.0  # how often the leader tops up the warm actors
ACTOR_START_TIMEOUT_S = 300.0  # a job whose actor no node can start fails after this
WAIT_DONE_S = 30.0  # one ``wait_done`` call on an adopted job's actor
RESOURCES_TTL_S = 30.0  # how old the cluster's GPU count may be when a job asks for one
UNREACHABLE_GRACE_S = 600.0  # ``alive`` says yes this long while the cluster cannot answer
SECRET_SETTINGS = {"api_keys", "admin_keys"}  # never sent to the cluster


@dataclass
class RayRun:
    job_id: str
    actor: Any = None  # the actor's handle once it has claimed the job
    name: str = ""
    cancel_requested: bool = False


class RayExecutor:
    name = "ray"

    def __init__(
        self,
        settings: Settings,
        store: JobStore,
        notify: Callable[[str], None] | None = None,
        on_done: Callable[[], None] | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        notify = notify or (lambda _id: None)
        self.records = RecordWriter(store, notify, settings.job_max_loss_points)
        self.on_done = on_done or (lambda: None)  # a run ended: the manager dispatches
        self.pool = ActorPool(settings)
        self._lock = threading.Lock()
        self._runs: dict[str, RayRun] = {}
        self._threads: set[threading.Thread] = set()
        self._stopping = threading.Event()
        self._wake = threading.Event()
        self._keeper: threading.Thread | None = None
        self._unreachable_since: float | None = None
        self._resources_at = -RESOURCES_TTL_S

    # Executor

    def start(self) -> None:
        self._stopping.clear()
        if self._keeper is None or not self._keeper.is_alive():
            self._keeper = self._thread(self._keep, "ray-warm-actors")

    def device_problem(self, device: str) -> str | None:
        if device in ("cpu", "auto"):
            return None
        if device == "mps":
            return "the Ray executor has no MPS devices; use cpu, cuda or auto"
        if device not in ("cuda", "cuda:0"):
            return f"on the Ray cluster each job gets one GPU of its own: use cuda, not {device}"
        self._refresh_resources_soon()
        gpus = self.pool.gpus
        if gpus is None:
            return "the Ray cluster has not reported its GPUs yet; try again in a moment"
        if not gpus:
            return (
                f"device {device!r} requested but the Ray cluster at "
                f"{self.settings.ray_address} has no GPU; use cpu or auto"
            )
        return None

    def _refresh_resources_soon(self) -> None:
        """Ask the cluster for its resources in the background when the last answer is
        old (on a replica that does not lead, nobody else does)."""
        with self._lock:
            if time.monotonic() - self._resources_at < RESOURCES_TTL_S:
                return
            self._resources_at = time.monotonic()

        def refresh() -> None:
            self.pool.connect()
            self.pool.refresh_resources()

        self._thread(refresh, "ray-resources")

    def launch(self, record: Record) -> None:
        run = RayRun(record["id"])
        with self._lock:
            self._runs[run.job_id] = run
        self._thread(self._drive, f"ray-job-{run.job_id[:8]}", run, record, time.time())

    def cancel(self, job_id: str) -> bool:
        with self._lock:
            run = self._runs.get(job_id)
        if run is not None:
            run.cancel_requested = True  # seen by the thread before it runs the job
            if run.actor is not None:
                self.pool.ask(run.actor.cancel.remote(job_id), False)
            return True
        try:
            self.pool.connect()
            found = self.pool.find(job_id)
            return found is not None and bool(self.pool.ask(found[1].cancel.remote(job_id), False))
        except Exception as exc:
            log.warning("cannot ask the Ray cluster to cancel job %s: %s", job_id, exc)
            return False

    def alive(self, record: Record) -> bool:
        job_id = record["id"]
        with self._lock:
            if job_id in self._runs:
                return True
        try:
            self.pool.connect()
            found = self.pool.find(job_id)
        except Exception as exc:
            # Unknown is not dead: a cluster out of reach for a while fails no job that may
            # still be training, but one gone for good must not leave records running.
            now = time.monotonic()
            self._unreachable_since = self._unreachable_since or now
            log.warning("cannot ask the Ray cluster about job %s: %s", job_id, exc)
            return now - self._unreachable_since < UNREACHABLE_GRACE_S
        self._unreachable_since = None
        if found is None:
            return False
        with self._lock:
            if job_id in self._runs:
                return True
            run = self._runs[job_id] = RayRun(job_id, actor=found[1], name=found[0])
        self._thread(self._adopt, f"ray-job-{job_id[:8]}", run)
        return True

    def running(self) -> list[str]:
        with self._lock:
            return list(self._runs)

    async def stop(self, grace_s: float) -> None:
        """Leave the actors training (they finish their records); end this process's threads."""
        self._stopping.set()
        self._wake.set()
        deadline = time.monotonic() + grace_s
        with self._lock:
            threads = list(self._threads)
        for thread in threads:
            await asyncio.to_thread(thread.join, max(0.0, deadline - time.monotonic()))

    # Threads

    def _thread(self, target: Callable[..., None], name: str, *args: Any) -> threading.Thread:
        def body() -> None:
            try:
                target(*args)
            except Exception:  # pragma: no cover - a thread must never die silently
                log.exception("%s failed", name)
            finally:
                with self._lock:
                    self._threads.discard(threading.current_thread())

        thread = threading.Thread(target=body, name=name, daemon=True)
        with self._lock:
            self._threads.add(thread)
        thread.start()
        return thread

    def _keep(self) -> None:
        """Keep the warm actors, while this process leads and runs."""
        failures = 0
        while not self._stopping.is_set():
            try:
                self.pool.connect()
                self.pool.refresh_resources()
                self._resources_at = time.monotonic()
                self.pool.top_up()
                failures = 0
            except Exception as exc:
                failures += 1
                if failures == 1:
                    log.warning("Ray cluster at %s: %s", self.settings.ray_address, exc)
            self._wake.wait(KEEP_EVERY_S * min(failures + 1, 12))
            self._wake.clear()

    def _drive(self, run: RayRun, record: Record, launched_at: float) -> None:
        """Take an actor for the job, run it there, and follow it to its end."""
        try:
            self.pool.connect()
            shape = self.pool.shape_for(record["config"]["device"])
            given_up = lambda: run.cancel_requested or self._stopping.is_set()  # noqa: E731
            taken = self.pool.take(run.job_id, shape, given_up, ACTOR_START_TIMEOUT_S)
            if taken is None:
                self._end_before_run(run, shape)
                return
            run.name, run.actor = taken
            if run.cancel_requested or self._stopping.is_set():
                run.actor.release.remote(run.job_id)
                self._end_before_run(run, shape)
                return
            model_path = model_file(self.settings.models_dir, run.job_id)  # the actor's own
            spec = worker_spec(record, self.settings, model_path)
            settings = self.settings.model_dump(mode="json", exclude=SECRET_SETTINGS)
            ref = run.actor.run.remote(spec.model_dump_json(), settings, launched_at)
            self._wake.set()  # one warm actor fewer: top up now
            self._follow(run, ref)
        except Exception as exc:  # the record must not stay running
            log.warning("job %s: Ray failed: %s", run.job_id, exc)
            if not self._stopping.is_set():
                self._fail(run, "worker_error", f"the Ray cluster could not run the job: {exc}")
        finally:
            self._ended(run)

    def _adopt(self, run: RayRun) -> None:
        """Follow a job that another process launched, until its actor lets it go."""
        try:
            self._follow(run, self._wait_done(run))
        finally:
            self._ended(run)

    def _ended(self, run: RayRun) -> None:
        with self._lock:
            self._runs.pop(run.job_id, None)
        if not self._stopping.is_set():
            self.on_done()

    def _wait_done(self, run: RayRun) -> Any:
        return run.actor.wait_done.remote(run.job_id, WAIT_DONE_S)

    def _follow(self, run: RayRun, ref: Any) -> None:
        """Wait until the job leaves its actor (``ref``: its ``run``, or a ``wait_done``);
        when the actor dies first, fail the record (the actor no longer can)."""
        while not self._stopping.is_set():
            if not ray.wait([ref], timeout=POLL_S)[0]:
                continue
            try:
                answer = ray.get(ref)
            except ActorUnavailableError as exc:  # unreachable for now: ask again
                log.warning("job %s: actor %s unavailable: %s", run.job_id, run.name, exc)
                time.sleep(POLL_S)
                answer = False
            except RayTaskError as exc:
                log.error("job %s: the run raised on %s: %s", run.job_id, run.name, exc)
                cause = exc.cause
                self._fail(run, "worker_error", f"the training actor failed: {cause!s}")
                return
            except RayError as exc:
                log.warning("job %s: actor %s died: %s", run.job_id, run.name, exc)
                self._fail(
                    run,
                    "worker_crashed",
                    f"the Ray actor training this job ({run.name}) died before it finished: "
                    "its process or its node was lost (out of memory?)",
                )
                return
            if answer is not False:  # the run's final status, or wait_done: the job has left
                return
            ref = self._wait_done(run)

    def _end_before_run(self, run: RayRun, shape: str) -> None:
        if self._stopping.is_set():
            return  # the next leader finds the record running and no actor: interrupted
        if run.cancel_requested:
            self._finish(run.job_id, "cancelled", None)
            return
        self._fail(
            run,
            "worker_error",
            f"no node of the Ray cluster started a {shape} training actor within "
            f"{ACTOR_START_TIMEOUT_S:.0f} s (not enough free CPUs or GPUs?)",
        )

    def _fail(self, run: RayRun, reason: str, message: str) -> None:
        self._finish(run.job_id, "failed", {"reason": reason, "message": message})

    def _finish(self, job_id: str, status: str, error: dict[str, str] | None) -> None:
        record = self.store.get(job_id)
        if record is not None and record["status"] == "running":
            self.records.finish(record, status, error=error, expected="running")
