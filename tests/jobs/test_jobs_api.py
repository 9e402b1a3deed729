"""The jobs API end to end: real worker processes training on the real-MNIST fixture."""

from __future__ import annotations

import base64
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from safetensors import safe_open

from service.datasets.catalog import FILE_NAMES
from service.datasets.idx import read_idx

from .conftest import FIXTURE, wait_for_job

QUICK = {"epochs": 1, "train_samples": 256, "test_samples": 64, "seed": 1}
LONG = {"epochs": 1000, "train_samples": 512, "test_samples": 32, "seed": 1}


def parse_sse(text: str) -> list[dict[str, str]]:
    events = []
    for block in text.split("\n\n"):
        fields = dict(
            line.split(": ", 1) for line in block.splitlines() if ": " in line and line[0] != ":"
        )
        if "event" in fields:
            events.append(fields)
    return events


def test_train_follow_download_predict(jobs_client: Callable[..., Any]) -> None:
    client = jobs_client()
    response = client.post("/v1/jobs/mnist", json={"epochs": 3, "seed": 3, "log_every": 5})
    assert response.status_code == 202, response.text
    job = response.json()
    assert response.headers["Location"] == f"/v1/jobs/{job['id']}"
    assert job["status"] in {"queued", "running"}
    assert job["config"]["seed"] == 3 and job["config"]["hidden_units"] == 128

    # Server-Sent Events until the end
    with client.stream("GET", f"/v1/jobs/{job['id']}/events") as stream:
        assert stream.headers["content-type"].startswith("text/event-stream")
        events = parse_sse("".join(stream.iter_text()))
    names = [e["event"] for e in events]
    assert names[0] == "status" and names[-1] == "done"
    assert names.count("epoch") == 3 and "progress" in names
    assert [int(e["id"]) for e in events] == list(range(1, len(events) + 1))

    job = client.get(f"/v1/jobs/{job['id']}").json()
    assert job["status"] == "succeeded", job
    assert [m["epoch"] for m in job["metrics"]] == [1, 2, 3]
    assert job["metrics"][-1]["test_accuracy"] > 0.6  # chance is 0.1
    assert job["progress"]["fraction"] == 1.0 and job["progress"]["total_steps"] == 48
    assert len(job["train_loss_series"]["points"]) == 48 // 5
    assert job["device"] == "cpu"
    assert {"queued_s", "data_s", "train_s", "total_s"} <= set(job["timings"])

    # Resume: only the events after Last-Event-ID
    last = int(events[-3]["id"])
    again = client.get(f"/v1/jobs/{job['id']}/events", headers={"Last-Event-ID": str(last)})
    assert [int(e["id"]) for e in parse_sse(again.text)] == [last + 1, last + 2]

    # The model file
    model = client.get(f"/v1/jobs/{job['id']}/model")
    assert model.status_code == 200
    assert model.headers["content-type"] == "application/octet-stream"
    path = Path(client.app.state.job_manager.models_dir) / "downloaded.safetensors"
    path.write_bytes(model.content)
    with safe_open(str(path), "pt") as tensors:
        shapes = {name: list(tensors.get_slice(name).get_shape()) for name in tensors.keys()}  # noqa: SIM118
    assert shapes == {
        "fc1.weight": [128, 784],
        "fc1.bias": [128],
        "fc2.weight": [10, 128],
        "fc2.bias": [10],
    }

    # Predictions: uint8 images as base64, and one image as a nested list of floats
    images = read_idx(FIXTURE / FILE_NAMES["test_images"], 3)
    labels = read_idx(FIXTURE / FILE_NAMES["test_labels"], 1)
    body = {
        "images": {
            "shape": list(images.shape),
            "dtype": "uint8",
            "base64": base64.b64encode(images.tobytes()).decode(),
        }
    }
    answer = client.post(f"/v1/jobs/{job['id']}/predict", json=body)
    assert answer.status_code == 200, answer.text
    result = answer.json()
    accuracy = float(np.mean(np.array(result["classes"]) == labels))
    assert accuracy == pytest.approx(job["metrics"][-1]["test_accuracy"])
    assert np.allclose(np.array(result["probabilities"]).sum(axis=1), 1, atol=1e-5)
    assert result["labels"][0] == str(result["classes"][0])
    one = client.post(
        f"/v1/jobs/{job['id']}/predict",
        json={"images": (images[0] / 255).tolist(), "encoding": "base64"},
    ).json()
    assert one["classes"] == result["classes"][:1]
    assert one["probabilities"]["shape"] == [1, 10]

    bad = client.post(f"/v1/jobs/{job['id']}/predict", json={"images": [[1, 2, 3]]})
    assert bad.status_code == 422
    assert bad.json()["errors"][0]["loc"][:2] == ["body", "images"]

    listed = client.get("/v1/jobs").json()
    assert listed["total"] == 1 and listed["jobs"][0]["id"] == job["id"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"epochs": 0}, "epochs"),
        ({"batch_size": -1}, "batch_size"),
        ({"learning_rate": 0}, "learning_rate"),
        ({"optimizer": "rmsprop"}, "optimizer"),
        ({"loss": "binary_cross_entropy"}, "loss"),
        ({"dataset": "cifar10"}, "dataset"),
        ({"device": "tpu"}, "device"),
        ({"hidden_units": 1.5}, "hidden_units"),
        ({"train_samples": 0}, "train_samples"),
        ({"epoch": 3}, "epoch"),
        ({"device": "cuda:7"}, "device"),
    ],
)
def test_bad_config_is_422_naming_the_field(client: Any, body: dict[str, Any], field: str) -> None:
    response = client.post("/v1/jobs/mnist", json=body)
    assert response.status_code == 422, response.text
    problem = response.json()
    assert response.headers["content-type"] == "application/problem+json"
    assert problem["errors"][0]["loc"] == ["body", field]
    assert client.get("/v1/jobs").json()["total"] == 0


