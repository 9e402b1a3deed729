"""The Open Inference Protocol against a live server (``python -m service``), spoken by
Triton's own Python client (``tritonclient.http``) and by curl; each answer is compared with
what ``POST /v1/losses/{name}`` gives for the same tensors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import httpx
import numpy as np
import pytest
import tritonclient.http as triton
from tritonclient.utils import InferenceServerException

from tests.support.live import ROOT, Server, live_server
from tests.test_examples import need

RNG = np.random.default_rng(7)
X = RNG.standard_normal((4, 3)).astype(np.float32)
Y = RNG.standard_normal((4, 3)).astype(np.float32)
LOGITS = RNG.standard_normal((5, 4)).astype(np.float32)
CLASSES = np.array([0, 3, 1, 2, 3], dtype=np.int64)
WEIGHT = np.array([0.5, 1.0, 2.0, 1.5], dtype=np.float32)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with live_server(tmp_path_factory.mktemp("oip")) as running:
        yield running


@pytest.fixture(scope="module")
def client(server: Server) -> Iterator[triton.InferenceServerClient]:
    client = triton.InferenceServerClient(server.url.removeprefix("http://"))
    yield client
    client.close()


def v1(server: Server, loss: str, body: dict[str, Any]) -> dict[str, Any]:
    response = httpx.post(f"{server.url}/v1/losses/{loss}", json=body, timeout=30)
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


def tensor(name: str, array: np.ndarray[Any, Any], binary: bool) -> triton.InferInput:
    datatype = {np.float32: "FP32", np.int64: "INT64"}[array.dtype.type]
    item = triton.InferInput(name, list(array.shape), datatype)
    item.set_data_from_numpy(array, binary_data=binary)
    return item


def as_v1(array: np.ndarray[Any, Any]) -> Any:
    return np.asarray(array, dtype=np.float64).tolist()


@pytest.mark.slow
def test_server_health_metadata_and_repository(client: triton.InferenceServerClient) -> None:
    assert client.is_server_live()
    assert client.is_server_ready()
    server_metadata = client.get_server_metadata()
    assert server_metadata["name"] == "loss-service"
    assert "binary_tensor_data" in server_metadata["extensions"]
    assert client.is_model_ready("cross_entropy")
    metadata = client.get_model_metadata("cross_entropy")
    assert metadata["name"] == "cross_entropy"
    assert [i["name"] for i in metadata["inputs"]] == ["input", "target", "weight"]
    assert {i["name"]: i["datatype"] for i in metadata["inputs"]}["target"] == "INT64"
    assert [o["name"] for o in metadata["outputs"]] == ["loss", "grad_input", "grad_target"]
    assert all(t["shape"] == [-1] for t in metadata["inputs"] + metadata["outputs"])
    index = client.get_model_repository_index()
    assert {"name": "mse_loss", "version": "1", "state": "READY"} in index


@pytest.mark.slow
@pytest.mark.parametrize("binary", [False, True], ids=["json", "binary"])
def test_mse_loss_with_gradients_equals_v1(
    server: Server, client: triton.InferenceServerClient, binary: bool
) -> None:
    expected = v1(server, "mse_loss", {"input": as_v1(X), "target": as_v1(Y), "grad": True})
    outputs = [
        triton.InferRequestedOutput(name, binary_data=binary)
        for name in ("loss", "grad_input", "grad_target")
    ]
    result = client.infer(
        "mse_loss",
        [tensor("input", X, binary), tensor("target", Y, binary)],
        outputs=outputs,
        parameters={"grad": True},
    )
    loss = result.as_numpy("loss")
    assert loss.dtype == np.float32 and loss.shape == ()
    assert float(loss) == expected["loss"]
    assert as_v1(result.as_numpy("grad_input")) == expected["grad"]["input"]
    assert as_v1(result.as_numpy("grad_target")) == expected["grad"]["target"]
    assert result.get_response()["parameters"] == {"dtype": "float32", "device": "cpu"}


@pytest.mark.slow
@pytest.mark.parametrize(
    ("inputs_binary", "outputs_binary"),
    [(False, False), (True, True), (True, False), (False, True)],
    ids=["json", "binary", "binary-in", "binary-out"],
)
def test_cross_entropy_with_weight_and_gradient_equals_v1(
    server: Server,
    client: triton.InferenceServerClient,
    inputs_binary: bool,
    outputs_binary: bool,
) -> None:
    params = {"label_smoothing": 0.1, "reduction": "sum"}
    expected = v1(
        server,
        "cross_entropy",
        {
            "input": as_v1(LOGITS),
            "target": CLASSES.tolist(),
            "params": {**params, "weight": as_v1(WEIGHT)},
            "grad": ["input"],
        },
    )
    result = client.infer(
        "cross_entropy",
        [
            tensor("input", LOGITS, inputs_binary),
            tensor("target", CLASSES, inputs_binary),
            tensor("weight", WEIGHT, inputs_binary),
        ],
        # No outputs named: tritonclient then asks for every output as binary data.
        outputs=[
            triton.InferRequestedOutput(name, binary_data=outputs_binary)
            for name in ("loss", "grad_input")
        ],
        parameters={**params, "grad": "input"},
    )
    assert float(result.as_numpy("loss")) == expected["loss"]
    assert as_v1(result.as_numpy("grad_input")) == expected["grad"]["input"]


@pytest.mark.slow
def test_all_outputs_binary_when_none_is_named(
    server: Server, client: triton.InferenceServerClient
) -> None:
    expected = v1(
        server,
        "mse_loss",
        {"input": as_v1(X), "target": as_v1(Y), "params": {"reduction": "none"}, "grad": True},
    )
    result = client.infer(
        "mse_loss",
        [tensor("input", X, True), tensor("target", Y, True)],
        parameters={"grad": True, "reduction": "none"},
    )
    outputs = result.get_response()["outputs"]
    assert [o["name"] for o in outputs] == ["loss", "grad_input", "grad_target"]
    assert all("binary_data_size" in o["parameters"] for o in outputs)
    assert as_v1(result.as_numpy("loss")) == expected["loss"]
    assert as_v1(result.as_numpy("grad_target")) == expected["grad"]["target"]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("model", "inputs", "status", "words"),
    [
        ("no_such_loss", [("input", X), ("target", Y)], "404", "unknown loss 'no_such_loss'"),
        ("cross_entropy", [("input", LOGITS), ("target", CLASSES + 4)], "400", "out of range"),
        ("mse_loss", [("input", X), ("label", Y)], "400", "'label' is not an input"),
    ],
)
def test_errors_reach_the_client_as_the_protocol_says(
    client: triton.InferenceServerClient,
    model: str,
    inputs: list[tuple[str, np.ndarray[Any, Any]]],
    status: str,
    words: str,
) -> None:
    with pytest.raises(InferenceServerException) as caught:
        client.infer(model, [tensor(name, array, True) for name, array in inputs])
    assert caught.value.status() == status
    assert words in caught.value.message()


# curl: the JSON form by hand


def curl(server: Server, method: str, path: str, body: str | None = None) -> tuple[int, Any]:
    need("curl")
    command = ["curl", "-sS", "-X", method, "-w", "\n%{http_code}", f"{server.url}{path}"]
    if body is not None:
        command += ["-H", "Content-Type: application/json", "-d", body]
    done = subprocess.run(command, capture_output=True, text=True, timeout=60, check=True)
    text, _, status = done.stdout.rpartition("\n")
    return int(status), json.loads(text) if text else None


@pytest.mark.slow
def test_curl_json_inference_equals_v1(server: Server) -> None:
    body = {
        "inputs": [
            {"name": "input", "shape": [3], "datatype": "FP32", "data": [1.5, 2.0, 3.2]},
            {"name": "target", "shape": [3], "datatype": "FP32", "data": [1.0, 2.5, 2.8]},
        ],
        "parameters": {"grad": True},
        "outputs": [{"name": "loss"}, {"name": "grad_input"}],
    }
    status, answer = curl(server, "POST", "/v2/models/mse_loss/infer", json.dumps(body))
    assert status == 200, answer
    expected = v1(
        server, "mse_loss", {"input": [1.5, 2.0, 3.2], "target": [1.0, 2.5, 2.8], "grad": ["input"]}
    )
    loss, grad = answer["outputs"]
    assert loss == {"name": "loss", "datatype": "FP32", "shape": [], "data": [expected["loss"]]}
    assert grad["name"] == "grad_input" and grad["shape"] == [3]
    assert grad["data"] == expected["grad"]["input"]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("path", "body", "status", "words"),
    [
        ("/v2/models/nope/infer", "{}", 404, "unknown loss"),
        ("/v2/models/mse_loss/infer", "{not json", 400, "not valid JSON"),
        (
            "/v2/models/mse_loss/infer",
            '{"inputs": [{"name": "input", "shape": [2], "datatype": "FP8", "data": [1, 2]}]}',
            400,
            "unknown datatype 'FP8'",
        ),
        (
            "/v2/models/mse_loss/infer",
            '{"inputs": [{"name": "input", "shape": [3], "datatype": "FP32", "data": [1, 2]}]}',
            400,
            "data has 2 elements but shape [3] needs 3",
        ),
    ],
)
def test_curl_errors(server: Server, path: str, body: str, status: int, words: str) -> None:
    got, answer = curl(server, "POST", path, body)
    assert got == status
    assert set(answer) == {"error"} and words in answer["error"]


@pytest.mark.slow
def test_curl_health_and_metadata(server: Server) -> None:
    assert curl(server, "GET", "/v2/health/live") == (200, {"live": True})
    assert curl(server, "GET", "/v2/health/ready") == (200, {"ready": True})
    status, models = curl(server, "GET", "/v2/models")
    assert (
        status == 200 and {"name": "kl_div", "version": "1", "state": "READY"} in models["models"]
    )
    status, metadata = curl(server, "GET", "/v2/models/mse_loss")
    assert status == 200 and metadata["outputs"][0] == {
        "name": "loss",
        "datatype": "FP32",
        "shape": [-1],
    }


@pytest.mark.slow
def test_the_tritonclient_example_runs(server: Server) -> None:
    done = subprocess.run(
        [sys.executable, "examples/tritonclient/losses.py"],
        cwd=ROOT,
        env={**os.environ, "LOSS_SERVICE_URL": server.url},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "mse_loss: 0.22000003" in done.stdout
    assert "cross_entropy: 1.4928973" in done.stdout
