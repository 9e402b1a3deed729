"""Does the loss API stay responsive while a training job runs? (issue: jobs, "Speed").

For each job setting below, one uvicorn server (``python -m service``, 1 worker) is started
with a data folder holding full Fashion-MNIST; small loss requests (``POST /v1/losses/mse_loss``,
the seed article's 3-element example, with gradients) are driven by ``wrk`` (1 thread,
8 connections) for requests per second and latency, first with no job, then while a
Fashion-MNIST job (seed recipe, enough epochs to outlast the measurement) trains. The job's own
speed (samples/s) is read from its record at the end of the window, then it is cancelled.

The job's process runs with 1 or 2 torch threads (``LOSS_SERVICE_JOB_TORCH_THREADS``) at nice
10 or 0 (``LOSS_SERVICE_JOB_NICE``).

    python benchmarks/bench_jobs_responsiveness.py          # about 2 minutes

Needs ``wrk`` (``apt-get install wrk``) and ``apt-get install dataset-fashion-mnist``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
from wrk_load import run_wrk

ROOT = Path(__file__).resolve().parent.parent

# The seed article's MSE example, with gradients: a small loss request.
SMALL_PATH = "/v1/losses/mse_loss"
SMALL_BODY = b'{"input": [1.5, 2.0, 3.2], "target": [1.0, 2.5, 2.8], "grad": true}'


def wrk(url: str, seconds: float, scratch: Path) -> dict[str, float]:
    """Requests per second and latency of small loss requests (wrk, 1 thread, 8 connections)."""
    return run_wrk(url + SMALL_PATH, SMALL_BODY, seconds, scratch)


FASHION = Path("/usr/share/datasets/fashion-mnist")
SETUPS = {
    "1 thread, nice 10": {"LOSS_SERVICE_JOB_TORCH_THREADS": "1", "LOSS_SERVICE_JOB_NICE": "10"},
    "2 threads, nice 10": {"LOSS_SERVICE_JOB_TORCH_THREADS": "2", "LOSS_SERVICE_JOB_NICE": "10"},
    "2 threads, nice 0": {"LOSS_SERVICE_JOB_TORCH_THREADS": "2", "LOSS_SERVICE_JOB_NICE": "0"},
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def server(scratch: Path, env_extra: dict[str, str]) -> Iterator[str]:
    port = free_port()
    data = scratch / "data"
    data.mkdir(exist_ok=True)
    link = data / "fashion-mnist"
    if not link.exists():
        link.symlink_to(FASHION)
    env = {
        **os.environ,
        "LOSS_SERVICE_DATA_DIR": str(data),
        "LOSS_SERVICE_DB_PATH": str(scratch / f"jobs-{port}.sqlite3"),
        "LOSS_SERVICE_MODELS_DIR": str(scratch / "models"),
        "LOSS_SERVICE_LOG_LEVEL": "warning",
        "LOSS_SERVICE_RATE_LIMIT_PER_S": "0",  # one load generator is one client
        "PYTHONPATH": str(ROOT),
        **env_extra,
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "service", "--port", str(port)],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError("the server did not start")
            time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)


def measure(url: str, seconds: float, scratch: Path) -> dict[str, Any]:
    wrk(url, 1, scratch)  # warm-up
    idle = wrk(url, seconds, scratch)
    job = httpx.post(url + "/v1/jobs/mnist", json={"dataset": "fashion-mnist", "epochs": 100})
    job.raise_for_status()
    job_id = job.json()["id"]
    deadline = time.monotonic() + 60
    while (httpx.get(f"{url}/v1/jobs/{job_id}").json().get("progress") or {}).get(
        "global_step"
    ) is None:
        if time.monotonic() > deadline:
            raise RuntimeError("the job did not start training")
        time.sleep(0.1)
    time.sleep(1.0)

    def steps() -> tuple[float, int]:
        progress = httpx.get(f"{url}/v1/jobs/{job_id}").json()["progress"]
        return time.monotonic(), int(progress["global_step"])

    t0, s0 = steps()
    busy = wrk(url, seconds, scratch)
    t1, s1 = steps()
    time.sleep(seconds / 2)  # the job alone, for comparison
    t2, s2 = steps()
    during = 64 * (s1 - s0) / (t1 - t0)
    alone = 64 * (s2 - s1) / (t2 - t1)
    cancelled = httpx.delete(f"{url}/v1/jobs/{job_id}", timeout=30).json()
    return {
        "idle": idle,
        "with_job": busy,
        "throughput_kept": busy["rps"] / idle["rps"],
        "job_samples_per_s_under_load": during,
        "job_samples_per_s_alone": alone,
        "job_status_after_cancel": cancelled["status"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument(
        "--json", type=Path, default=ROOT / "benchmarks" / "results" / "jobs_responsiveness.json"
    )
    args = parser.parse_args()
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for label, env in SETUPS.items():
            with server(Path(tmp), env) as url:
                results[label] = measure(url, args.seconds, Path(tmp))
            r = results[label]
            print(
                f"{label}: idle {r['idle']['rps']:.0f} req/s (p99 {r['idle']['p99_ms']:.1f} ms)"
                f", with a job {r['with_job']['rps']:.0f} req/s (p99 "
                f"{r['with_job']['p99_ms']:.1f} ms) = {100 * r['throughput_kept']:.0f}% kept; "
                f"job {r['job_samples_per_s_under_load']:.0f} samples/s under load, "
                f"{r['job_samples_per_s_alone']:.0f} alone",
                flush=True,
            )
    report = {"cpu_count": os.cpu_count(), "seconds": args.seconds, "results": results}
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
