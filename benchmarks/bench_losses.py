"""Side-by-side benchmark of ``POST /v1/losses/{name}`` (issue 2's speed section).

One run on this machine, every server a uvicorn subprocess (uvloop, httptools, loopback) that
this script starts and stops itself, one after the other on the same port:

- ceiling: a bare FastAPI endpoint that reads the body and answers a constant;
- straightforward: pydantic ``list[float]`` fields, ``torch.tensor(list)``, ``.tolist()``,
  ``response_model`` (``benchmarks/reference_apps/straightforward.py``);
- service: ``service.main:app`` as configured by default, with 1 worker, then with 2 (and, in
  the full run, 2 workers that each take every core's worth of torch threads);
- floor: measured in this process on the same bodies: orjson, numpy, torch, orjson, giving the
  same bytes the service answers.

Small requests are driven by ``wrk`` (one thread, 8 connections) in rounds (every server once
per round, so that other programs' load falls on each alike); the best round is reported, with
the server's CPU time per request (all its threads, from ``/proc``), which other programs
disturb far less than requests per second. Large requests are timed one at a time end to end,
each beside a run of the floor, then under concurrent load with ``wrk``'s latency percentiles
while a probe times small requests beside them. Last, the CPU of a small request is split by
layer in this process.

    python benchmarks/bench_losses.py            # about 5 minutes
    python benchmarks/bench_losses.py --quick    # about 2 minutes

Needs ``wrk`` (``apt-get install wrk``).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import gc
import http.client
import logging
import math
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import torch
import torch.nn.functional as F
from wrk_load import run_wrk

ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
CORES = os.cpu_count() or 1


# ---------------------------------------------------------------------------------------------
# Bodies


@dataclass(frozen=True)
class Case:
    name: str
    loss: str
    body: bytes
    form: str  # "nested" or "base64"
    elements: int

    @property
    def path(self) -> str:
        return f"/v1/losses/{self.loss}"


def _b64(array: np.ndarray[Any, Any], dtype: str) -> dict[str, Any]:
    raw = np.ascontiguousarray(array).astype(f"<{array.dtype.str[1:]}").tobytes()
    return {"shape": list(array.shape), "dtype": dtype, "base64": base64.b64encode(raw).decode()}


def dump(document: dict[str, Any]) -> bytes:
    return orjson.dumps(document, option=orjson.OPT_SERIALIZE_NUMPY)


def small_cases() -> list[Case]:
    seed = {"input": [1.5, 2.0, 3.2], "target": [1.0, 2.5, 2.8], "grad": True}
    rng = np.random.default_rng(1)
    x, y = rng.standard_normal(1000, dtype=np.float32), rng.standard_normal(1000, dtype=np.float32)
    return [
        Case("mse 3 (seed)", "mse_loss", dump(seed), "nested", 3),
        Case("mse 1k", "mse_loss", dump({"input": x, "target": y, "grad": True}), "nested", 1000),
    ]


def large_cases(sizes: list[int]) -> list[Case]:
    cases: list[Case] = []
    rng = np.random.default_rng(2)
    for n in sizes:
        rows = n // 10
        logits = rng.standard_normal((rows, 10), dtype=np.float32)
        values = rng.standard_normal((rows, 10), dtype=np.float32)
        labels = rng.integers(0, 10, rows, dtype=np.int64)
        label = f"{n // 1000}k" if n < 1_000_000 else f"{n // 1_000_000}M"
        for loss, target in (("mse_loss", values), ("cross_entropy", labels)):
            nested = {"input": logits, "target": target, "grad": True}
            target_b64 = _b64(target, "int64" if target.dtype == np.int64 else "float32")
            packed = {
                "input": _b64(logits, "float32"),
                "target": target_b64,
                "grad": True,
                "encoding": "base64",
            }
            for form, doc in (("nested", nested), ("base64", packed)):
                cases.append(Case(f"{loss} {label} {form}", loss, dump(doc), form, n))
    return cases


# ---------------------------------------------------------------------------------------------
# The in-process floor: the same body to the same answer with nothing but orjson, numpy, torch


def _floor_tensor(value: Any, form: str) -> torch.Tensor:
    if form == "base64":
        dtype = np.dtype(value["dtype"]).newbyteorder("<")
        raw = base64.b64decode(value["base64"])
        array = np.frombuffer(raw, dtype=dtype).astype(dtype.newbyteorder("="))
        return torch.from_numpy(array.reshape(value["shape"]))
    array = np.asarray(value)
    if array.dtype == np.float64:
        array = array.astype(np.float32)
    return torch.from_numpy(array)


def _floor_encode(tensor: torch.Tensor, form: str) -> Any:
    if form == "base64":
        return _b64(tensor.numpy(), "float32")
    # The service's contract prints each float as the double torch's tolist() gives.
    return tensor.to(torch.float64).numpy()


def floor_answer(case: Case) -> bytes:
    gc.disable()  # the floor parses without the cyclic collector rescanning the lists
    try:
        doc = orjson.loads(case.body)
        tensors = {name: _floor_tensor(doc[name], case.form) for name in ("input", "target")}
    finally:
        gc.enable()
    # "grad": true asks for every differentiable input: mse_loss's target too.
    leaves = {n: t.requires_grad_(True) for n, t in tensors.items() if t.is_floating_point()}
    loss = getattr(F, case.loss)(tensors["input"], tensors["target"])
    grads = torch.autograd.grad(loss, list(leaves.values()))
    answer = {
        "loss": loss.item(),
        "grad": {n: _floor_encode(g, case.form) for n, g in zip(leaves, grads, strict=True)},
        "dtype": "float32",
        "device": "cpu",
    }
    return dump(answer)


def time_calls(call: Callable[[], object], reps: int) -> list[float]:
    call()  # warm-up
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return times


# ---------------------------------------------------------------------------------------------
# Servers


@dataclass(frozen=True)
class Server:
    label: str
    app: str
    workers: int
    env: dict[str, str]


def service(workers: int, torch_threads: int | None = None) -> Server:
    # One load generator is one client: the per-client rate limit would answer it 429.
    env = {
        "LOSS_SERVICE_WORKERS": str(workers),
        "LOSS_SERVICE_LOG_LEVEL": "warning",
        "LOSS_SERVICE_RATE_LIMIT_PER_S": "0",
    }
    label = f"service {workers}w"
    if torch_threads is not None:
        env["LOSS_SERVICE_TORCH_THREADS"] = str(torch_threads)
        label += f" ({torch_threads} torch threads each)"
    return Server(label, "service.main:app", workers, env)


def group_cpu_seconds(pgid: int) -> float:
    """CPU time so far of every thread of every process in a process group (a server and its
    workers), from the scheduler's nanosecond counters."""
    nanoseconds = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            # After the command name: state, ppid, pgrp, ...
            if int(stat.read_text().rsplit(")", 1)[1].split()[2]) != pgid:
                continue
            for task in (stat.parent / "task").iterdir():
                nanoseconds += int((task / "schedstat").read_text().split()[0])
        except (OSError, IndexError, ValueError):
            continue
    return nanoseconds / 1e9


