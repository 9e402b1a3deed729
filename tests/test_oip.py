"""The Open Inference Protocol in process: every loss's values equal ``/v1/losses``'s, the
binary tensor data extension both ways, and every malformed request a 4xx ``{"error"}``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import orjson
import pytest
from fastapi.testclient import TestClient

from service.http.examples import LOSS_EXAMPLES
from service.losses.registry import catalogue

INFER = "/v2/models/{}/infer"
HEADER = "Inference-Header-Content-Length"


def oip_tensor(name: str, value: Any) -> dict[str, Any]:
    if isinstance(value, dict):  # the {shape, dtype, data} form
        array = np.asarray(value["data"], dtype=value["dtype"]).reshape(value["shape"])
    else:
        array = np.asarray(value)
    datatype = {"f8": "FP64", "f4": "FP32", "i8": "INT64", "b1": "BOOL"}[array.dtype.str[1:]]
    return {"name": name, "shape": list(array.shape), "datatype": datatype, "data": array.ravel()}


def as_oip(spec_name: str, v1: dict[str, Any]) -> dict[str, Any]:
    """The v1 example request as an OIP one: tensors as inputs, the rest as parameters."""
    spec = catalogue()[spec_name]
    tensor_params = {p.name for p in spec.params if p.kind == "tensor"}
    inputs = [oip_tensor(i.name, v1[i.name]) for i in spec.inputs if i.name in v1]
    parameters: dict[str, Any] = {"grad": True}
    for name, value in v1.get("params", {}).items():
        if name in tensor_params:
            inputs.append(oip_tensor(name, value))
        else:
            parameters[name] = value
    return {"inputs": inputs, "parameters": parameters}


def binary_request(
    inputs: list[tuple[str, np.ndarray[Any, Any], str]], **extra: Any
) -> tuple[bytes, dict[str, str]]:
    header = {
        "inputs": [
            {"name": n, "shape": list(a.shape), "datatype": d,
             "parameters": {"binary_data_size": a.nbytes}}
            for n, a, d in inputs
        ],
        **extra,
    }  # fmt: skip
    text = orjson.dumps(header)
    body = b"".join([text, *(a.tobytes() for _, a, _ in inputs)])
    return body, {HEADER: str(len(text)), "Content-Type": "application/octet-stream"}


def binary_outputs(response: Any) -> dict[str, np.ndarray[Any, Any]]:
    length = int(response.headers[HEADER])
    header = orjson.loads(response.content[:length])
    offset, arrays = length, {}
    for output in header["outputs"]:
        if "data" in output:
            continue
        size = output["parameters"]["binary_data_size"]
        dtype = {"FP32": np.float32, "FP64": np.float64}[output["datatype"]]
        raw = response.content[offset : offset + size]
        arrays[output["name"]] = np.frombuffer(raw, dtype).reshape(output["shape"])
        offset += size
    assert offset == len(response.content)
    return arrays


def flat(value: Any) -> list[Any]:
    return np.asarray(value, dtype=np.float64).ravel().tolist()


@pytest.mark.parametrize("name", sorted(LOSS_EXAMPLES))
def test_every_loss_equals_v1_in_json(client: TestClient, name: str) -> None:
    v1_request = {**LOSS_EXAMPLES[name], "grad": True}
    expected = client.post(f"/v1/losses/{name}", json=v1_request).json()
    response = client.post(
        INFER.format(name),
        content=orjson.dumps(as_oip(name, v1_request), option=orjson.OPT_SERIALIZE_NUMPY),
    )
    assert response.status_code == 200, response.text
    outputs = {o["name"]: o for o in response.json()["outputs"]}
    assert outputs["loss"]["data"] == flat(expected["loss"])
    for input_name, grad in expected["grad"].items():
        assert outputs[f"grad_{input_name}"]["data"] == flat(grad)
    assert set(outputs) == {"loss", *(f"grad_{n}" for n in expected["grad"])}


def test_binary_both_ways_equals_v1(client: TestClient) -> None:
    rng = np.random.default_rng(3)
    x = rng.standard_normal((64, 5)).astype(np.float32)
    y = rng.integers(0, 5, 64)
    w = np.array([1.0, 2.0, 0.5, 1.0, 3.0], dtype=np.float32)
    body, headers = binary_request(
        [("input", x, "FP32"), ("target", y, "INT64"), ("weight", w, "FP32")],
        parameters={"grad": "input", "binary_data_output": True, "reduction": "sum"},
        id="req-1",
    )
    response = client.post(INFER.format("CrossEntropyLoss"), content=body, headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/octet-stream"
    arrays = binary_outputs(response)
    header = orjson.loads(response.content[: int(response.headers[HEADER])])
    assert header["id"] == "req-1" and header["model_name"] == "cross_entropy"
    expected = client.post(
        "/v1/losses/cross_entropy",
        json={"input": x.tolist(), "target": y.tolist(), "grad": ["input"],
              "params": {"weight": w.tolist(), "reduction": "sum"}},
    ).json()  # fmt: skip
    assert arrays["loss"].shape == () and float(arrays["loss"]) == expected["loss"]
    assert flat(arrays["grad_input"]) == flat(expected["grad"]["input"])


def test_outputs_choose_form_and_gradients(client: TestClient) -> None:
    x = np.array([1.5, 2.0, 3.2], dtype=np.float32)
    y = np.array([1.0, 2.5, 2.8], dtype=np.float32)
    body, headers = binary_request(
        [("input", x, "FP32"), ("target", y, "FP32")],
        outputs=[{"name": "grad_target", "parameters": {"binary_data": True}}, {"name": "loss"}],
    )
    response = client.post(INFER.format("mse_loss"), content=body, headers=headers)
    assert response.status_code == 200, response.text
    header = orjson.loads(response.content[: int(response.headers[HEADER])])
    # Asking for grad_target is asking for that gradient; only what was named comes back.
    assert [o["name"] for o in header["outputs"]] == ["grad_target", "loss"]
    assert header["outputs"][1]["data"] == [pytest.approx(0.22)]
    assert binary_outputs(response)["grad_target"].tolist() == pytest.approx(
        [-0.3333, 0.3333, -0.2667], abs=1e-4
    )


def test_torch_warnings_are_a_response_parameter(client: TestClient) -> None:
    request = {
        "inputs": [
            {"name": "input", "shape": [2, 1], "datatype": "FP32", "data": [1, 2]},
            {"name": "target", "shape": [2], "datatype": "FP32", "data": [1, 3]},
        ]
    }
    answer = client.post(INFER.format("mse_loss"), json=request).json()
    assert "broadcasting" in answer["parameters"]["warnings"]
    request["inputs"][1]["shape"] = [2, 1]
    assert (
        "warnings" not in client.post(INFER.format("mse_loss"), json=request).json()["parameters"]
    )


def test_metadata_comes_from_the_catalogue(client: TestClient) -> None:
    for name, spec in catalogue().items():
        metadata = client.get(f"/v2/models/{name}").json()
        tensor_params = [p.name for p in spec.params if p.kind == "tensor"]
        assert [i["name"] for i in metadata["inputs"]] == [
            i.name for i in spec.inputs
        ] + tensor_params
        assert [o["name"] for o in metadata["outputs"]] == ["loss"] + [
            f"grad_{n}" for n in spec.differentiable
        ]
    assert client.get("/v2/models/mse_loss/versions/1").json()["versions"] == ["1"]
    assert client.get("/v2/models/mse_loss/versions/1/ready").json() == {"ready": True}


X3 = {"name": "input", "shape": [3], "datatype": "FP32", "data": [1, 2, 3]}
Y3 = {"name": "target", "shape": [3], "datatype": "FP32", "data": [1, 2, 2]}


def bad(**overrides: Any) -> dict[str, Any]:
    return {"inputs": [X3, Y3], **overrides}


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        (b"[1, 2]", 400, "the inference request must be a JSON object"),
        (orjson.dumps({"inputs": []}), 400, "inputs must be a non-empty list"),
        (orjson.dumps(bad(inputs=[{**X3, "datatype": "BYTES"}])), 400, "BYTES tensors"),
        (
            orjson.dumps(bad(inputs=[{**X3, "shape": [-1]}])),
            400,
            "shape must be a list of non-negative",
        ),
        (orjson.dumps(bad(inputs=[X3, X3])), 400, "given twice"),
        (
            orjson.dumps(bad(inputs=[{k: v for k, v in X3.items() if k != "data"}])),
            400,
            "needs data",
        ),
        (orjson.dumps(bad(parameters={"margin": 1.0})), 400, "parameters.margin: not a parameter"),
        (orjson.dumps(bad(parameters={"reduction": "avg"})), 400, "parameters.reduction"),
        (orjson.dumps(bad(parameters={"grad": "nope"})), 400, "'nope' is not an input"),
        (
            orjson.dumps(bad(outputs=[{"name": "grad_weight"}])),
            400,
            "'grad_weight' is not an output",
        ),
        (orjson.dumps(bad(id=7)), 400, "id must be a string"),
        (orjson.dumps({"inputs": [X3]}), 400, "input 'target': Field required"),
        (
            orjson.dumps(bad(inputs=[X3, {**Y3, "shape": [2]}])),
            400,
            "data has 3 elements but shape [2]",
        ),
        (
            orjson.dumps(bad(inputs=[X3, {**Y3, "shape": [4], "data": [1, 2, 3, 4]}])),
            400,
            "rejected the inputs",
        ),
    ],
)
def test_bad_requests_are_a_4xx_error(
    client: TestClient, body: bytes, status: int, words: str
) -> None:
    response = client.post(INFER.format("mse_loss"), content=body)
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    answer = response.json()
    assert set(answer) == {"error"} and words in answer["error"], answer


@pytest.mark.parametrize(
    ("mangle", "words"),
    [
        (lambda body, n: (body, "x"), "Inference-Header-Content-Length must be an integer"),
        (lambda body, n: (body, str(len(body) + 1)), "must be an integer between 0"),
        (lambda body, n: (body[:-1], str(n)), "runs past the end of the body"),
        (lambda body, n: (body + b"\0", str(n)), "1 bytes of binary data that no input"),
        (lambda body, n: (body[:n] + body[n + 4 :] + b"\0\0\0\0", str(n)), None),
    ],
)
def test_binary_framing_errors(
    client: TestClient, mangle: Callable[[bytes, int], tuple[bytes, str]], words: str | None
) -> None:
    x = np.ones(3, dtype=np.float32)
    body, headers = binary_request([("input", x, "FP32"), ("target", x, "FP32")])
    body, length = mangle(body, int(headers[HEADER]))
    response = client.post(
        INFER.format("mse_loss"), content=body, headers={**headers, HEADER: length}
    )
    if words is None:  # the same number of bytes, shifted: computed, never a crash
        assert response.status_code == 200
        return
    assert response.status_code == 400, response.text
    assert words in response.json()["error"]


def test_binary_size_must_match_the_shape(client: TestClient) -> None:
    x = np.ones(3, dtype=np.float32)
    body, headers = binary_request([("input", x, "FP32"), ("target", x, "FP64")])
    response = client.post(INFER.format("mse_loss"), content=body, headers=headers)
    assert response.status_code == 400
    assert (
        "binary_data_size: is 12 bytes but shape [3] of float64 needs 24"
        in response.json()["error"]
    )


def test_compressed_bodies_are_refused(client: TestClient) -> None:
    response = client.post(
        INFER.format("mse_loss"), content=b"\x1f\x8b", headers={"Content-Encoding": "gzip"}
    )
    assert response.status_code == 400
    assert "Content-Encoding 'gzip' is not supported" in response.json()["error"]


def test_errors_outside_the_routes_are_the_protocols_too(make_client: Any) -> None:
    client: TestClient = make_client(max_body_bytes=1024, max_tensor_elements=10)
    response = client.post(INFER.format("mse_loss"), content=b" " * 2000)
    assert response.status_code == 413 and "LOSS_SERVICE_MAX_BODY_BYTES" in response.json()["error"]
    response = client.post(
        INFER.format("mse_loss"), json=bad(inputs=[{**X3, "shape": [11], "data": [0] * 11}])
    )
    assert (
        response.status_code == 413
        and "LOSS_SERVICE_MAX_TENSOR_ELEMENTS" in response.json()["error"]
    )
    assert client.get("/v2/models/nope").json()["error"].startswith("unknown loss 'nope'")
    assert client.get("/v2/nothing/here").status_code == 404
    assert set(client.get("/v2/nothing/here").json()) == {"error"}
    assert client.put("/v2/models/mse_loss/infer").status_code == 405
