"""Where a job's first seconds go, and whether the same seed gives the same numbers.

1. CPU seconds of each start-up step of a training process, measured in a fresh interpreter
   (``resource.getrusage``, so a busy machine does not inflate them): ``import torch``, the
   service's job modules, the first optimizer (it imports ``torch._dynamo``), reading and
   normalising the dataset.
2. The real path: ``python -m service`` started with a data folder; the same job (same seed,
   same config) submitted ``--runs`` times in a row; for each, wall seconds from ``POST`` to
   the process's ``started`` message, to the ``training`` phase and to the first step (the job
   record polled every 20 ms; progress events every 50 ms), and the job's own timings.
3. The numbers of those runs compared bit for bit (train loss, test loss, test accuracy per
   epoch, and the trained weights), for each ``--threads`` value (torch threads of the job's
   process, ``LOSS_SERVICE_JOB_TORCH_THREADS``).

    python benchmarks/bench_job_start.py                 # real-MNIST 8,000/2,000 split
    python benchmarks/bench_job_start.py --dataset fashion-mnist   # full, 60,000/10,000

Data: the real MNIST test set in ../shared/data/mnist split 8,000 / 2,000 in file order (else
the tests' fixture), or Fashion-MNIST from /usr/share/datasets/fashion-mnist
(``apt-get install dataset-fashion-mnist``). Results: benchmarks/results/job_start.json.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import platform
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from service.datasets.catalog import FILE_NAMES  # noqa: E402
from service.datasets.split import make_split  # noqa: E402

MNIST_TEST = ROOT.parent / "shared" / "data" / "mnist"
FIXTURE = ROOT / "tests" / "fixtures" / "mnist"
FASHION = Path("/usr/share/datasets/fashion-mnist")

# Run in a fresh interpreter: CPU seconds of each start-up step of a job's process, in order.
STEPS = r"""
import json, resource, sys, time
from pathlib import Path

def cpu():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime

out, last, wall = {}, cpu(), time.perf_counter()
def step(name):
    global last, wall
    now, w = cpu(), time.perf_counter()
    out[name] = {"cpu_s": now - last, "wall_s": w - wall}
    last, wall = now, w