@dataclass(frozen=True)
class Running:
    url: str
    port: int
    pgid: int


@contextlib.contextmanager
def running(server: Server, port: int, scratch: Path) -> Iterator[Running]:
    env = {
        **os.environ,
        **server.env,
        "BENCH_WORKERS": str(server.workers),
        "LOSS_SERVICE_DATA_DIR": str(scratch / "data"),
        "LOSS_SERVICE_DB_PATH": str(scratch / "var" / f"jobs-{port}.sqlite3"),
        "LOSS_SERVICE_MODELS_DIR": str(scratch / "var" / "models"),
        "PYTHONPATH": str(ROOT),
    }
    command = [
        sys.executable, "-m", "uvicorn", server.app, "--host", HOST, "--port", str(port),
        "--workers", str(server.workers), "--loop", "uvloop", "--http", "httptools",
        "--log-level", "warning", "--no-access-log",
    ]  # fmt: skip
    log = (scratch / f"{server.label.split()[0]}.log").open("ab")
    process = subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=log, stderr=log, start_new_session=True
    )
    try:
        _wait_healthy(port, process)
        yield Running(f"http://{HOST}:{port}", port, process.pid)
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=5)
        log.close()


def _wait_healthy(port: int, process: subprocess.Popen[bytes], timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server on port {port} exited with {process.returncode}")
        try:
            conn = http.client.HTTPConnection(HOST, port, timeout=2)
            conn.request("GET", "/healthz")
            if conn.getresponse().status == 200:
                conn.close()
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"the server on port {port} did not become healthy in {timeout_s} s")


