"""The local executor: each job is a training process (``python -m service.jobs.worker``) on
this host, started by the leading server process, which turns its stdout into record updates.

Processes are warm and reused: a process has imported torch before its first job, and after a
job it says ``ready`` and waits for the next, so a job on a warm system starts training in well
under a second instead of the seconds ``import torch`` takes. Idle, up to
``LOSS_SERVICE_JOB_WARM_WORKERS`` of them are kept (more while jobs are queued); a spare is
started beside a running job only while there is a free slot for a second one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import select
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import orjson

from service.jobs.executors.base import LaunchError
from service.jobs.records import RecordWriter, RunningJob
from service.jobs.retention import model_file
from service.jobs.stores import Record
from service.jobs.training import device_problem
from service.jobs.worker import WorkerSpec
from service.settings import Settings

log = logging.getLogger(__name__)

CANCEL_GRACE_S = 10.0  # a worker that ignores cancel this long is killed


def worker_spec(record: Record, settings: Settings, model_path: Path) -> WorkerSpec:
    config = record["config"]
    mirrors = (
        settings.fashion_mnist_mirrors
        if config["dataset"] == "fashion-mnist"
        else settings.mnist_mirrors
    )
    return WorkerSpec(
        job_id=record["id"],
        config=config,
        seed=config["seed"],
        data_dir=str(settings.data_dir.resolve()),
        mirrors=mirrors or None,
        download_timeout_s=settings.download_timeout_s,
        model_path=str(model_path),
        torch_threads=settings.job_torch_threads,
        nice=settings.job_nice,
        progress_interval_s=settings.job_progress_interval_s,
    )


def spawn_worker(settings: Settings) -> subprocess.Popen[str]:
    """A training process that imports torch, then waits for its job on stdin."""
    root = str(Path(__file__).resolve().parents[3])
    path = os.environ.get("PYTHONPATH")
    env = {
        **os.environ,
        "OMP_NUM_THREADS": str(settings.job_torch_threads),
        "PYTHONPATH": f"{root}{os.pathsep}{path}" if path else root,
    }
    return subprocess.Popen(
        [sys.executable, "-m", "service.jobs.worker"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        bufsize=1,
        env=env,
    )


class LocalExecutor:
    name = "local"

    def __init__(self, settings: Settings, records: RecordWriter, on_done: Callable[[], None]):
        self.settings = settings
        self.records = records
        self.on_done = on_done  # a slot is free: the manager dispatches the next job
        self._lock = threading.RLock()
        self._running: dict[str, RunningJob] = {}
        self._readers: list[threading.Thread] = []
        self._spares: list[subprocess.Popen[str]] = []
        self._warm: set[int] = set()  # pids of spares whose ``ready`` was already read
        self._active = False
        self.stopping = False

    def start(self) -> None:
        with self._lock:
            self._active = True
            self._refill()

    def device_problem(self, device: str) -> str | None:
        return device_problem(device)

    def _refill(self) -> None:
        """Start spares up to ``job_warm_workers`` while leading (never more processes than
        ``max_concurrent_jobs`` can use)."""
        self._spares = [p for p in self._spares if p.poll() is None]
        while (
            self._active
            and not self.stopping
            and len(self._spares) < self.settings.job_warm_workers
            and len(self._running) + len(self._spares) < self.settings.max_concurrent_jobs
        ):
            try:
                self._spares.append(spawn_worker(self.settings))
            except OSError as exc:
                log.warning("cannot start a spare training process: %s", exc)
                return

    def spares_ready(self) -> int:
        """Spares that have imported torch (their ``ready`` line is waiting to be read)."""
        with self._lock:
            return sum(self._is_ready(p) for p in self._spares)

    def _is_ready(self, process: subprocess.Popen[str]) -> bool:
        if process.poll() is not None:
            return False
        if process.pid in self._warm:
            return True
        return process.stdout is not None and bool(select.select([process.stdout], [], [], 0)[0])

    def _process(self) -> subprocess.Popen[str]:
        """A ready spare, else the spare started first, else a new process."""
        self._spares = [p for p in self._spares if p.poll() is None]
        ready = [p for p in self._spares if self._is_ready(p)]
        if ready or self._spares:
            process = (ready or self._spares)[0]
            self._spares.remove(process)
            self._warm.discard(process.pid)
            return process
        return spawn_worker(self.settings)

    def _keep(self, process: subprocess.Popen[str]) -> bool:
        """Whether a process that finished a job waits for the next one."""
        if not self._active or self.stopping or process.poll() is not None:
            return False
        if len(self._spares) < self.settings.job_warm_workers:
            return True
        return self.records.store.count("queued") > 0  # the dispatcher takes it at once

    def launch(self, record: Record) -> None:
        job_id = record["id"]
        spec = worker_spec(record, self.settings, model_file(self.settings.models_dir, job_id))
        started = time.monotonic()
        with self._lock:
            try:
                process = self._process()
                assert process.stdin is not None
                process.stdin.write(spec.model_dump_json() + "\n")
                process.stdin.flush()
            except OSError as exc:
                raise LaunchError(f"cannot start the training process: {exc.strerror}") from exc
            job = RunningJob(job_id, process, log_every=int(record["config"]["log_every"]))
            job.started = started
            self._running[job_id] = job
            reader = threading.Thread(
                target=self._read, args=(job,), name=f"job-{job_id[:8]}", daemon=True
            )
            self._readers.append(reader)
            reader.start()
            self._refill()

    def cancel(self, job_id: str) -> bool:
        with self._lock:
            job = self._running.get(job_id)
            if job is None:
                return False
            job.cancel_requested = True
        self._send_cancel(job)
        threading.Thread(target=self._kill_if_ignored, args=(job,), daemon=True).start()
        return True

    def alive(self, record: Record) -> bool:
        with self._lock:
            return record["id"] in self._running

    def running(self) -> list[str]:
        with self._lock:
            return list(self._running)

    async def stop(self, grace_s: float) -> None:
        with self._lock:
            self.stopping = True
            running = list(self._running.values())
            spares, self._spares = self._spares, []
        for spare in spares:
            spare.kill()
        for job in running:
            self._send_cancel(job)
        deadline = time.monotonic() + grace_s
        for job in running:
            await asyncio.to_thread(job.finished.wait, max(0.0, deadline - time.monotonic()))
            if not job.finished.is_set():
                job.process.kill()
        for thread in list(self._readers):
            await asyncio.to_thread(thread.join, grace_s)
        for spare in spares:
            spare.wait()

    def _send_cancel(self, job: RunningJob) -> None:
        if not job.started_up:
            # Not yet training (still importing torch, perhaps): nothing to save; stop it now.
            with contextlib.suppress(OSError):
                job.process.kill()
            return
        with contextlib.suppress(OSError, ValueError):
            job.process.stdin.write(f"cancel {job.job_id}\n")
            job.process.stdin.flush()

    def _kill_if_ignored(self, job: RunningJob) -> None:
        # The record is final as soon as the worker reports it stopped (within one step).
        if not job.settled.wait(CANCEL_GRACE_S):
            log.warning("job %s ignored cancel for %.0fs; killing it", job.job_id, CANCEL_GRACE_S)
            job.process.kill()

    def _read(self, job: RunningJob) -> None:
        """Turn the worker's stdout into record updates (its own thread)."""
        process = job.process
        reusable = False
        try:
            for line in process.stdout:
                try:
                    message = orjson.loads(line)
                except orjson.JSONDecodeError:
                    log.warning("job %s: unreadable worker line %r", job.job_id, line[:200])
                    continue
                if message.get("type") == "ready":
                    if job.terminal_seen:  # the job is over and the process waits for the next
                        reusable = True
                        break
                    continue  # a spare's first line, before it read this job
                with self._lock:
                    self.records.on_message(job, message)
            if not reusable:
                code = process.wait()
                if not job.terminal_seen:
                    with self._lock:
                        self.records.on_exit(job, code, self.stopping)
        except Exception:  # pragma: no cover - keep the record consistent whatever happens
            log.exception("job %s: reader failed", job.job_id)
            with contextlib.suppress(Exception):
                process.kill()
                with self._lock:
                    self.records.on_exit(job, -1, self.stopping)
        finally:
            with self._lock:
                self._running.pop(job.job_id, None)
                with contextlib.suppress(ValueError):
                    self._readers.remove(threading.current_thread())
                kept = reusable and self._keep(process)
                if kept:
                    self._spares.insert(0, process)
                    self._warm.add(process.pid)
            if not kept:
                with contextlib.suppress(OSError):
                    if process.stdin is not None:
                        process.stdin.close()  # an idle process exits when its input ends
                if reusable:
                    process.wait()
            job.settled.set()
            job.finished.set()
            if not self.stopping:
                self.on_done()
