"""Warm training processes of the local executor (``LOSS_SERVICE_JOB_WARM_WORKERS``): a spare
that has imported torch waits for the next job, so a job starts in well under a second."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from .conftest import wait_for_job, wait_until

QUICK = {"epochs": 1, "train_samples": 256, "test_samples": 64, "seed": 1}


def _workers() -> list[int]:
    """Training processes this test process started (and that have not exited)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            cmdline = (stat.parent / "cmdline").read_bytes()
        except OSError:
            continue
        parent, state = int(fields[1]), fields[0]
        if parent == os.getpid() and state != "Z" and b"service.jobs.worker" in cmdline:
            found.append(int(stat.parent.name))
    return found


def _spare_ready(client: Any) -> bool:
    return bool(client.app.state.job_manager.executor.spares_ready() == 1)


def test_a_warm_worker_starts_a_job_in_well_under_a_second(
    jobs_client: Callable[..., Any],
) -> None:
    client = jobs_client(job_warm_workers=1)
    wait_until(lambda: _spare_ready(client), timeout=120)
    first = client.post("/v1/jobs/mnist", json=QUICK).json()
    done = wait_for_job(client, first["id"], {"succeeded"})
    warm = done["timings"]["worker_start_s"]
    # The process that trained it waits for the next job, which starts warm too.
    wait_until(lambda: _spare_ready(client), timeout=120)
    second = wait_for_job(
        client, client.post("/v1/jobs/mnist", json=QUICK).json()["id"], {"succeeded"}
    )
    print(f"worker_start_s warm: {warm:.3f} s, {second['timings']['worker_start_s']:.3f} s")
    assert warm < 1.0 and second["timings"]["worker_start_s"] < 1.0
    assert len(_workers()) == 1  # the one process, waiting again, and nothing else


def test_without_warm_workers_a_job_starts_cold(jobs_client: Callable[..., Any]) -> None:
    client = jobs_client(job_warm_workers=0)
    assert _workers() == []
    job = wait_for_job(
        client, client.post("/v1/jobs/mnist", json=QUICK).json()["id"], {"succeeded"}
    )
    print(f"worker_start_s cold: {job['timings']['worker_start_s']:.3f} s")
    assert job["timings"]["worker_start_s"] > 0.5  # import torch, in a fresh interpreter
    wait_until(lambda: _workers() == [], timeout=30)


@pytest.mark.parametrize("warm", [0, 2])
def test_stopping_leaves_no_training_process(make_client: Callable[..., Any], warm: int) -> None:
    client = make_client(job_warm_workers=warm, max_concurrent_jobs=2)
    assert len(client.app.state.job_manager.executor._spares) == warm
    client.__exit__(None, None, None)
    assert _workers() == []


def test_one_process_trains_queued_jobs_one_after_the_other(
    jobs_client: Callable[..., Any],
) -> None:
    """Jobs waiting in the queue run on the process that trained the one before: warm."""
    client = jobs_client(job_warm_workers=1)
    wait_until(lambda: _spare_ready(client), timeout=120)
    ids = [client.post("/v1/jobs/mnist", json={**QUICK, "seed": s}).json()["id"] for s in range(4)]
    jobs = [wait_for_job(client, job_id, {"succeeded"}) for job_id in ids]
    starts = [job["timings"]["worker_start_s"] for job in jobs]
    print("worker_start_s of four queued jobs:", [f"{s:.3f}" for s in starts])
    assert max(starts) < 1.0
    assert len(_workers()) == 1
    # Same seed, same numbers, whether the process is fresh or has trained before.
    again = wait_for_job(
        client, client.post("/v1/jobs/mnist", json={**QUICK, "seed": 0}).json()["id"], {"succeeded"}
    )
    numbers = ("train_loss", "test_loss", "test_accuracy")
    assert [[m[k] for k in numbers] for m in again["metrics"]] == [
        [m[k] for k in numbers] for m in jobs[0]["metrics"]
    ]