class Client:
    """One keep-alive connection; answers are read whole and not parsed."""

    def __init__(self, port: int, timeout_s: float = 120) -> None:
        self.conn = http.client.HTTPConnection(HOST, port, timeout=timeout_s)

    def post(self, case: Case) -> bytes:
        headers = {"Content-Type": "application/json"}
        self.conn.request("POST", case.path, body=case.body, headers=headers)
        response = self.conn.getresponse()
        content = response.read()
        if response.status != 200:
            raise RuntimeError(f"{case.name}: HTTP {response.status}: {content[:300]!r}")
        return content

    def close(self) -> None:
        self.conn.close()


# ---------------------------------------------------------------------------------------------
# Load


@dataclass(frozen=True)
class WrkResult:
    rps: float
    p50_ms: float
    p99_ms: float
    max_ms: float
    requests: int
    cpu_us: float  # server CPU time (every worker) per answered request


def wrk(server: Running, case: Case, seconds: float, connections: int, scratch: Path) -> WrkResult:
    cpu_before = group_cpu_seconds(server.pgid)
    result = run_wrk(server.url + case.path, case.body, seconds, scratch, connections)
    cpu = group_cpu_seconds(server.pgid) - cpu_before
    return WrkResult(
        rps=result["rps"],
        p50_ms=result["p50_ms"],
        p99_ms=result["p99_ms"],
        max_ms=result["max_ms"],
        requests=int(result["requests"]),
        cpu_us=cpu / max(1, result["requests"]) * 1e6,
    )


class Probe(threading.Thread):
    """Times one small request every ``interval_s`` while something else loads the server."""

    def __init__(self, port: int, case: Case, interval_s: float = 0.05) -> None:
        super().__init__(daemon=True)
        self.port, self.case, self.interval_s = port, case, interval_s
        self.latencies: list[float] = []
        self.stop = threading.Event()

    def run(self) -> None:
        client = Client(self.port)
        try:
            while not self.stop.is_set():
                start = time.perf_counter()
                client.post(self.case)
                self.latencies.append(time.perf_counter() - start)
                self.stop.wait(self.interval_s)
        finally:
            client.close()


# ---------------------------------------------------------------------------------------------
# The run


@dataclass(frozen=True)
class Plan:
    wrk_seconds: float  # one throughput sample
    rounds: int  # every server started again per round: one sample per body each round
    reps: dict[int, int]  # large requests timed, by element count
    concurrent_seconds: float
    trap: bool  # also run 2 workers with every core's worth of torch threads each


QUICK = Plan(3, 2, {100_000: 5, 1_000_000: 3}, 6, trap=False)
FULL = Plan(5, 3, {100_000: 9, 1_000_000: 5}, 12, trap=True)
LARGE_SIZES = [100_000, 1_000_000]
# Large bodies sent at once by several connections; a probe times small requests meanwhile.
CONCURRENT = [("cross_entropy 100k nested", 4), ("mse_loss 1M nested", 2)]


@dataclass(frozen=True)
class Timings:
    wall: list[float]
    cpu: list[float]
    floor_wall: list[float]
    floor_cpu: list[float]


@dataclass
class Results:
    throughput: dict[tuple[str, str], list[WrkResult]]
    large: dict[tuple[str, str], Timings]
    concurrent: dict[str, tuple[int, WrkResult, list[float]]]
    same_bytes: dict[str, bool]

    def best(self, label: str, case: str) -> WrkResult:
        """The sample with the most requests per second: the one other programs disturbed least."""
        return max(self.throughput[label, case], key=lambda r: r.rps)


