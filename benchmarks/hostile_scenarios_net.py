"""Hostile network clients against a live server (loopback only, bounded in count and time).

Scenarios (``SCENARIOS``: name, function(server_url, **options) -> result dict):

- ``slow_socket_flood``: 1,100 sockets from one client (another loopback address) each send a
  partial request head, then a header line every second, for ``hold_s``; ``/healthz`` is asked
  every 50 ms meanwhile. Reports the ``/healthz`` answers, their p50/p99/max, how many slow
  sockets the server still held, and when it had closed them all.
- ``rate_limit_burst``: one client sends ``requests`` GET /v1/losses as fast as one connection
  goes; reports how many got 200 and 429 and the Retry-After given.
- ``sigkill_workers``: starts its own ``python -m service --workers 2`` (``server_url`` gives
  only the host), SIGKILLs the supervisor, and reports how long until no child was left, whether
  the port was free, and how long a new server took to answer on it.

``python benchmarks/hostile_scenarios_net.py [--compare PATH]`` starts a server of this tree
(open-file limit 1,024, as measured before these protections) for each scenario and prints a
Markdown report; ``--compare PATH`` also runs the flood against the service code in PATH.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import resource
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

ROOT = Path(__file__).resolve().parents[1]
ATTACKER = "127.0.0.2"  # the flood comes from another loopback address than the probe
OPEN_FILES = 1024  # the server's open-file limit (soft and hard) in the measured setup

Result = dict[str, Any]


# Measuring


class HealthProbe:
    """Asks /healthz every ``interval_s`` in a thread; records each answer's seconds or None."""

    def __init__(self, url: str, interval_s: float = 0.05, timeout_s: float = 2.0) -> None:
        self.address = host_port(url)
        self.interval_s = interval_s
        self.timeout_s = timeout_s
        self.samples: list[float | None] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> HealthProbe:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _ask(self) -> bool:
        # A new connection each time, as a load balancer's health check does; a bare socket, so
        # that the figure is the server's time, not an HTTP client library's.
        with socket.create_connection(self.address, timeout=self.timeout_s) as sock:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: probe\r\nConnection: close\r\n\r\n")
            answer = b""
            while chunk := sock.recv(65536):
                answer += chunk
        return answer.startswith(b"HTTP/1.1 200")

    def _run(self) -> None:
        while not self._stop.is_set():
            started = time.perf_counter()
            try:
                ok = self._ask()
                self.samples.append(time.perf_counter() - started if ok else None)
            except OSError:
                self.samples.append(None)
            self._stop.wait(max(0.0, self.interval_s - (time.perf_counter() - started)))

    def summary(self) -> Result:
        times = sorted(s for s in self.samples if s is not None)
        failed = len(self.samples) - len(times)

        def pct(q: float) -> float | None:
            return (
                round(1000 * times[min(len(times) - 1, int(q * len(times)))], 1) if times else None
            )

        return {
            "healthz_asked": len(self.samples),
            "healthz_failed": failed,
            "healthz_p50_ms": round(1000 * statistics.median(times), 1) if times else None,
            "healthz_p99_ms": pct(0.99),
            "healthz_max_ms": round(1000 * times[-1], 1) if times else None,
        }


def peak_rss_mib(pid: int) -> float | None:
    """Peak resident memory (VmHWM) of a process and its children, in MiB."""
    total = 0
    pids = [pid]
    with contextlib.suppress(OSError):
        for task in Path(f"/proc/{pid}/task").iterdir():
            pids += [int(p) for p in (task / "children").read_text().split()]
    for each in pids:
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{each}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    total += int(line.split()[1])
    return round(total / 1024, 1) if total else None


