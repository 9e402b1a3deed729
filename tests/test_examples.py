"""The clients in examples/ against a live server started the README's way
(``python -m service --port N``), each compared with torch computed here."""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import torch
import torch.nn.functional as F

from tests.support.live import ROOT, Server, live_server

EXAMPLES = ROOT / "examples"
TYPESCRIPT = EXAMPLES / "typescript"
INPUT, TARGET = [1.5, 2.0, 3.2], [1.0, 2.5, 2.8]
SMALL_JOB = '{"epochs": 1, "train_samples": 256, "test_samples": 128, "seed": 0}'
NETWORK_ERRORS = ("ENOTFOUND", "EAI_AGAIN", "ECONNREFUSED", "ETIMEDOUT", "ECONNRESET")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with live_server(tmp_path_factory.mktemp("live")) as running:
        yield running


def run(command: list[str], server: Server, timeout: float = 120, **env: str) -> str:
    done = subprocess.run(
        command,
        cwd=ROOT,
        env={**os.environ, "LOSS_SERVICE_URL": server.url, **env},
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert done.returncode == 0, f"{command} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def json_lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def need(tool: str) -> None:
    if shutil.which(tool) is None:
        pytest.skip(f"{tool} is not installed")


def need_route(server: Server, path: str) -> None:
    if path not in server.paths():
        pytest.skip(f"this build of the service has no {path}")


def mse_reference() -> tuple[float, list[float]]:
    x = torch.tensor(INPUT, requires_grad=True)
    loss = F.mse_loss(x, torch.tensor(TARGET))
    loss.backward()
    assert x.grad is not None
    return loss.item(), x.grad.tolist()


# curl


def test_curl_computes_a_loss_and_its_gradient(server: Server) -> None:
    need("curl")
    (answer,) = json_lines(run(["bash", "examples/curl/loss.sh"], server))
    loss, grad = mse_reference()
    assert answer["loss"] == loss
    assert answer["grad"] == {"input": grad}


def test_curl_sends_and_receives_base64_float32(server: Server) -> None:
    need("curl")
    (answer,) = json_lines(run(["bash", "examples/curl/base64.sh"], server))
    logits = torch.tensor([[1.0, 2.0, 0.5], [-1.0, 0.5, 2.0]], requires_grad=True)
    loss = F.cross_entropy(logits, torch.tensor([1, 2]))
    loss.backward()
    assert logits.grad is not None
    grad = answer["grad"]["input"]
    assert grad["shape"] == [2, 3] and grad["dtype"] == "float32"
    sent = torch.frombuffer(bytearray(base64.b64decode(grad["base64"])), dtype=torch.float32)
    assert answer["loss"] == loss.item()
    assert torch.equal(sent.reshape(2, 3), logits.grad)


def test_curl_grades_a_submission(server: Server) -> None:
    need("curl")
    need_route(server, "/v1/grade")
    (right,) = json_lines(run(["bash", "examples/curl/grade.sh"], server))
    (wrong,) = json_lines(run(["bash", "examples/curl/grade.sh", "0.5"], server))
    assert right["passed"] is True
    assert wrong["passed"] is False
    assert [c["passed"] for c in wrong["checks"]] == [False, True]


def test_curl_follows_a_training_job(server: Server) -> None:
    need("curl")
    need_route(server, "/v1/jobs/{job_id}/events")
    out = run(["bash", "examples/curl/job.sh"], server, LOSS_SERVICE_JOB_CONFIG=SMALL_JOB)
    job = json.loads(out.splitlines()[0])
    assert job["status"] == "queued"
    events = [
        line.removeprefix("event: ") for line in out.splitlines() if line.startswith("event:")
    ]
    assert events[-1] == "done" and "epoch" in events
    done = json.loads(out.rstrip().splitlines()[-1].removeprefix("data: "))
    assert done["id"] == job["id"] and done["status"] == "succeeded"


# Node.js


def node(command: str, server: Server, **env: str) -> list[dict[str, Any]]:
    need("node")
    return json_lines(run(["node", "examples/node/client.mjs", command], server, **env))


def test_node_computes_a_loss_and_its_gradient(server: Server) -> None:
    (answer,) = node("loss", server)
    loss, grad = mse_reference()
    assert answer == {"loss": loss, "grad_input": grad, "dtype": "float32"}


def test_node_sends_a_float32array_as_base64(server: Server) -> None:
    (answer,) = node("base64", server)
    x = torch.tensor([[0.25, -1.5, 2.0], [0.75, 3.0, -0.5]], requires_grad=True)
    y = torch.tensor([[0.0, -1.0, 2.5], [1.0, 2.0, 0.0]])
    loss = F.smooth_l1_loss(x, y, beta=0.5)
    loss.backward()
    assert x.grad is not None
    assert answer["loss"] == loss.item()
    assert answer["grad_shape"] == [2, 3]
    assert answer["grad_input"] == x.grad.flatten().tolist()


def test_node_grades_a_submission(server: Server) -> None:
    need_route(server, "/v1/grade")
    right, doubled = node("grade", server)
    assert right == {"submission": "reference", "passed": True, "checks": 2}
    assert doubled == {"submission": "doubled", "passed": False, "checks": 1}


def test_node_follows_a_training_job_over_sse(server: Server) -> None:
    need_route(server, "/v1/jobs/{job_id}/events")
    lines = node("job", server, LOSS_SERVICE_JOB_CONFIG=SMALL_JOB)
    assert lines[0]["status"] == "queued"
    (epoch,) = [line for line in lines if "epoch" in line]
    assert epoch["epoch"] == 1 and 0 <= epoch["test_accuracy"] <= 1
    done = lines[-1]
    assert done["done"] == "succeeded" and done["error"] is None
    assert done["events"]["done"] == 1 and done["events"]["epoch"] == 1
    job = httpx.get(f"{server.url}/v1/jobs/{lines[0]['job']}", timeout=30).json()
    assert job["status"] == "succeeded"


def test_node_reports_problems_with_their_details(server: Server) -> None:
    need("node")
    script = (
        "import { LossServiceClient } from './examples/node/client.mjs';"
        f"const c = new LossServiceClient('{server.url}');"
        "try { await c.computeLoss('mse_loss', {input: [[1, 2], [3]], target: [1, 2]}); }"
        "catch (e) {"
        "  console.log(JSON.stringify({status: e.status, loc: e.problem.errors[0].loc}));"
        "}"
    )
    out = subprocess.run(
        ["node", "--input-type=module", "-e", script],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    problem = json.loads(out)
    assert problem["status"] == 422 and problem["loc"][:2] == ["body", "input"]


# TypeScript


def npm(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["npm", *args], cwd=TYPESCRIPT, capture_output=True, text=True, timeout=timeout
    )


@pytest.fixture(scope="module")
def typescript_tools() -> Path:
    need("npm")
    if not (TYPESCRIPT / "node_modules" / ".bin" / "tsc").exists():
        installed = npm("ci", "--no-audit", "--no-fund")
        if installed.returncode != 0:
            if any(code in installed.stderr for code in NETWORK_ERRORS):
                pytest.skip(f"the npm registry is unreachable:\n{installed.stderr[-500:]}")
            raise AssertionError(installed.stderr)
    generated = npm("run", "generate")
    assert generated.returncode == 0, generated.stderr
    return TYPESCRIPT / "loss-service.d.ts"


def test_typescript_types_are_generated_from_the_openapi_document(typescript_tools: Path) -> None:
    text = typescript_tools.read_text(encoding="utf-8")
    document = json.loads((ROOT / "openapi" / "openapi.json").read_text(encoding="utf-8"))
    for path in document["paths"]:
        assert f'"{path}": {{' in text, path
    for operation in ("compute_mse_loss", "create_mnist_job", "job_events", "metrics"):
        assert f"{operation}: {{" in text


def test_the_typed_client_compiles_against_the_types(typescript_tools: Path) -> None:
    checked = npm("run", "check")
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_the_compile_check_rejects_a_body_the_api_does_not_take(
    typescript_tools: Path, tmp_path: Path
) -> None:
    bad = tmp_path / "bad.ts"
    shutil.copy(typescript_tools, tmp_path / "loss-service.d.ts")
    bad.write_text(
        'import type { components } from "./loss-service.js";\n'
        'export const body: components["schemas"]["MseLossRequest"] = '
        '{ input: [1], target: [1], reduction: "mean" };\n',
        encoding="utf-8",
    )
    tsc = TYPESCRIPT / "node_modules" / ".bin" / "tsc"
    done = subprocess.run(
        [str(tsc), "--noEmit", "--strict", "--skipLibCheck", "--module", "NodeNext", str(bad)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode != 0
    assert "'reduction' does not exist" in done.stdout