import torch
step("import torch")
import service.jobs.worker
from service.datasets import load_split
from service.datasets.catalog import FILE_NAMES
from service.jobs.training import normalise
step("import the job modules")
torch.set_num_threads(1)
torch.optim.Adam([torch.zeros(1, requires_grad=True)])
step("first optimizer (imports torch._dynamo)")
folder = Path(sys.argv[1])
split = load_split({role: folder / name for role, name in FILE_NAMES.items()})
step("read and decompress the IDX files")
normalise(split.train_images), normalise(split.test_images)
step("normalise to float32")
print(json.dumps(out))
"""


def startup_steps(folder: Path) -> dict[str, dict[str, float]]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        [sys.executable, "-c", STEPS, str(folder)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )
    steps: dict[str, dict[str, float]] = json.loads(done.stdout)
    return steps


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def service(state: Path, data: Path, threads: int) -> Iterator[str]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOSS_SERVICE_")}
    env.update(
        PYTHONPATH=str(ROOT),
        LOSS_SERVICE_STATE_DIR=str(state),
        LOSS_SERVICE_DATA_DIR=str(data),
        LOSS_SERVICE_LOG_LEVEL="warning",
        LOSS_SERVICE_JOB_TORCH_THREADS=str(threads),
        LOSS_SERVICE_JOB_PROGRESS_INTERVAL_S="0.05",
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "service", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                    break
            if process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("the service did not start")
            time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=60)


def run_job(client: httpx.Client, config: dict[str, Any]) -> dict[str, Any]:
    """Submit ``config``; wall seconds to each start-up milestone; the finished record."""
    start = time.perf_counter()
    job = client.post("/v1/jobs/mnist", json=config).json()
    seen: dict[str, float] = {}
    deadline = start + 1800
    while True:
        record = client.get(f"/v1/jobs/{job['id']}").json()
        now = time.perf_counter() - start
        progress = record.get("progress") or {}
        if record.get("device") and "process started" not in seen:
            seen["process started"] = now
        if progress.get("phase") in {"training", "done"} and "data ready" not in seen:
            seen["data ready"] = now
        if progress.get("global_step") and "first step reported" not in seen:
            seen["first step reported"] = now
        if record["status"] in {"succeeded", "failed", "cancelled"}:
            break
        if now > deadline - start:
            raise SystemExit(f"job {job['id']} still {record['status']}")
        time.sleep(0.02)
    if record["status"] != "succeeded":
        raise SystemExit(f"job failed: {record.get('error')}")
    weights = client.get(f"/v1/jobs/{job['id']}/model").content
    return {"milestones_s": seen, "record": record, "weights_md5": tensors_md5(weights)}


def tensors_md5(safetensors_file: bytes) -> str:
    """MD5 of the tensors' bytes only (the file's metadata names the job, which differs)."""
    from safetensors.numpy import load

    tensors = load(safetensors_file)
    digest = hashlib.md5(usedforsecurity=False)
    for name in sorted(tensors):
        digest.update(name.encode() + tensors[name].tobytes())
    return digest.hexdigest()


def numbers(record: dict[str, Any]) -> list[tuple[float, float, float]]:
    return [(m["train_loss"], m["test_loss"], m["test_accuracy"]) for m in record["metrics"]]


def prepare_data(dataset: str, scratch: Path, mnist_test: Path) -> tuple[Path, str]:
    data = scratch / "data"
    if dataset == "fashion-mnist":
        if not FASHION.is_dir():
            raise SystemExit("apt-get install dataset-fashion-mnist")
        (data / "fashion-mnist").mkdir(parents=True)
        for name in FILE_NAMES.values():
            shutil.copy(FASHION / name, data / "fashion-mnist" / name)
        return data, "Fashion-MNIST 60,000 / 10,000"
    if (mnist_test / FILE_NAMES["test_images"]).is_file():
        make_split(mnist_test, data / "mnist", test=2000, seed=None)
        return data, "real-MNIST split 8,000 / 2,000 (file order)"
    shutil.copytree(FIXTURE, data / "mnist")
    return data, "tests' real-MNIST fixture 1,000 / 200"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", choices=["mnist", "fashion-mnist"], default="mnist")
    parser.add_argument(
        "--mnist-test",
        type=Path,
        default=MNIST_TEST,
        help="folder of the real MNIST test set (t10k-*); default: ../shared/data/mnist",
    )
    parser.add_argument("--runs", type=int, default=3, help="jobs per thread count")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--threads", default="1,2", help="job torch threads to compare")
    parser.add_argument(
        "--json", type=Path, default=ROOT / "benchmarks" / "results" / "job_start.json"
    )
    args = parser.parse_args()
    config = {"dataset": args.dataset, "epochs": args.epochs, "seed": 0}
    report: dict[str, Any] = {
        "machine": {
            "cpu_count": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
            "load_average_before": os.getloadavg(),
        },
        "config": config,
    }
    with tempfile.TemporaryDirectory() as tmp:
        data, described = prepare_data(args.dataset, Path(tmp), args.mnist_test)
        report["data"] = described
        print(f"data: {described}; load average {os.getloadavg()}", flush=True)
        steps = startup_steps(data / args.dataset)
        report["startup_steps"] = steps
        print("\nstart-up steps of a job's process (fresh interpreter, 1 thread):")
        for name, value in steps.items():
            print(f"  {name:<42} {value['cpu_s']:6.2f} CPU s  {value['wall_s']:6.2f} wall s")
        runs: dict[str, list[dict[str, Any]]] = {}
        for threads in [int(t) for t in args.threads.split(",")]:
            state = Path(tmp) / f"state-{threads}"
            with service(state, data, threads) as url, httpx.Client(base_url=url) as client:
                runs[str(threads)] = [run_job(client, config) for _ in range(args.runs)]
        report["load_average_after"] = os.getloadavg()
    summary: dict[str, Any] = {}
    print("\nthe same job, submitted again and again (wall seconds after POST):")
    for threads, results in runs.items():
        for i, r in enumerate(results, 1):
            m, t = r["milestones_s"], r["record"]["timings"]
            print(
                f"  threads {threads} run {i}: started {m.get('process started', 0):.2f}, "
                f"data ready {m.get('data ready', 0):.2f}, first step "
                f"{m.get('first step reported', 0):.2f} (job timings: worker_start_s "
                f"{t.get('worker_start_s', 0):.2f}, data_s {t.get('data_s', 0):.2f})"
            )
        first = results[0]
        summary[threads] = {
            "metrics_identical": all(
                numbers(r["record"]) == numbers(first["record"]) for r in results
            ),
            "weights_identical": all(r["weights_md5"] == first["weights_md5"] for r in results),
            "metrics": numbers(first["record"]),
            "weights_md5": first["weights_md5"],
        }
    threads_seen = list(summary)
    print("\nsame seed, bit for bit:")
    for threads, s in summary.items():
        print(
            f"  threads {threads}: metrics identical across runs: {s['metrics_identical']}; "
            f"weights identical: {s['weights_identical']}; epochs (train loss, test loss, "
            f"accuracy): {s['metrics']}"
        )
    if len(threads_seen) > 1:
        a, b = summary[threads_seen[0]], summary[threads_seen[1]]
        across = {
            "metrics_identical": a["metrics"] == b["metrics"],
            "weights_identical": a["weights_md5"] == b["weights_md5"],
        }
        summary["across_thread_counts"] = across
        print(f"  threads {threads_seen[0]} vs {threads_seen[1]}: {across}")
    report["runs"] = {
        threads: [
            {
                "milestones_s": r["milestones_s"],
                "timings": r["record"]["timings"],
                "metrics": numbers(r["record"]),
                "weights_md5": r["weights_md5"],
            }
            for r in results
        ]
        for threads, results in runs.items()
    }
    report["reproducibility"] = summary
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nwrote {args.json}")


if __name__ == "__main__":
    main()
