"""The Ray actor that trains jobs (``TrainerActor``; ``executors.ray`` makes it remote).

An actor is a warm training process on a node of the cluster: it imports torch and builds a
first optimizer when it starts, then trains one job at a time, each as ``worker.run`` does in a
training process. It writes the job's record itself, through a ``RecordWriter`` on its own
connection to the job store, so that the record completes even when the API replica that
launched the job is gone (with PostgreSQL the store's notifications wake every replica's event
streams). It is threaded (``max_concurrency``): ``cancel``, ``current`` and ``wait_done`` answer
while ``run`` trains.

A job takes an actor in two steps: ``claim`` (atomic: one job per actor, whoever asks) and then
``run``. A claim that no run follows within ``CLAIM_TTL_S`` (its leader died in between) lapses.
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from service.jobs.records import RecordWriter, RunningJob
from service.jobs.stores import open_store
from service.jobs.worker import WorkerSpec, run, warm_up
from service.settings import Settings

log = logging.getLogger(__name__)

CLAIM_TTL_S = 60.0
DATA_DIR_VARIABLE = "LOSS_SERVICE_DATA_DIR"


class RecordChannel:
    """What ``worker.run`` reports, applied to the job's record as the server's reader thread
    applies a training process's lines."""

    def __init__(self, writer: RecordWriter, job: RunningJob) -> None:
        self._writer = writer
        self._job = job

    def send(self, kind: str, **payload: Any) -> None:
        self._writer.on_message(self._job, {"type": kind, **payload})


class TrainerActor:
    def __init__(self) -> None:
        # Paid once per actor, not per job: a job on a warm actor starts at once.
        warm_up()
        self._lock = threading.Condition()
        self._job_id: str | None = None
        self._claimed_at = 0.0
        self._running: RunningJob | None = None
        self._started_run = False
        self._retired = False
        self._stop = threading.Event()

    # Taking the actor

    def claim(self, job_id: str) -> bool:
        """Take this actor for ``job_id`` if it is idle; whether it is now ``job_id``'s."""
        with self._lock:
            self._lapse()
            if self._retired or (self._job_id is not None and self._job_id != job_id):
                return False
            if self._job_id is None:
                self._job_id, self._claimed_at = job_id, time.monotonic()
                self._stop.clear()
            return True

    def release(self, job_id: str) -> None:
        """Give back a claim that no run followed (the job was cancelled meanwhile)."""
        with self._lock:
            if self._job_id == job_id and not self._started_run:
                self._free()

    def retire(self) -> bool:
        """Refuse every later claim if idle (the caller then kills the actor); whether it was."""
        with self._lock:
            self._lapse()
            if self._job_id is None:
                self._retired = True
            return self._retired

    # Training

    def run(self, spec_json: str, settings: dict[str, Any], launched_at: float) -> str:
        """Train the claimed job of ``spec_json`` to its final status, which it returns.
        ``launched_at`` (wall clock) is when the leader launched it: ``worker_start_s``
        counts from there."""
        spec = WorkerSpec.model_validate_json(spec_json)
        job = RunningJob(spec.job_id, log_every=int(spec.config.get("log_every", 1)))
        job.started = time.monotonic() - max(0.0, time.time() - launched_at)
        with self._lock:
            self._lapse()
            if self._job_id != spec.job_id:
                raise RuntimeError(f"actor not claimed for job {spec.job_id} (it runs another)")
            self._started_run = True
            job.cancel_requested = self._stop.is_set()
            self._running = job
        folder = Path(tempfile.mkdtemp(prefix="loss-service-job-"))
        store = None
        try:
            # The model goes to a file on this node; the store keeps it (RecordWriter calls
            # store.save_model) before the record says succeeded.
            model_path = folder / f"{spec.job_id}.safetensors"
            data_dir = os.environ.get(DATA_DIR_VARIABLE) or spec.data_dir
            spec = spec.model_copy(update={"model_path": str(model_path), "data_dir": data_dir})
            config = Settings(**settings)
            store = open_store(config)
            if store.get(spec.job_id) is None:
                raise LookupError(
                    f"job {spec.job_id} is not in the job store this actor opened "
                    f"({store.where}): the API replicas and the Ray nodes must share one "
                    "database (LOSS_SERVICE_DATABASE_URL)"
                )
            writer = RecordWriter(store, lambda _id: None, config.job_max_loss_points)
            try:
                run(spec, RecordChannel(writer, job), self._stop.is_set)
            finally:
                if not job.terminal_seen:  # run raised: never leave the record running
                    writer.on_exit(job, -1, stopping=False)
            record = store.get(spec.job_id)
            return str(record["status"]) if record else "deleted"
        finally:
            if store is not None:
                store.close()
            shutil.rmtree(folder, ignore_errors=True)
            with self._lock:
                self._free()

    def cancel(self, job_id: str) -> bool:
        """Stop ``job_id`` within one training step (its record becomes ``cancelled``);
        whether this actor has it."""
        with self._lock:
            if self._job_id != job_id:
                return False
            if self._running is not None:
                self._running.cancel_requested = True
            self._stop.set()
            return True

    # Questions

    def current(self) -> str | None:
        """The job this actor has claimed or runs (None: idle)."""
        with self._lock:
            self._lapse()
            return self._job_id

    def wait_done(self, job_id: str, timeout_s: float) -> bool:
        """Wait up to ``timeout_s`` for ``job_id`` to leave this actor; whether it has."""
        deadline = time.monotonic() + timeout_s
        with self._lock:
            while self._job_id == job_id and (left := deadline - time.monotonic()) > 0:
                self._lock.wait(left)
            return self._job_id != job_id

    def ping(self) -> dict[str, Any]:
        return {"pid": os.getpid(), "host": socket.gethostname(), "job": self.current()}

    # Under the lock

    def _free(self) -> None:
        self._job_id, self._running, self._started_run = None, None, False
        self._stop.clear()
        self._lock.notify_all()

    def _lapse(self) -> None:
        stale = time.monotonic() - self._claimed_at > CLAIM_TTL_S
        if self._job_id is not None and not self._started_run and stale:
            log.warning("claim of job %s lapsed: no run followed", self._job_id)
            self._free()