def measure_small(
    results: Results, label: str, server: Running, cases: list[Case], plan: Plan, scratch: Path
) -> None:
    for case in cases:
        wrk(server, case, 1, 8, scratch)  # warm-up
        sample = wrk(server, case, plan.wrk_seconds, 8, scratch)
        results.throughput.setdefault((label, case.name), []).append(sample)
        print(f"  {case.name:<28} {sample.rps:8.0f} req/s  {sample.cpu_us:6.0f} us CPU/request")


def measure_large(
    results: Results, label: str, server: Running, cases: list[Case], plan: Plan
) -> None:
    """End to end, one request at a time, each beside a run of the floor on the same body:
    the two see the same load from anything else on the machine. CPU time is counted too
    (the server's threads; the floor's process), which other programs disturb far less."""
    client = Client(server.port)
    try:
        for case in cases:
            client.post(case)
            floor_answer(case)
            timed = Timings([], [], [], [])
            for _ in range(plan.reps[case.elements]):
                cpu = group_cpu_seconds(server.pgid)
                start = time.perf_counter()
                client.post(case)
                timed.wall.append(time.perf_counter() - start)
                timed.cpu.append(group_cpu_seconds(server.pgid) - cpu)
                start, cpu = time.perf_counter(), time.process_time()
                floor_answer(case)
                timed.floor_wall.append(time.perf_counter() - start)
                timed.floor_cpu.append(time.process_time() - cpu)
            results.large[label, case.name] = timed
            print(
                f"  {case.name:<28} {ms(min(timed.wall)):>8} ms best "
                f"(floor {ms(min(timed.floor_wall))} ms)"
            )
    finally:
        client.close()


def measure_concurrent(
    results: Results, server: Running, large: list[Case], probe_case: Case, plan: Plan,
    scratch: Path,
) -> None:  # fmt: skip
    for name, connections in CONCURRENT:
        case = _case(large, name)
        probe = Probe(server.port, probe_case)
        probe.start()
        result = wrk(server, case, plan.concurrent_seconds, connections, scratch)
        probe.stop.set()
        probe.join()
        results.concurrent[name] = (connections, result, probe.latencies)
        print(
            f"  {name:<28} x{connections}: p50 {result.p50_ms:.0f} ms, p99 {result.p99_ms:.0f} "
            f"ms, max {result.max_ms:.0f} ms; small probe p99 {ms(_pct(probe.latencies, 99))} ms"
        )


def cpu_per_call(call: Callable[[], object], n: int = 500, rounds: int = 5) -> float:
    """Microseconds of this process's CPU per call, best of ``rounds``."""
    call()
    best = math.inf
    for _ in range(rounds):
        start = time.process_time()
        for _ in range(n):
            call()
        best = min(best, (time.process_time() - start) / n)
    return best * 1e6


def asgi_caller(app: Any, case: Case) -> Callable[[], None]:
    """Calls an ASGI app in this process with ``case`` as one POST, the answer thrown away."""
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
        "scheme": "http", "path": case.path, "raw_path": case.path.encode(), "root_path": "",
        "query_string": b"", "client": (HOST, 1), "server": (HOST, 80),
        "headers": [(b"content-type", b"application/json"),
                    (b"content-length", str(len(case.body)).encode())],
    }  # fmt: skip
    loop = asyncio.new_event_loop()

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": case.body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start" and message["status"] != 200:
            raise RuntimeError(f"{case.name}: HTTP {message['status']} in process")

    def call() -> None:
        loop.run_until_complete(app(dict(scope, state={}), receive, send))

    return call