def host_port(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    return parts.hostname or "127.0.0.1", parts.port or 80


def still_open(sock: socket.socket) -> bool:
    sock.settimeout(0.001)
    try:
        return sock.recv(65536) != b""
    except (TimeoutError, BlockingIOError):
        return True
    except OSError:
        return False


# Scenarios


def slow_socket_flood(
    server_url: str,
    sockets: int = 1100,
    hold_s: float = 20.0,
    after_s: float = 15.0,
    addresses: int = 1,
) -> Result:
    """``addresses`` > 1: the sockets come from 127.0.0.2, 127.0.0.3, ... in turn (many
    clients, so that the total cap rather than the per-client one is what holds)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, sockets + 512)), hard))
    host, port = host_port(server_url)
    opened: list[socket.socket] = []
    refused = 0
    started = time.monotonic()
    with HealthProbe(server_url) as probe:
        for _ in range(sockets):
            try:
                source = f"127.0.0.{2 + len(opened) % addresses}" if addresses > 1 else ATTACKER
                sock = socket.create_connection((host, port), timeout=2, source_address=(source, 0))
                sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
                opened.append(sock)
            except OSError:
                refused += 1
        held_at: list[int] = []
        while time.monotonic() - started < hold_s:
            for sock in opened:
                with contextlib.suppress(OSError):
                    sock.sendall(b"X-Slow: 1\r\n")
            time.sleep(1.0)
            held_at.append(sum(still_open(s) for s in opened))
        # After the flood stops sending: when has the server closed every slow socket?
        all_closed_after = None
        stop_sending = time.monotonic()
        while time.monotonic() - stop_sending < after_s:
            if not any(still_open(s) for s in opened):
                all_closed_after = round(time.monotonic() - started, 1)
                break
            time.sleep(0.2)
    for sock in opened:
        sock.close()
    return {
        "slow_sockets": sockets,
        "client_addresses": addresses,
        "connect_failed": refused,
        "held_by_server_max": max(held_at, default=0),
        "held_by_server_end": held_at[-1] if held_at else 0,
        "all_closed_after_s": all_closed_after,
        **probe.summary(),
    }


def slow_socket_flood_many_clients(server_url: str, **options: Any) -> Result:
    return slow_socket_flood(server_url, **{"addresses": 100, **options})


def rate_limit_burst(server_url: str, requests: int = 600, threads: int = 4) -> Result:
    """One client (one address) sends ``requests`` GET /v1/losses/mse_loss on ``threads``
    keep-alive connections as fast as they go."""
    statuses: dict[int, int] = {}
    retry_after: set[str] = set()
    lock = threading.Lock()

    def send(count: int) -> None:
        with httpx.Client(base_url=server_url, timeout=10) as client:
            for _ in range(count):
                response = client.get("/v1/losses/mse_loss")
                with lock:
                    statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
                    if response.status_code == 429:
                        retry_after.add(response.headers.get("retry-after", "(none)"))

    started = time.perf_counter()
    with HealthProbe(server_url) as probe:
        workers = [
            threading.Thread(target=send, args=(requests // threads,)) for _ in range(threads)
        ]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
    seconds = time.perf_counter() - started
    return {
        "requests": requests,
        "seconds": round(seconds, 2),
        "sent_per_s": round(requests / seconds, 1),
        "answers": dict(sorted(statuses.items())),
        "retry_after": sorted(retry_after),
        **probe.summary(),
    }


def sigkill_workers(server_url: str, start_timeout_s: float = 180.0) -> Result:
    host, _ = host_port(server_url)
    port = free_port(host)
    with tempfile.TemporaryDirectory() as tmp:
        server = start_server(Path(tmp) / "first", port, workers=2)
        family: list[int] = []
        try:
            wait_ready(f"http://{host}:{port}", server, start_timeout_s)
            for task in Path(f"/proc/{server.pid}/task").iterdir():
                family += [int(p) for p in (task / "children").read_text().split()]
            killed = time.monotonic()
            server.send_signal(signal.SIGKILL)
            server.wait()
            left = list(family)
            while left and time.monotonic() - killed < 30:
                left = [p for p in left if alive(p)]
                time.sleep(0.05)
            gone_after = round(time.monotonic() - killed, 2) if not left else None
        finally:
            for pid in family:
                if alive(pid):
                    os.kill(pid, signal.SIGKILL)
        free = port_free(host, port)
        again = start_server(Path(tmp) / "again", port, workers=1)
        restarted = time.monotonic()
        try:
            wait_ready(f"http://{host}:{port}", again, start_timeout_s)
            restart_s: float | None = round(time.monotonic() - restarted, 1)
        except RuntimeError:
            restart_s = None
        finally:
            stop_server(again)
    return {
        "children": len(family),
        "children_left": len(left),
        "all_gone_after_s": gone_after,
        "port_free": free,
        "restart_answered_after_s": restart_s,
    }


SCENARIOS: list[tuple[str, Callable[..., Result]]] = [
    ("slow_socket_flood", slow_socket_flood),
    ("slow_socket_flood_many_clients", slow_socket_flood_many_clients),
    ("rate_limit_burst", rate_limit_burst),
    ("sigkill_workers", sigkill_workers),
]


# Servers


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def port_free(host: str, port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
            sock.listen()
        except OSError:
            return False
    return True


def start_server(
    home: Path,
    port: int,
    workers: int = 1,
    code: Path = ROOT,
    open_files: int | None = None,
    env: dict[str, str] | None = None,
) -> subprocess.Popen[bytes]:
    home.mkdir(parents=True, exist_ok=True)
    environment = {
        **{k: v for k, v in os.environ.items() if not k.startswith("LOSS_SERVICE_")},
        "PYTHONPATH": str(code),
        "LOSS_SERVICE_DB_PATH": str(home / "jobs.sqlite3"),
        "LOSS_SERVICE_MODELS_DIR": str(home / "models"),
        "LOSS_SERVICE_DATA_DIR": str(home / "data"),
        "LOSS_SERVICE_LOG_LEVEL": "warning",
        "LOSS_SERVICE_ACCESS_LOG": "false",
        **(env or {}),
    }

    def limit() -> None:
        if open_files is not None:
            resource.setrlimit(resource.RLIMIT_NOFILE, (open_files, open_files))

    command = [sys.executable, "-m", "service", "--port", str(port), "--workers", str(workers)]
    with (home / "server.log").open("wb") as log:
        return subprocess.Popen(
            command, cwd=home, env=environment, stdout=log, stderr=subprocess.STDOUT,
            preexec_fn=limit, start_new_session=True,
        )  # fmt: skip


def wait_ready(url: str, process: subprocess.Popen[bytes], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError("the server exited")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return
        time.sleep(0.2)
    raise RuntimeError(f"the server did not answer in {timeout_s} s")


def stop_server(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextlib.contextmanager
def running(code: Path, **kwargs: Any) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        process = start_server(Path(tmp), port, code=code, **kwargs)
        url = f"http://127.0.0.1:{port}"
        try:
            wait_ready(url, process, 180)
            yield url, process
        finally:
            stop_server(process)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--compare", type=Path, help="also flood the service code in PATH")
    args = parser.parse_args()
    print("| scenario | server | result | peak RSS of the server (MiB) |")
    print("| --- | --- | --- | --- |")
    trees = [("this tree", ROOT)] + ([("compared", args.compare)] if args.compare else [])
    for label, code in trees:
        for name, flood in SCENARIOS[:2]:
            with running(code, open_files=OPEN_FILES) as (url, process):
                result = flood(url)
                print(f"| {name} | {label} | {result} | {peak_rss_mib(process.pid)} |")
    # A limit this machine's client can exceed (the default, 100/s, is more than one client
    # here sends), so that the 429s show.
    limit = {"LOSS_SERVICE_RATE_LIMIT_PER_S": "20", "LOSS_SERVICE_RATE_LIMIT_BURST": "40"}
    with running(ROOT, env=limit) as (url, process):
        result = rate_limit_burst(url)
        peak = peak_rss_mib(process.pid)
        print(f"| rate_limit_burst | this tree, 20/s burst 40 | {result} | {peak} |")
    result = sigkill_workers("http://127.0.0.1")
    print(f"| sigkill_workers | this tree, --workers 2 | {result} | |")


if __name__ == "__main__":
    main()
