"""Starting a training process (``python -m service.jobs.worker``) and asking it to stop."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from pathlib import Path

from service.jobs.records import RunningJob
from service.jobs.retention import model_file
from service.jobs.store import Record
from service.jobs.worker import WorkerSpec
from service.settings import Settings


def worker_spec(record: Record, settings: Settings) -> WorkerSpec:
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
        model_path=str(model_file(settings.models_dir, record["id"]).resolve()),
        torch_threads=settings.job_torch_threads,
        nice=settings.job_nice,
        progress_interval_s=settings.job_progress_interval_s,
    )


def start_worker(record: Record, settings: Settings) -> subprocess.Popen[str]:
    """The training process of ``record``, its job already written to its stdin."""
    root = str(Path(__file__).resolve().parents[2])
    path = os.environ.get("PYTHONPATH")
    env = {
        **os.environ,
        "OMP_NUM_THREADS": str(settings.job_torch_threads),
        "PYTHONPATH": f"{root}{os.pathsep}{path}" if path else root,
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "service.jobs.worker"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        bufsize=1,
        env=env,
    )
    assert process.stdin is not None
    try:
        process.stdin.write(worker_spec(record, settings).model_dump_json() + "\n")
        process.stdin.flush()
    except OSError:
        process.kill()
        raise
    return process


def send_cancel(job: RunningJob) -> None:
    if not job.started_up:
        # Still importing torch: nothing to save and nobody reading stdin yet; stop it now.
        with contextlib.suppress(OSError):
            job.process.kill()
        return
    with contextlib.suppress(OSError, ValueError):
        assert job.process.stdin is not None
        job.process.stdin.write("cancel\n")
        job.process.stdin.flush()
