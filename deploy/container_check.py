"""Check a built image as operators run it: ``container_check.py --image IMAGE --fixtures DIR``.

Runs the container read-only (a tmpfs for /tmp, the state in a named volume, the MNIST fixture
mounted as its data), on the host's network bound to 127.0.0.1, and checks: the health and
readiness probes, the non-root user, a loss with its gradient equal to torch's, a training job
to its end and its model, the image's HEALTHCHECK reaching ``healthy``, a request still being
uploaded when SIGTERM comes that gets its answer and a clean exit, and the job record and model
served again by a new container on the same volume. Every container and the volume it made are
removed at the end, pass or fail.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import socket
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import torch

LABEL = "loss-service-ci"
VOLUME = "loss-service-ci-data"
STATE = "/var/lib/loss-service"


def docker(*args: str, check: bool = True) -> str:
    done = subprocess.run(["docker", *args], capture_output=True, text=True, check=False)
    if check and done.returncode != 0:
        raise RuntimeError(f"docker {' '.join(args)} failed: {done.stderr.strip()}")
    return done.stdout.strip()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_for(what: str, predicate: Callable[[], bool], timeout: float) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        try:
            if predicate():
                return time.monotonic() - started
        except (httpx.HTTPError, OSError):
            pass
        time.sleep(0.5)
    raise AssertionError(f"{what}: not within {timeout:g} s")


def check(name: str, condition: bool, detail: Any = "") -> None:
    if not condition:
        raise AssertionError(f"{name}: {detail}")
    print(f"ok  {name}" + (f" ({detail})" if detail != "" else ""), flush=True)


class Container:
    def __init__(self, image: str, fixtures: Path, name: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.name = name
        docker(
            "run",
            "-d",
            "--name",
            name,
            "--label",
            LABEL,
            "--network",
            "host",
            "--read-only",
            "--tmpfs",
            "/tmp:rw,mode=1777",
            "-v",
            f"{VOLUME}:{STATE}",
            "-v",
            f"{fixtures.resolve()}:{STATE}/data/mnist:ro",
            "-e",
            "LOSS_SERVICE_HOST=127.0.0.1",
            "-e",
            f"LOSS_SERVICE_PORT={self.port}",
            image,
        )
        self.client = httpx.Client(base_url=self.url, timeout=30)

    def ready(self) -> float:
        return wait_for(
            f"{self.name} /readyz", lambda: self.client.get("/readyz").status_code == 200, 180
        )

    def health(self) -> str:
        return docker("inspect", "-f", "{{.State.Health.Status}}", self.name)

    def logs(self) -> str:
        return docker("logs", "--tail", "40", self.name, check=False)


def slow_upload(url: str, seconds: float, result: dict[str, Any]) -> None:
    """POST a loss request whose body trickles in over ``seconds``; record the answer."""
    body = json.dumps({"input": [1.5, 2.0, 3.2], "target": [1.0, 2.5, 2.8]}).encode()
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=60) as conn:
        conn.sendall(
            b"POST /v1/losses/mse_loss HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            + f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
        )
        result["started"] = True
        for i, byte in enumerate(body):
            conn.sendall(bytes([byte]))
            if i < 8:
                time.sleep(seconds / 8)
        answer = b""
        while chunk := conn.recv(65536):
            answer += chunk
    result["answer"] = answer.decode(errors="replace")


def run_checks(image: str, fixtures: Path) -> None:
    size = int(docker("image", "inspect", "-f", "{{.Size}}", image))
    print(f"image {image}: {size / 1e9:.2f} GB", flush=True)
    first = Container(image, fixtures, "loss-service-ci-a")
    try:
        check("ready (/readyz 200)", True, f"{first.ready():.1f} s after start")
        check("/healthz", first.client.get("/healthz").json() == {"status": "ok"})
        user = docker("exec", first.name, "id", "-u")
        check("runs as uid 10001", user == "10001", user)
        readonly = subprocess.run(
            ["docker", "exec", first.name, "touch", "/opt/venv/x"], capture_output=True
        )
        check("root filesystem read-only", readonly.returncode != 0)

        body = {"input": [1.5, 2.0, 3.2], "target": [1.0, 2.5, 2.8], "grad": True}
        answer = first.client.post("/v1/losses/mse_loss", json=body).json()
        x = torch.tensor(body["input"], requires_grad=True)
        loss = torch.nn.functional.mse_loss(x, torch.tensor(body["target"]))
        loss.backward()
        assert x.grad is not None
        check(
            "mse_loss and its gradient equal torch's",
            answer["loss"] == loss.item() and answer["grad"]["input"] == x.grad.tolist(),
            answer["loss"],
        )

        job = first.client.post("/v1/jobs/mnist", json={"epochs": 1, "seed": 0}).json()
        job_url = f"/v1/jobs/{job['id']}"
        wait_for(
            "the job to end",
            lambda: first.client.get(job_url).json()["status"] in {"succeeded", "failed"},
            600,
        )
        record = first.client.get(job_url).json()
        check(
            "a job trained on the fixture data",
            record["status"] == "succeeded",
            record["metrics"][-1]["test_accuracy"] if record["metrics"] else record["error"],
        )
        model = first.client.get(f"{job_url}/model")
        check("its model downloads", model.status_code == 200, f"{len(model.content)} bytes")
        model_digest = hashlib.sha256(model.content).hexdigest()

        waited = wait_for("HEALTHCHECK healthy", lambda: first.health() == "healthy", 120)
        check("HEALTHCHECK healthy", True, f"{waited:.1f} s more")

        upload: dict[str, Any] = {}
        sender = threading.Thread(target=slow_upload, args=(first.url, 4.0, upload))
        sender.start()
        wait_for("the upload to start", lambda: bool(upload.get("started")), 10)
        time.sleep(1.0)
        stopped = time.monotonic()
        docker("stop", "-t", "30", first.name)
        stop_s = time.monotonic() - stopped
        sender.join(60)
        answer_text = upload.get("answer", "")
        check(
            "a request in flight at SIGTERM is answered",
            answer_text.startswith("HTTP/1.1 200"),
            answer_text.splitlines()[0] if answer_text else "no answer",
        )
        code = docker("inspect", "-f", "{{.State.ExitCode}}", first.name)
        check("docker stop: clean exit", code == "0", f"exit {code} after {stop_s:.1f} s")
    except BaseException:
        print(first.logs())
        raise
    finally:
        docker("rm", "-f", first.name, check=False)

    second = Container(image, fixtures, "loss-service-ci-b")
    try:
        second.ready()
        again = second.client.get(job_url).json()
        check(
            "the job record survives a new container",
            again["status"] == "succeeded" and again["metrics"] == record["metrics"],
            again["status"],
        )
        model_again = second.client.get(f"{job_url}/model").content
        check("and so does its model", hashlib.sha256(model_again).hexdigest() == model_digest)
    except BaseException:
        print(second.logs())
        raise
    finally:
        docker("rm", "-f", second.name, check=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image", required=True)
    parser.add_argument("--fixtures", type=Path, required=True)
    args = parser.parse_args()
    docker("volume", "rm", "-f", VOLUME, check=False)
    docker("volume", "create", VOLUME)
    try:
        run_checks(args.image, args.fixtures)
    finally:
        docker("volume", "rm", "-f", VOLUME, check=False)


if __name__ == "__main__":
    main()
