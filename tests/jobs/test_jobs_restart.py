"""Durability: records survive restarts; a job that was running is never left ``running``."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from service.jobs.manager import now_iso
from service.jobs.stores.sqlite import SqliteJobStore

from .conftest import copy_fixture, wait_for_job, wait_until

QUICK = {"epochs": 1, "train_samples": 256, "test_samples": 64, "seed": 1}
LONG = {"epochs": 1000, "train_samples": 512, "test_samples": 32, "seed": 1}


def record(job_id: str, status: str, **extra: Any) -> dict[str, Any]:
    config = {
        "dataset": "mnist",
        "epochs": 1,
        "batch_size": 64,
        "learning_rate": 0.001,
        "optimizer": "adam",
        "momentum": 0.9,
        "weight_decay": 0.0,
        "hidden_units": 16,
        "loss": "cross_entropy",
        "seed": 5,
        "device": "cpu",
        "train_samples": 128,
        "test_samples": 32,
        "log_every": 100,
    }
    return {
        "id": job_id,
        "status": status,
        "config": config,
        "created_at": now_iso(),
        "started_at": None,
        "finished_at": None,
        "progress": None,
        "metrics": [],
        "train_loss_series": {"every_steps": 100, "points": []},
        "timings": {},
        "device": None,
        "error": None,
        "model": None,
        **extra,
    }


def test_start_recovers_records(jobs_client: Callable[..., Any], tmp_path: Path) -> None:
    store = SqliteJobStore(tmp_path / "var" / "jobs.sqlite3")
    metrics = [
        {
            "epoch": 1,
            "train_loss": 0.5,
            "test_loss": 0.4,
            "test_accuracy": 0.9,
            "train_seconds": 1.0,
            "eval_seconds": 0.1,
            "samples_per_s": 1000.0,
        }
    ]
    old = record("old", "succeeded", metrics=metrics, finished_at=now_iso())
    store.insert(old, "status", {"status": "succeeded"})
    store.insert(record("was-running", "queued"), "status", {"status": "queued"})
    running = record(
        "was-running",
        "running",
        started_at=now_iso(),
        progress={"phase": "training", "epoch": 2, "step": 40},
    )
    store.update(running, "status", {"status": "running"})
    store.insert(record("waiting", "queued"), "status", {"status": "queued"})
    store.close()

    client = jobs_client()
    interrupted = client.get("/v1/jobs/was-running").json()
    assert interrupted["status"] == "failed"
    assert interrupted["error"]["reason"] == "interrupted"
    assert "epoch 2, step 40" in interrupted["error"]["message"]
    kept = client.get("/v1/jobs/old").json()
    assert kept["status"] == "succeeded"
    assert kept["metrics"] == metrics and kept["config"] == old["config"]
    # The queued job runs after the restart.
    assert wait_for_job(client, "waiting", {"succeeded", "failed"})["status"] == "succeeded"
    events = client.get("/v1/jobs/was-running/events").text
    assert "event: done" in events


def test_graceful_stop_marks_running_interrupted(
    jobs_client: Callable[..., Any], make_client: Callable[..., Any]
) -> None:
    client = jobs_client()
    job = client.post("/v1/jobs/mnist", json=LONG).json()
    wait_until(
        lambda: bool(
            (client.get(f"/v1/jobs/{job['id']}").json()["progress"] or {}).get("global_step")
        )
    )
    client.__exit__(None, None, None)  # lifespan shutdown while the job trains
    again = make_client()
    stopped = again.get(f"/v1/jobs/{job['id']}").json()
    assert stopped["status"] == "failed"
    assert stopped["error"]["reason"] == "interrupted"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(p) for p in path.read_text().split()] if path.exists() else []


def _alive(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "\nState:\tZ" not in status


@contextlib.contextmanager
def server(tmp_path: Path, port: int) -> Iterator[subprocess.Popen[bytes]]:
    env = {
        **os.environ,
        "LOSS_SERVICE_DATA_DIR": str(tmp_path / "data"),
        "LOSS_SERVICE_DB_PATH": str(tmp_path / "var" / "jobs.sqlite3"),
        "LOSS_SERVICE_MODELS_DIR": str(tmp_path / "var" / "models"),
        "LOSS_SERVICE_LOG_LEVEL": "warning",
        "PYTHONPATH": str(Path(__file__).resolve().parents[2]),
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "service", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_until(lambda: _ready(port), timeout=60)
        yield process
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()


def _ready(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.mark.slow
def test_sigkill_mid_job(tmp_path: Path) -> None:
    copy_fixture(tmp_path / "data")
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    with server(tmp_path, port) as process:
        done = httpx.post(f"{base}/v1/jobs/mnist", json=QUICK).json()
        wait_for_job(httpx.Client(base_url=base), done["id"], {"succeeded"})
        job = httpx.post(f"{base}/v1/jobs/mnist", json=LONG).json()
        # Killed once it has finished an epoch (whose metrics the record must keep).
        wait_until(lambda: bool(httpx.get(f"{base}/v1/jobs/{job['id']}").json()["metrics"]))
        workers = _children(process.pid)
        assert workers
        process.send_signal(signal.SIGKILL)
        process.wait()
        # The orphaned worker notices (its stdin closes) and stops training.
        wait_until(lambda: not any(_alive(pid) for pid in workers), timeout=10)
    with server(tmp_path, port):
        client = httpx.Client(base_url=base)
        killed = client.get(f"/v1/jobs/{job['id']}").json()
        assert killed["status"] == "failed"
        assert killed["error"]["reason"] == "interrupted"
        assert killed["metrics"]  # what it had done is kept
        kept = client.get(f"/v1/jobs/{done['id']}").json()
        assert kept["status"] == "succeeded" and kept["metrics"]
        assert client.get(f"/v1/jobs/{done['id']}/model").status_code == 200
        assert client.get("/v1/jobs").json()["total"] == 2