def test_unknown_job_is_404(client: Any) -> None:
    for method, suffix in [("GET", ""), ("DELETE", ""), ("GET", "/events"), ("GET", "/model")]:
        response = client.request(method, f"/v1/jobs/nope{suffix}")
        assert response.status_code == 404, (method, suffix)
        assert response.headers["content-type"] == "application/problem+json"


def test_cancel_running_and_queued_and_queue_limit(jobs_client: Callable[..., Any]) -> None:
    client = jobs_client(max_concurrent_jobs=1, max_queued_jobs=1)
    first = client.post("/v1/jobs/mnist", json=LONG).json()
    second = client.post("/v1/jobs/mnist", json=QUICK)
    assert second.status_code == 202 and second.json()["status"] == "queued"
    third = client.post("/v1/jobs/mnist", json=QUICK)
    assert third.status_code == 429
    assert third.headers["content-type"] == "application/problem+json"

    # Cancelling a queued job is immediate, and makes room in the queue.
    cancelled = client.delete(f"/v1/jobs/{second.json()['id']}")
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"

    # The running one: wait until it trains, then cancel it.
    deadline = time.monotonic() + 60
    while not (client.get(f"/v1/jobs/{first['id']}").json().get("progress") or {}).get(
        "global_step"
    ):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    response = client.delete(f"/v1/jobs/{first['id']}")
    assert response.status_code == 200
    job = response.json()
    assert job["status"] == "cancelled" and job["error"] is None
    assert job["progress"]["global_step"] < job["progress"]["total_steps"]

    # The queue works again.
    done = client.post("/v1/jobs/mnist", json=QUICK).json()
    assert wait_for_job(client, done["id"], {"succeeded"})["status"] == "succeeded"

    statuses = [j["status"] for j in client.get("/v1/jobs").json()["jobs"]]
    assert statuses == ["succeeded", "cancelled", "cancelled"]  # newest first
    page = client.get("/v1/jobs", params={"status": "cancelled", "limit": 1}).json()
    assert page["total"] == 2 and len(page["jobs"]) == 1 and page["next_offset"] == 1
    page2 = client.get("/v1/jobs", params={"status": "cancelled", "limit": 1, "offset": 1})
    assert page2.json()["next_offset"] is None
    assert page2.json()["jobs"][0]["id"] == first["id"]
    assert client.get(f"/v1/jobs/{first['id']}/model").status_code == 409

    # DELETE of a finished job (here a cancelled one) deletes it: 204, then 404.
    gone = client.delete(f"/v1/jobs/{first['id']}")
    assert gone.status_code == 204 and gone.content == b""
    assert client.get(f"/v1/jobs/{first['id']}").status_code == 404
    assert client.delete(f"/v1/jobs/{first['id']}").status_code == 404


def test_missing_dataset_fails_with_advice(make_client: Callable[..., Any]) -> None:
    client = make_client(mnist_mirrors=["http://127.0.0.1:9/"], download_timeout_s=2)
    job = client.post("/v1/jobs/mnist", json=QUICK).json()
    job = wait_for_job(client, job["id"], {"failed", "succeeded"})
    assert job["status"] == "failed"
    assert job["error"]["reason"] == "dataset_unavailable"
    assert "train-images-idx3-ubyte.gz" in job["error"]["message"]
    assert "LOSS_SERVICE_DATA_DIR" in job["error"]["message"]
    data_dir = str(client.app.state.job_manager.settings.data_dir.resolve())
    assert data_dir not in job["error"]["message"]  # no server paths for clients


def test_cancel_while_the_worker_starts(jobs_client: Callable[..., Any]) -> None:
    client = jobs_client()
    job = client.post("/v1/jobs/mnist", json=LONG).json()
    response = client.delete(f"/v1/jobs/{job['id']}")
    assert response.json()["status"] == "cancelled"
    after = client.post("/v1/jobs/mnist", json=QUICK).json()  # the slot is free again
    assert wait_for_job(client, after["id"], {"succeeded"})["status"] == "succeeded"