def where_time_goes(small: list[Case], scratch: Path) -> dict[tuple[str, str], float]:
    """CPU per small request, layer by layer, in this process (no HTTP, no other program)."""
    sys.path.insert(0, str(ROOT))
    from benchmarks.reference_apps.ceiling import app as ceiling_app
    from service.app import create_app
    from service.http.loss_requests import compute
    from service.losses.registry import resolve
    from service.settings import Settings
    from service.tensors.wirejson import dumps, loads

    folders = {
        "data_dir": scratch / "data",
        "db_path": scratch / "var" / "inprocess.sqlite3",
        "models_dir": scratch / "var" / "models",
    }
    quiet = create_app(Settings(access_log=False, **folders))  # type: ignore[arg-type]
    logged = create_app(Settings(**folders))  # type: ignore[arg-type]
    with open(os.devnull, "w") as devnull:
        for handler in logging.getLogger().handlers:
            if isinstance(handler, logging.StreamHandler):
                handler.setStream(devnull)
        settings = Settings(**folders)  # type: ignore[arg-type]
        costs: dict[tuple[str, str], float] = {}
        for case in small:
            spec = resolve(case.loss)
            doc = orjson.loads(case.body)
            x = torch.tensor(doc["input"], dtype=torch.float32)
            y = torch.tensor(doc["target"], dtype=torch.float32)

            def torch_only(x: torch.Tensor = x, y: torch.Tensor = y) -> object:
                a, b = x.detach().requires_grad_(True), y.detach().requires_grad_(True)
                return torch.autograd.grad(F.mse_loss(a, b), [a, b])

            def work(case: Case = case, spec: Any = spec) -> object:
                return dumps(compute(spec, loads(case.body), settings))

            layers: dict[str, Callable[[], object]] = {
                LAYERS[0]: asgi_caller(ceiling_app, case),
                LAYERS[1]: asgi_caller(logged, case),
                LAYERS[2]: asgi_caller(quiet, case),
                LAYERS[3]: work,
                LAYERS[4]: torch_only,
            }
            for layer, call in layers.items():
                costs[layer, case.name] = cpu_per_call(call)
    return costs


LAYERS = [
    "bare FastAPI endpoint (the ceiling app)",
    "service app as configured (access log on)",
    "service app, access log off",
    "the route's work: orjson, envelope, decode, torch, encode, orjson",
    "torch alone: mse_loss and autograd.grad on ready tensors",
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="shorter runs (about 2 minutes)")
    parser.add_argument("--port", type=int, default=8871, help="loopback port the servers use")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is needed: apt-get install wrk")
    plan = QUICK if args.quick else FULL
    torch.set_num_threads(CORES)  # the floor gets what a single-worker service gets
    started = time.monotonic()
    small, large = small_cases(), large_cases(LARGE_SIZES)
    results = Results({}, {}, {}, {})
    ceiling = Server("ceiling", "benchmarks.reference_apps.ceiling:app", 1, {})
    straight = Server("straightforward", "benchmarks.reference_apps.straightforward:app", 1, {})
    multi = [service(2)] + ([service(2, torch_threads=CORES)] if plan.trap else [])

    with tempfile.TemporaryDirectory(prefix="bench-losses-") as tmp:
        scratch = Path(tmp)
        print("in process: CPU per small request, layer by layer")
        layers = where_time_goes(small, scratch)
        # Rounds, so that a change in the machine's other load falls on every server alike.
        for round_ in range(1, plan.rounds + 1):
            for server in (ceiling, straight, service(1), *multi):
                with running(server, args.port, scratch) as live:
                    print(f"{server.label} (round {round_} of {plan.rounds})")
                    measure_small(results, server.label, live, small, plan, scratch)
                    if round_ == 1:
                        measure_large_requests(results, server, live, small, large, plan, scratch)

    report(plan, small, large, results, multi)
    print("\n### Where a small request's CPU goes (in this process, us per request)\n")
    rows = [[layer] + [f"{layers[layer, c.name]:.0f}" for c in small] for layer in LAYERS]
    print(table(["layer", *[c.name for c in small]], rows))
    print(f"\n(total {time.monotonic() - started:.0f} s)")


SERVICE = "service 1w"


def measure_large_requests(
    results: Results,
    server: Server,
    live: Running,
    small: list[Case],
    large: list[Case],
    plan: Plan,
    scratch: Path,
) -> None:
    if server.label == "straightforward":
        nested_100k = [c for c in large if c.form == "nested" and c.elements < 1_000_000]
        measure_large(results, server.label, live, nested_100k, plan)
    if server.label != SERVICE:
        return
    measure_large(results, server.label, live, large, plan)
    client = Client(live.port)
    for case in large:
        results.same_bytes[case.name] = client.post(case) == floor_answer(case)
    client.close()
    print("  concurrent large requests")
    measure_concurrent(results, live, large, small[0], plan, scratch)


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f}"


