"""The CUDA paths of the loss service, checked end to end in one command (no network).

    bash benchmarks/gpu_check.sh                     # on a machine with an NVIDIA GPU
    bash benchmarks/gpu_check.sh --rehearse-on-cpu   # every step on the CPU: checks the script

Steps, each a row of the summary table printed at the end:

1. ``property``: ``tests/test_losses_property.py`` with ``LOSS_TEST_DEVICE=cuda``: every loss
   and gradient of the catalogue equal to torch on the GPU, in float16, bfloat16, float32 and
   float64 and every wire form (``LOSS_TEST_EXAMPLES`` examples per loss, 20 here).
2. ``index range``: out-of-range class indices (and a probability outside [0, 1]) sent with
   ``device: cuda`` to every loss that takes them: each a clean 422 naming the field, and after
   all of them the CUDA context still computes (a request answers 200, torch synchronises).
3. ``evaluate``: ``POST /v1/evaluate`` with the catalogue's examples on cuda, each answer equal
   to the loss's own endpoint.
4. ``training``: a training job on cuda over the MNIST fixture (``tests/fixtures/mnist``) to
   its end (``succeeded``, device ``cuda:0``, accuracy above chance).
5. ``large``: the loss benchmark's large requests (``benchmarks/bench_losses.py``: 100k and
   1M elements, mse_loss and cross_entropy, nested JSON and base64) on cpu and on cuda, median
   seconds end to end in process, and the two answers agreeing.

Exit status: 0 every step passed; 1 a step failed; 3 no GPU was found (nothing was run; the
script says so on its last line).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks")]

from bench_losses import large_cases  # noqa: E402

from service.app import create_app  # noqa: E402
from service.http.examples import LOSS_EXAMPLES  # noqa: E402
from service.settings import Settings  # noqa: E402

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
    from fastapi.testclient import TestClient

NO_GPU = 3
FIXTURE = ROOT / "tests" / "fixtures" / "mnist"


@dataclass
class Row:
    step: str
    passed: bool
    seconds: float
    detail: str


def client(root: Path) -> TestClient:
    settings = Settings(
        data_dir=root / "data",
        db_path=root / "var" / "jobs.sqlite3",
        models_dir=root / "var" / "models",
        job_progress_interval_s=0.2,
        log_level="warning",
        access_log=False,
        compute_timeout_s=300.0,
    )
    return TestClient(create_app(settings), raise_server_exceptions=False)


def post(api: TestClient, path: str, body: Any) -> Any:
    return api.post(path, content=orjson.dumps(body), headers={"content-type": "application/json"})


# ---------------------------------------------------------------------------------------------
# Steps: each returns (passed, detail)


def property_tests(device: str, examples: int) -> tuple[bool, str]:
    env = {**os.environ, "LOSS_TEST_DEVICE": device, "LOSS_TEST_EXAMPLES": str(examples)}
    env.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # deterministic cuBLAS (see the tests)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    command = [sys.executable, "-m", "pytest", "tests/test_losses_property.py"]
    command += ["-p", "no:cacheprovider", "--no-header", "-W", "ignore::UserWarning"]
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    lines = [line for line in done.stdout.splitlines() if line.strip()]
    failed = [line for line in lines if line.startswith("FAILED")]
    for line in failed[:20]:
        print(f"    {line}")
    summary = lines[-1] if lines else done.stderr.strip()[-300:]
    return done.returncode == 0, f"{summary} (float16, bfloat16, float32, float64)"


OUT_OF_RANGE: list[tuple[str, dict[str, Any], list[Any]]] = [
    ("cross_entropy", {"input": [[0.1, 0.2, 0.3]] * 3, "target": [0, 7, 1]}, ["target", 1]),
    ("nll_loss", {"input": [[-1.0, -2.0, -0.5]] * 2, "target": [-5, 1]}, ["target", 0]),
    ("multi_margin_loss", {"input": [[0.1, 0.2, 0.3]] * 2, "target": [0, 3]}, ["target", 1]),
    ("multilabel_margin_loss", {"input": [[0.1, 0.2, 0.3]], "target": [[0, 5, -1]]}, ["target"]),
    (
        "linear_cross_entropy",
        {"input": [[1.0, 2.0]], "linear_weight": [[1.0, 0.0], [0.0, 1.0]], "target": [2]},
        ["target", 0],
    ),
    (
        "ctc_loss",
        {
            "log_probs": [[[-1.1, -1.2, -1.0]]] * 4,
            "targets": [[1, 9]],
            "input_lengths": [4],
            "target_lengths": [2],
        },
        ["targets"],
    ),
    ("binary_cross_entropy", {"input": [0.5, 1.5], "target": [1.0, 0.0]}, ["input", 1]),
]


def index_range(api: TestClient, device: str) -> tuple[bool, str]:
    bad: list[str] = []
    for name, body, loc in OUT_OF_RANGE:
        response = post(api, f"/v1/losses/{name}", {**body, "device": device})
        errors = response.json().get("errors", [])
        if response.status_code != 422 or not any(
            e["loc"][1 : 1 + len(loc)] == loc for e in errors
        ):
            bad.append(f"{name}: {response.status_code} {response.text[:200]}")
    good = {"input": [[0.1, 0.9, 0.3], [1.0, 0.2, 0.1]], "target": [1, 0], "grad": True}
    after = post(api, "/v1/losses/cross_entropy", {**good, "device": device})
    expected = torch.nn.functional.cross_entropy(
        torch.tensor(good["input"], device=device), torch.tensor(good["target"], device=device)
    )
    if after.status_code != 200 or after.json()["loss"] != expected.item():
        bad.append(f"valid request after them: {after.status_code} {after.text[:200]}")
    if device.startswith("cuda"):
        torch.cuda.synchronize()
        if torch.ones(1, device=device).add(1).item() != 2.0:
            bad.append("CUDA context no longer computes")
    for line in bad:
        print(f"    {line}")
    detail = f"{len(OUT_OF_RANGE)} requests 422 at their field; valid request after: 200"
    return not bad, detail if not bad else f"{len(bad)} wrong: see above"


def evaluate(api: TestClient, device: str) -> tuple[bool, str]:
    bodies = {name: {**body, "device": device} for name, body in LOSS_EXAMPLES.items()}
    items = [{"loss": name, **body} for name, body in bodies.items()]
    response = post(api, "/v1/evaluate", {"requests": items})
    if response.status_code != 200:
        print(f"    {response.text[:300]}")
        return False, f"status {response.status_code}"
    results = response.json()["results"]
    wrong = [
        name
        for name, result in zip(bodies, results, strict=True)
        if result != post(api, f"/v1/losses/{name}", bodies[name]).json()
    ]
    for name in wrong:
        print(f"    {name}: /v1/evaluate differs from its own endpoint")
    return not wrong, f"{len(items)} catalogue examples equal to their own endpoints"


def training(api: TestClient, root: Path, device: str) -> tuple[bool, str]:
    folder = root / "data" / "mnist"
    folder.mkdir(parents=True, exist_ok=True)
    for path in FIXTURE.glob("*.gz"):
        shutil.copy(path, folder / path.name)
    config = {"epochs": 3, "seed": 0, "device": device, "log_every": 5}
    job = post(api, "/v1/jobs/mnist", config).json()
    if "id" not in job:
        return False, f"not started: {job}"
    deadline = time.monotonic() + 300
    while job["status"] in ("queued", "running") and time.monotonic() < deadline:
        time.sleep(0.5)
        job = api.get(f"/v1/jobs/{job['id']}").json()
    accuracy = job["metrics"][-1]["test_accuracy"] if job["metrics"] else float("nan")
    passed = (
        job["status"] == "succeeded"
        and str(job["device"]).startswith(device.split(":")[0])
        and accuracy > 0.6
    )
    return passed, (
        f"{job['status']} on {job['device']}, 3 epochs of 1,000 images, test accuracy "
        f"{accuracy:.3f}, {job['timings'].get('train_s') or 0:.1f} s training"
        + ("" if passed else f"; error: {job.get('error')}")
    )


def large(api: TestClient, devices: list[str], repeats: int) -> tuple[bool, str, list[str]]:
    lines = ["| request | " + " | ".join(f"{d} median s" for d in devices) + " | answers agree |"]
    lines.append("| --- | " + " | ".join("---:" for _ in devices) + " | --- |")
    passed = True
    for case in large_cases([100_000, 1_000_000]):
        document = orjson.loads(case.body)
        times: list[float] = []
        losses: list[float] = []
        for device in devices:
            body = orjson.dumps({**document, "device": device})
            seconds = []
            for _ in range(repeats):
                start = time.perf_counter()
                response = api.post(
                    case.path, content=body, headers={"content-type": "application/json"}
                )
                seconds.append(time.perf_counter() - start)
                if response.status_code != 200:
                    passed = False
                    print(f"    {case.name} on {device}: {response.status_code}")
                    break
            times.append(statistics.median(seconds))
            losses.append(float(response.json()["loss"]) if response.status_code == 200 else 0)
        agree = all(abs(x - losses[0]) <= 1e-4 * max(1.0, abs(losses[0])) for x in losses)
        passed &= agree
        cells = " | ".join(f"{t:.3f}" for t in times)
        lines.append(f"| {case.name} | {cells} | {'yes' if agree else 'NO'} |")
    return passed, f"{len(lines) - 2} requests x {devices}, {repeats} runs each", lines


# ---------------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--rehearse-on-cpu",
        action="store_true",
        help="run every step on the CPU instead (checks this script where no GPU is; it is "
        "not a GPU run)",
    )
    parser.add_argument("--examples", type=int, default=20, help="property examples per loss")
    parser.add_argument("--repeats", type=int, default=3, help="runs of each large request")
    args = parser.parse_args()

    cuda = torch.cuda.is_available()
    print(f"torch {torch.__version__}, CUDA build {torch.version.cuda}, GPU seen: {cuda}")
    if not cuda and not args.rehearse_on_cpu:
        print(
            "NO GPU FOUND: torch.cuda.is_available() is False on this machine; no GPU check "
            f"was run (exit {NO_GPU}). Run this on a machine with an NVIDIA GPU and its driver."
        )
        return NO_GPU
    device = "cpu" if args.rehearse_on_cpu else "cuda"
    if cuda and not args.rehearse_on_cpu:
        props = torch.cuda.get_device_properties(0)
        memory = props.total_memory / 2**30
        print(f"GPU: {props.name}, {memory:.0f} GiB, {torch.cuda.device_count()} device(s)")
    else:
        print("CPU REHEARSAL: every step runs on the CPU; this is not a GPU run.")

    rows: list[Row] = []
    table: list[str] = []

    def step(name: str, run: Callable[[], tuple[bool, str]]) -> None:
        print(f"== {name}", flush=True)
        start = time.perf_counter()
        try:
            passed, detail = run()
        except Exception as exc:  # a step that crashes is a failed row, the others still run
            passed, detail = False, f"crashed: {type(exc).__name__}: {exc}"[:300]
        rows.append(Row(name, passed, time.perf_counter() - start, detail))
        print(f"   {'passed' if passed else 'FAILED'}: {detail}", flush=True)

    step("property", lambda: property_tests(device, args.examples))
    with tempfile.TemporaryDirectory(prefix="gpu-check-") as tmp, client(Path(tmp)) as api:
        step("index range", lambda: index_range(api, device))
        step("evaluate", lambda: evaluate(api, device))
        step("training", lambda: training(api, Path(tmp), device))
        devices = ["cpu"] if device == "cpu" else ["cpu", "cuda"]

        def run_large() -> tuple[bool, str]:
            passed, detail, lines = large(api, devices, args.repeats)
            table.extend(lines)
            return passed, detail

        step("large", run_large)

    print("\n## Summary" + (" (CPU rehearsal, not a GPU run)" if device == "cpu" else ""))
    print("\n| step | result | seconds | detail |\n| --- | --- | ---: | --- |")
    for row in rows:
        result = "passed" if row.passed else "FAILED"
        print(f"| {row.step} | {result} | {row.seconds:.1f} | {row.detail} |")
    if table:
        print("\nLarge requests, end to end in process (decode, compute, encode):\n")
        print("\n".join(table))
    return 0 if all(row.passed for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
