"""A live server for the tests and benchmarks that need one: ``python -m service`` on a free
loopback port, its state under a folder of the caller's, the MNIST fixture in its data folder;
stopped by PID (SIGTERM, then SIGKILL) at the end."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.jobs.conftest import copy_fixture

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Server:
    url: str
    process: subprocess.Popen[bytes]
    log: Path
    home: Path

    def log_lines(self) -> list[str]:
        return self.log.read_text(encoding="utf-8", errors="replace").splitlines()

    @property
    def pid(self) -> int:
        return self.process.pid

    def paths(self) -> set[str]:
        return set(httpx.get(f"{self.url}/openapi.json", timeout=30).json()["paths"])


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def live_server(home: Path, **settings: str) -> Iterator[Server]:
    """``python -m service --port N`` with its data, database and models under ``home`` (the
    MNIST fixture in the data folder); stopped with SIGTERM at the end."""
    copy_fixture(home / "data")
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("LOSS_SERVICE_")},
        "PYTHONPATH": str(ROOT),
        "LOSS_SERVICE_DATA_DIR": str(home / "data"),
        "LOSS_SERVICE_DB_PATH": str(home / "var" / "jobs.sqlite3"),
        "LOSS_SERVICE_MODELS_DIR": str(home / "var" / "models"),
        "LOSS_SERVICE_JOB_PROGRESS_INTERVAL_S": "0.1",
        **{f"LOSS_SERVICE_{k.upper()}": v for k, v in settings.items()},
    }
    port = free_port()
    log = home / "server.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "service", "--port", str(port)],
            cwd=home,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = Server(f"http://127.0.0.1:{port}", process, log, home)
    try:
        wait_ready(server)
        yield server
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def wait_ready(server: Server, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise AssertionError("the server exited:\n" + "\n".join(server.log_lines()[-20:]))
        try:
            if httpx.get(f"{server.url}/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"the server was not ready in {timeout}s")
