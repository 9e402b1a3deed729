"""The fleet against the embedded default: 20 short jobs, and how fast a job starts.

Side by side in one run, on one machine:

1. **Throughput**: 20 short jobs posted at once, two at a time, (a) by the embedded default
   (SQLite, local executor, a warm spare process) and (b) through the fleet: PostgreSQL, a Ray
   cluster of a head and two worker nodes (one CPU each, on 127.0.0.2), and an API replica with
   ``LOSS_SERVICE_JOBS_EXECUTOR=ray`` and two warm actors. Wall time from the first POST to the
   last job's end, and each job's ``queued_s``, ``worker_start_s`` and ``total_s``.
2. **Start latency, cold and warm**: ``worker_start_s`` (launch to the run's ``started``) and
   POST to the first training step, for one job at a time: local without a spare (cold, a
   fresh interpreter imports torch) and with a ready spare (warm); Ray on a new actor (cold)
   and on an idle one (warm).

    python benchmarks/bench_fleet.py            # writes benchmarks/results/fleet.md

Every process it starts (PostgreSQL, the Ray nodes, the servers) is stopped by PID.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support.live import Server, live_server  # noqa: E402 - after the path is set
from tests.support.postgres import PostgresServer, start_postgres  # noqa: E402
from tests.support.ray_cluster import RayCluster  # noqa: E402

JOB = {"epochs": 1, "train_samples": 512, "test_samples": 64, "log_every": 8}
RESULTS = ROOT / "benchmarks" / "results" / "fleet.md"
TERMINAL = {"succeeded", "failed", "cancelled"}
# Two jobs train at once; all 20 may wait; one client posting them all is not rate limited.
COMMON = {
    "max_concurrent_jobs": "2",
    "max_queued_jobs": "32",
    "rate_limit_per_s": "0",
    "job_progress_interval_s": "0.05",
}


def _post(server: Server, seed: int) -> tuple[str, float]:
    response = httpx.post(f"{server.url}/v1/jobs/mnist", json={**JOB, "seed": seed}, timeout=30)
    response.raise_for_status()
    return str(response.json()["id"]), time.monotonic()


def _job(server: Server, job_id: str) -> dict[str, Any]:
    response = httpx.get(f"{server.url}/v1/jobs/{job_id}", timeout=30)
    response.raise_for_status()
    body: dict[str, Any] = response.json()
    return body


def _until(server: Server, job_id: str, done: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        job = _job(server, job_id)
        if done(job):
            return job
        time.sleep(0.02)
    raise RuntimeError(f"job {job_id} did not get there in 600 s")


def throughput(server: Server, jobs: int) -> dict[str, Any]:
    start = time.monotonic()
    ids = [_post(server, seed)[0] for seed in range(jobs)]
    records = [_until(server, job_id, lambda j: j["status"] in TERMINAL) for job_id in ids]
    wall = time.monotonic() - start
    bad = [r["status"] for r in records if r["status"] != "succeeded"]
    if bad:
        raise RuntimeError(f"jobs did not succeed: {bad}")
    timings = [r["timings"] for r in records]
    return {
        "wall_s": wall,
        "jobs_per_min": jobs / wall * 60,
        "worker_start_s": statistics.median(t["worker_start_s"] for t in timings),
        "worker_start_max_s": max(t["worker_start_s"] for t in timings),
        "total_s": statistics.median(t["total_s"] for t in timings),
    }


def one_start(server: Server, seed: int) -> dict[str, float]:
    job_id, posted = _post(server, seed)
    _until(server, job_id, lambda j: ((j.get("progress") or {}).get("global_step") or 0) > 0)
    first_step = time.monotonic() - posted
    record = _until(server, job_id, lambda j: j["status"] in TERMINAL)
    return {"worker_start_s": record["timings"]["worker_start_s"], "first_step_s": first_step}


def _local(home: Path, **settings: str) -> AbstractContextManager[Server]:
    return live_server(home, **COMMON, **settings)


def _fleet(
    home: Path, postgres: PostgresServer, cluster: RayCluster, db: str, **settings: str
) -> AbstractContextManager[Server]:
    postgres.admin(f'CREATE DATABASE "{db}" TEMPLATE template0')
    return live_server(
        home,
        database_url=postgres.url_for(db),
        jobs_executor="ray",
        ray_address=cluster.address,
        **COMMON,
        **settings,
    )


def _wait_spare(server: Server) -> None:
    """Give the spare (or the warm actors) time to import torch."""
    time.sleep(15)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--jobs", type=int, default=20)
    args = parser.parse_args()
    rows: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="bench-fleet-") as tmp:
        root = Path(tmp)
        with _local(root / "local", job_warm_workers="1") as server:
            _wait_spare(server)
            rows["local_warm"] = one_start(server, 1000)
            rows["local_throughput"] = throughput(server, args.jobs)
        with _local(root / "cold", job_warm_workers="0") as server:
            rows["local_cold"] = one_start(server, 1001)
        postgres = start_postgres()
        try:
            with RayCluster(num_cpus=0, worker_nodes=2, worker_cpus=1) as cluster:
                with _fleet(
                    root / "ray-cold", postgres, cluster, "cold", ray_warm_actors="0"
                ) as server:
                    rows["ray_cold"] = one_start(server, 1002)
                    rows["ray_warm"] = one_start(server, 1003)  # the same actor, now idle
                with _fleet(
                    root / "fleet", postgres, cluster, "fleet", ray_warm_actors="2"
                ) as server:
                    _wait_spare(server)
                    rows["ray_throughput"] = throughput(server, args.jobs)
                assert cluster.non_loopback_connections() == []
        finally:
            postgres.stop()
    write(rows, args.jobs)


def write(rows: dict[str, Any], jobs: int) -> None:
    local, fleet = rows["local_throughput"], rows["ray_throughput"]
    lines = [
        "# The fleet against the embedded default",
        "",
        "`python benchmarks/bench_fleet.py` "
        f"({time.strftime('%Y-%m-%d')}, {platform.machine()}, one machine: "
        "the Ray nodes and PostgreSQL share its cores with the API)",
        "",
        f"## {jobs} short jobs ({JOB['train_samples']} images, 1 epoch), two at a time",
        "",
        "| | wall | jobs/min | median worker_start_s | max worker_start_s | median total_s |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, row in (
        ("local executor (SQLite, warm spare)", local),
        ("fleet (PostgreSQL, Ray: 2 worker nodes, 2 warm actors)", fleet),
    ):
        lines.append(
            f"| {name} | {row['wall_s']:.1f} s | {row['jobs_per_min']:.1f} | "
            f"{row['worker_start_s']:.3f} s | {row['worker_start_max_s']:.3f} s | "
            f"{row['total_s']:.2f} s |"
        )
    lines += [
        "",
        f"Fleet / local wall time: **{fleet['wall_s'] / local['wall_s']:.2f}x**.",
        "",
        "## Job start, one job at a time",
        "",
        "| | worker_start_s | POST to first step |",
        "| --- | ---: | ---: |",
    ]
    for key, name in (
        ("local_cold", "local, cold (no spare: a fresh interpreter)"),
        ("local_warm", "local, warm (a ready spare)"),
        ("ray_cold", "Ray, cold (a new actor)"),
        ("ray_warm", "Ray, warm (an idle actor)"),
    ):
        row = rows[key]
        lines.append(f"| {name} | {row['worker_start_s']:.3f} s | {row['first_step_s']:.3f} s |")
    RESULTS.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