def _case(cases: list[Case], name: str) -> Case:
    return next(c for c in cases if c.name == name)


def _pct(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, round(pct / 100 * (len(ordered) - 1)))]


def table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def report(
    plan: Plan, small: list[Case], large: list[Case], results: Results, multi: list[Server]
) -> None:
    print(
        f"\n## Results ({platform.machine()}, {CORES} cores, torch {torch.__version__}, "
        f"load average before the run's end {os.getloadavg()[0]:.1f})\n"
    )
    print(
        f"### Small requests: one worker, wrk -t1 -c8, best of {plan.rounds} rounds of "
        f"{plan.wrk_seconds:g} s\n"
    )
    rows = []
    for case in small:
        c, s, v = (
            results.best(label, case.name) for label in ("ceiling", "straightforward", SERVICE)
        )
        rows.append(
            [
                case.name,
                f"{c.rps:.0f} ({c.cpu_us:.0f} us)",
                f"{s.rps:.0f} ({s.cpu_us:.0f} us)",
                f"{v.rps:.0f} ({v.cpu_us:.0f} us)",
                f"{v.rps / s.rps:.2f}x",
                f"{v.rps / c.rps:.0%}",
                f"{v.p50_ms:.1f} / {v.p99_ms:.1f}",
            ]
        )
    header = ["body", "ceiling", "straightforward", "service", "service / straightforward"]
    print("req/s (server CPU per request)\n")
    print(table([*header, "service / ceiling", "service p50 / p99 ms"], rows))

    print("\n### Workers: small requests, req/s (server CPU per request)\n")
    labels = [SERVICE] + [s.label for s in multi]
    rows = []
    for case in small:
        bests = [results.best(label, case.name) for label in labels]
        rows.append(
            [case.name]
            + [f"{r.rps:.0f} ({r.cpu_us:.0f} us)" for r in bests]
            + [f"{bests[1].rps / bests[0].rps:.2f}x"]
        )
    print(table(["body", *labels, "2 workers / 1"], rows))

    print(
        "\n### Large requests, one at a time, end to end (ms, best / median of "
        f"{plan.reps[LARGE_SIZES[0]]} or {plan.reps[LARGE_SIZES[-1]]}; the floor timed beside "
        "each)\n"
    )
    rows = []
    for case in large:
        t = results.large[SERVICE, case.name]
        straight = results.large.get(("straightforward", case.name))
        rows.append(
            [
                case.name,
                f"{len(case.body) / 1e6:.1f} MB",
                f"{ms(min(t.floor_wall))} / {ms(statistics.median(t.floor_wall))}",
                f"{ms(min(t.wall))} / {ms(statistics.median(t.wall))}",
                f"{min(t.wall) / min(t.floor_wall):.2f}x / "
                f"{statistics.median(t.wall) / statistics.median(t.floor_wall):.2f}x",
                f"{ms(min(t.cpu))} / {ms(min(t.floor_cpu))} = {min(t.cpu) / min(t.floor_cpu):.2f}x",
                f"{ms(min(straight.wall))}" if straight else "-",
                "yes" if results.same_bytes.get(case.name) else "no",
            ]
        )
    header = ["request", "body", "floor", "service", "service / floor", "CPU ms: server / floor"]
    print(table([*header, "straightforward (best)", "same bytes as floor"], rows))

    print("\n### Concurrent large requests (service, one worker)\n")
    rows = []
    for name, (connections, result, latencies) in results.concurrent.items():
        rows.append(
            [
                f"{name} x{connections}",
                f"{result.requests}",
                f"{result.p50_ms:.0f} / {result.p99_ms:.0f} / {result.max_ms:.0f}",
                f"{ms(_pct(latencies, 50))} / {ms(_pct(latencies, 99))} / "
                f"{ms(max(latencies) if latencies else float('nan'))}",
            ]
        )
    header = ["load", "answered", "large p50 / p99 / max ms", "small probe p50 / p99 / max ms"]
    print(table(header, rows))


if __name__ == "__main__":
    main()
