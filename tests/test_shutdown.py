"""Graceful shutdown of a live server: on SIGTERM an in-flight request still gets its answer,
an open event stream is cut after LOSS_SERVICE_SHUTDOWN_TIMEOUT_S, the running job is recorded
as interrupted, and the job database is left whole and readable by the next start."""

from __future__ import annotations

import json
import signal
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.live import Server, live_server

LONG_JOB = {"epochs": 1000, "batch_size": 16, "train_samples": 4096, "seed": 3}  # 256k steps
SHUTDOWN_TIMEOUT_S = 4


def wait_for(predicate: Any, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


class SlowUpload:
    """A loss request whose body arrives in pieces over about ``seconds``: it is in flight
    from its first piece to its answer."""

    def __init__(self, url: str, seconds: float) -> None:
        self.url, self.seconds = url, seconds
        self.started = threading.Event()
        self.response: httpx.Response | None = None
        self.thread = threading.Thread(target=self._send, daemon=True)
        self.thread.start()

    def _body(self) -> Iterator[bytes]:
        pieces = [b'{"input": [1.5, 2.0, 3.2],', b' "target": [1.0, 2.5, 2.8],', b' "grad": true}']
        for piece in pieces:
            yield piece
            self.started.set()
            time.sleep(self.seconds / len(pieces))

    def _send(self) -> None:
        self.response = httpx.post(
            f"{self.url}/v1/losses/mse_loss",
            content=self._body(),
            headers={"Content-Type": "application/json", "X-Request-ID": "in-flight-1"},
            timeout=60,
        )


class EventStream:
    """Follows a job's events in a thread until the server ends the stream."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.opened = threading.Event()
        self.closed = threading.Event()
        self.events: list[str] = []
        threading.Thread(target=self._follow, daemon=True).start()

    def _follow(self) -> None:
        try:
            with httpx.stream("GET", self.url, timeout=60) as response:
                self.opened.set()
                for line in response.iter_lines():
                    if line.startswith("event:"):
                        self.events.append(line.split(":", 1)[1].strip())
        except httpx.HTTPError:
            pass  # cut by the server: what a shutdown does to a stream that does not end
        finally:
            self.opened.set()
            self.closed.set()


def job_record(db: Path, job_id: str) -> dict[str, Any]:
    with sqlite3.connect(db) as connection:
        assert connection.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        row = connection.execute("SELECT status, record FROM jobs WHERE id = ?", (job_id,))
        status, record = row.fetchone()
    loaded: dict[str, Any] = json.loads(record)
    assert loaded["status"] == status
    return loaded


@pytest.mark.slow
def test_sigterm_finishes_requests_and_records_the_running_job_as_interrupted(
    tmp_path: Path,
) -> None:
    settings = {"shutdown_timeout_s": str(SHUTDOWN_TIMEOUT_S)}
    with live_server(tmp_path, **settings) as server:
        job = httpx.post(f"{server.url}/v1/jobs/mnist", json=LONG_JOB, timeout=30).json()

        def training() -> bool:
            record = httpx.get(f"{server.url}/v1/jobs/{job['id']}", timeout=30).json()
            return bool(record["status"] == "running" and (record["progress"] or {}).get("step"))

        wait_for(training)
        stream = EventStream(f"{server.url}/v1/jobs/{job['id']}/events")
        assert stream.opened.wait(30)
        upload = SlowUpload(server.url, seconds=1.5)
        assert upload.started.wait(30)

        stopping = time.monotonic()
        server.process.send_signal(signal.SIGTERM)
        upload.thread.join(60)
        assert upload.response is not None, "the in-flight request got no answer"
        assert upload.response.status_code == 200
        assert upload.response.json()["loss"] == pytest.approx(0.22, rel=1e-6)
        assert upload.response.headers["x-request-id"] == "in-flight-1"

        # uvicorn re-raises the signal once it has shut down cleanly
        assert server.process.wait(60) in (0, -signal.SIGTERM)
        took = time.monotonic() - stopping
        assert stream.closed.wait(10)
        # the stream, which never ends by itself, held the shutdown no longer than the timeout
        assert took < SHUTDOWN_TIMEOUT_S + 15, took

        record = job_record(tmp_path / "var" / "jobs.sqlite3", job["id"])
        assert record["status"] == "failed"
        assert record["error"]["reason"] == "interrupted"
        assert record["finished_at"] is not None
        models = tmp_path / "var" / "models"
        assert not list(models.glob("*")) if models.exists() else True  # no half-written model
        assert_json_log(server)

    # The next start reads the same database: the record is there, still interrupted.
    with live_server(tmp_path) as again:
        reread = httpx.get(f"{again.url}/v1/jobs/{job['id']}", timeout=30).json()
        assert reread["status"] == "failed" and reread["error"]["reason"] == "interrupted"
        answer = httpx.post(
            f"{again.url}/v1/losses/mse_loss", json={"input": [1.0], "target": [0.0]}, timeout=30
        )
        assert answer.json()["loss"] == 1.0


def assert_json_log(server: Server) -> None:
    lines = [json.loads(line) for line in server.log_lines() if line.strip()]
    messages = [line["message"] for line in lines]
    assert "Shutting down" in messages and "Application shutdown complete." in messages
    (access,) = [line for line in lines if line.get("request_id") == "in-flight-1"]
    assert access["status"] == 200 and access["route"] == "/v1/losses/mse_loss"
