"""Hostile load against a live server: does it stay up, answer, and keep ``/healthz`` fast?

Starts ``python -m service`` on a free loopback port (stopped by PID at the end), then runs
each scenario one after another while a probe thread asks ``GET /healthz`` every 10 ms. Per
scenario it prints the answers (status counts), ``/healthz`` p50 / p99 / max and the server's
peak resident memory (sampled every 10 ms from ``/proc``) above its idle baseline.

    python benchmarks/hostile_load.py                    # every scenario
    python benchmarks/hostile_load.py --only unknown     # scenarios whose name contains it

A scenario is one function ``(Target, body) -> Counter`` of answers, registered with
``@scenario(name, body=...)``; its body is built before the probe starts (so that building it
does not slow this process's probe). Add one by writing such a function. Bounded: each
scenario sends a fixed number of requests with client timeouts.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import numpy as np
import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import hostile_scenarios_net as net  # noqa: E402 - beside this file

from tests.support.hostile import (  # noqa: E402 - after the path is set
    broadcast_bomb,
    ctc_body,
    rss_bytes,
    unknown_keys,
)
from tests.support.live import live_server  # noqa: E402

JSON = {"content-type": "application/json"}
CLIENT_TIMEOUT_S = 120.0


@dataclass
class Target:
    url: str
    pid: int

    def post(self, path: str, body: bytes) -> int:
        try:
            with httpx.Client(base_url=self.url, timeout=CLIENT_TIMEOUT_S) as http:
                return http.post(path, content=body, headers=JSON).status_code
        except httpx.HTTPError as error:
            return -1 if not isinstance(error, httpx.TimeoutException) else -2


Scenario = Callable[[Target, bytes], "Counter[int] | Counter[int | str]"]
SCENARIOS: list[tuple[str, Scenario, Callable[[], bytes]]] = []


def scenario(name: str, body: Callable[[], bytes] = bytes) -> Callable[[Scenario], Scenario]:
    def register(fn: Scenario) -> Scenario:
        SCENARIOS.append((name, fn, body))
        return fn

    return register


def concurrently(target: Target, path: str, body: bytes, count: int) -> Counter[int]:
    with ThreadPoolExecutor(count) as pool:
        return Counter(pool.map(lambda _: target.post(path, body), range(count)))


# ---------------------------------------------------------------------------------------------
# Scenarios


@scenario("idle: no hostile request (baseline), 2 s")
def idle(target: Target, body: bytes) -> Counter[int]:
    time.sleep(2)
    return Counter()


@scenario(
    "broadcast bomb 167 KB (mse_loss [16000,1] x [1,16000]) x 3", lambda: broadcast_bomb(16_000)
)
def bomb_167k(target: Target, body: bytes) -> Counter[int]:
    return Counter(target.post("/v1/losses/mse_loss", body) for _ in range(3))


@scenario(
    "broadcast bomb 334 KB (mse_loss [32000,1] x [1,32000]) x 3", lambda: broadcast_bomb(32_000)
)
def bomb_334k(target: Target, body: bytes) -> Counter[int]:
    return Counter(target.post("/v1/losses/mse_loss", body) for _ in range(3))


@scenario("10^6 unknown keys on /v1/losses/mse_loss (11 MB)", unknown_keys)
def unknown_keys_loss(target: Target, body: bytes) -> Counter[int]:
    return Counter([target.post("/v1/losses/mse_loss", body)])


@scenario("10^6 unknown keys on /v1/jobs/mnist (11 MB)", unknown_keys)
def unknown_keys_jobs(target: Target, body: bytes) -> Counter[int]:
    return Counter([target.post("/v1/jobs/mnist", body)])


@scenario("ctc_loss T=8000, S=4000 (235 KB) x 2", ctc_body)
def ctc_quadratic(target: Target, body: bytes) -> Counter[int]:
    return Counter(target.post("/v1/losses/ctc_loss", body) for _ in range(2))


def _within_budget() -> bytes:
    # [4000, 1] x [1, 4000] broadcast to 16M elements; with both gradients about 96M elements
    # of work, just within the default budget.
    document = orjson.loads(broadcast_bomb(4_000))
    document["grad"] = True
    return orjson.dumps(document)


@scenario("8 concurrent mse_loss just within the work budget (16M broadcast, grad)", _within_budget)
def concurrent_large(target: Target, body: bytes) -> Counter[int]:
    # Eight at once against two compute workers and their queue.
    return concurrently(target, "/v1/losses/mse_loss", body, 8)


def _nested_million() -> bytes:
    rng = np.random.default_rng(0)
    values = rng.standard_normal((2, 1_000_000)).round(6).tolist()
    return orjson.dumps({"input": values[0], "target": values[1], "grad": True})


@scenario(
    "2 concurrent mse_loss of 1M-element nested JSON tensors (legitimate, 19 MB)", _nested_million
)
def nested_large(target: Target, body: bytes) -> Counter[int]:
    # Parsing and converting nested JSON holds the interpreter lock in whichever thread does
    # it: the limit of computing in threads of the server's own process.
    return concurrently(target, "/v1/losses/mse_loss", body, 2)


def outcomes(result: dict[str, object], keys: tuple[str, ...]) -> Counter[int | str]:
    """A network scenario's result (benchmarks/hostile_scenarios_net.py) as the row's answers."""
    answers: Counter[int | str] = Counter()
    for key in keys:
        value = result.get(key)
        if isinstance(value, dict):
            answers.update({int(k): int(v) for k, v in value.items()})
        elif value is not None:
            answers[key] = value  # type: ignore[assignment]
    return answers


@scenario("slow-socket flood: 1,100 sockets from one client sending a header a second, 10 s")
def slow_sockets(target: Target, body: bytes) -> Counter[int | str]:
    result = net.slow_socket_flood(target.url, sockets=1100, hold_s=10.0, after_s=15.0)
    return outcomes(result, ("connect_failed", "held_by_server_max", "all_closed_after_s"))


@scenario("rate-limit burst: 600 requests from one client on 4 connections")
def burst(target: Target, body: bytes) -> Counter[int | str]:
    return outcomes(net.rate_limit_burst(target.url), ("answers",))


@scenario("overflowing job list offset and Last-Event-ID (2^63)")
def overflows(target: Target, body: bytes) -> Counter[int | str]:
    huge = str(2**63)
    with httpx.Client(base_url=target.url, timeout=CLIENT_TIMEOUT_S) as http:
        listed = http.get("/v1/jobs", params={"offset": huge}).status_code
        job = http.post("/v1/jobs/mnist", json={"epochs": 1}).json()["id"]
        events = http.get(f"/v1/jobs/{job}/events", headers={"Last-Event-ID": huge})
        http.delete(f"/v1/jobs/{job}")
    return Counter([listed, events.status_code])


# ---------------------------------------------------------------------------------------------
# Measurement


@dataclass
class Probe:
    target: Target
    latencies: list[float] = field(default_factory=list)
    failures: int = 0
    peak_rss: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        with httpx.Client(base_url=self.target.url, timeout=10) as http:
            while not self._stop.is_set():
                started = time.perf_counter()
                try:
                    ok = http.get("/healthz").status_code == 200
                except httpx.HTTPError:
                    ok = False
                self.latencies.append(time.perf_counter() - started)
                self.failures += not ok
                self.sample_rss()
                self._stop.wait(0.01)

    def sample_rss(self) -> None:
        with suppress(OSError):
            self.peak_rss = max(self.peak_rss, rss_bytes(self.target.pid))


@contextmanager
def probing(target: Target) -> Iterator[Probe]:
    probe = Probe(target)
    memory = threading.Thread(target=_sample_memory, args=(probe,), daemon=True)
    thread = threading.Thread(target=probe.run, daemon=True)
    thread.start()
    memory.start()
    try:
        yield probe
    finally:
        probe._stop.set()
        thread.join(30)
        memory.join(30)


def _sample_memory(probe: Probe) -> None:
    while not probe._stop.is_set():
        probe.sample_rss()
        time.sleep(0.01)


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(pct / 100 * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", default="", help="run scenarios whose name contains this")
    args = parser.parse_args()
    chosen = [entry for entry in SCENARIOS if args.only.lower() in entry[0].lower()]
    rows = []
    with (
        tempfile.TemporaryDirectory(prefix="hostile-") as home,
        live_server(Path(home), access_log="false") as server,
    ):
        target = Target(server.url, server.pid)
        idle = rss_bytes(server.pid)
        print(f"server pid {server.pid} at {server.url}, idle RSS {idle / 2**20:.0f} MiB")
        for name, run, make_body in chosen:
            body = make_body()
            started = time.perf_counter()
            with probing(target) as probe:
                answers = run(target, body)
                time.sleep(0.2)  # the probe sees the server settle
            seconds = time.perf_counter() - started
            alive = server.process.poll() is None
            lat = probe.latencies
            row = (
                name,
                ", ".join(f"{status}: {n}" for status, n in sorted(answers.items(), key=str)),
                f"{seconds:.1f}",
                f"{percentile(lat, 50) * 1000:.1f}",
                f"{percentile(lat, 99) * 1000:.1f}",
                f"{max(lat) * 1000:.1f}",
                str(probe.failures),
                f"+{max(0, probe.peak_rss - idle) / 2**20:.0f}",
                "yes" if alive else "NO",
            )
            rows.append(row)
            print(" | ".join(row), flush=True)
            if not alive:
                break
    header = (
        "scenario",
        "answers (status: count)",
        "s",
        "/healthz p50 ms",
        "p99 ms",
        "max ms",
        "probe failures",
        "peak RSS MiB over idle",
        "server up",
    )
    print()
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for row in rows:
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
