"""Hostile request bodies and a live server to send them to (tests and benchmarks/hostile_load).

Each body reproduces one measured attack: a broadcast bomb (2N elements on the wire, N^2 for
torch), CTC's quadratic lattice, a million unknown keys.
"""

from __future__ import annotations

import base64
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
import numpy as np
import orjson

ROOT = Path(__file__).resolve().parents[2]


def b64(array: np.ndarray) -> dict[str, object]:
    dtype = {"float32": "float32", "int64": "int64", "int32": "int32"}[str(array.dtype)]
    return {
        "shape": list(array.shape),
        "dtype": dtype,
        "base64": base64.b64encode(array.astype(array.dtype.newbyteorder("<")).tobytes()).decode(),
    }


def broadcast_bomb(n: int) -> bytes:
    """mse_loss of input [n, 1] and target [1, n]: torch would make n x n elements."""
    rng = np.random.default_rng(0)
    body = {
        "input": b64(rng.standard_normal((n, 1), dtype=np.float32)),
        "target": b64(rng.standard_normal((1, n), dtype=np.float32)),
    }
    return orjson.dumps(body)


def ctc_body(steps: int = 8000, target_length: int = 4000, classes: int = 5) -> bytes:
    """ctc_loss of one sequence of ``steps`` frames and a target of ``target_length`` labels:
    a lattice of steps x (2 target_length + 1) cells."""
    rng = np.random.default_rng(0)
    logits = rng.standard_normal((steps, 1, classes), dtype=np.float32)
    log_probs = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    targets = rng.integers(1, classes, size=(1, target_length)).astype(np.int32)
    body = {
        "log_probs": b64(log_probs.astype(np.float32)),
        "targets": b64(targets),
        "input_lengths": [steps],
        "target_lengths": [target_length],
    }
    return orjson.dumps(body)


def unknown_keys(count: int = 1_000_000, base: dict[str, object] | None = None) -> bytes:
    """A body of ``count`` keys that no endpoint knows (beside the fields of ``base``)."""
    document: dict[str, object] = dict(base or {})
    document.update({f"k{i}": 1 for i in range(count)})
    return orjson.dumps(document)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def rss_bytes(pid: int) -> int:
    """Resident memory of a process and its children (compute workers are threads)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


@dataclass
class LiveServer:
    url: str
    process: subprocess.Popen[bytes]

    @property
    def pid(self) -> int:
        return self.process.pid


@contextmanager
def live_server(home: Path, **settings: str) -> Iterator[LiveServer]:
    """``python -m service`` on a free loopback port, its files under ``home``; stopped by
    PID (SIGTERM, then SIGKILL) at the end."""
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("LOSS_SERVICE_")},
        "PYTHONPATH": str(ROOT),
        "LOSS_SERVICE_HOST": "127.0.0.1",
        "LOSS_SERVICE_DATA_DIR": str(home / "data"),
        "LOSS_SERVICE_DB_PATH": str(home / "var" / "jobs.sqlite3"),
        "LOSS_SERVICE_MODELS_DIR": str(home / "var" / "models"),
        "LOSS_SERVICE_ACCESS_LOG": "false",
        **{f"LOSS_SERVICE_{k.upper()}": v for k, v in settings.items()},
    }
    port = free_port()
    log = (home / "server.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "service", "--port", str(port)],
        cwd=home,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    server = LiveServer(f"http://127.0.0.1:{port}", process)
    try:
        deadline = time.monotonic() + 90
        while True:
            if process.poll() is not None:
                raise RuntimeError((home / "server.log").read_text()[-2000:])
            try:
                if httpx.get(f"{server.url}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("the server was not ready in 90 s")
            time.sleep(0.2)
        yield server
    finally:
        log.close()
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
