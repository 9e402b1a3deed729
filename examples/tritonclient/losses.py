"""mse_loss and cross_entropy with gradients through Triton's Python client (tritonclient.http),
the JSON form for one and the binary tensor data extension for the other.

    pip install 'tritonclient[http]'
    LOSS_SERVICE_URL=http://127.0.0.1:8000 python examples/tritonclient/losses.py
"""

from __future__ import annotations

import os

import numpy as np
import tritonclient.http as triton

url = os.environ.get("LOSS_SERVICE_URL", "http://127.0.0.1:8000").removeprefix("http://")
client = triton.InferenceServerClient(url)
print("live:", client.is_server_live(), "ready:", client.is_server_ready())


def tensor(name: str, array: np.ndarray, datatype: str, binary: bool) -> triton.InferInput:
    item = triton.InferInput(name, list(array.shape), datatype)
    item.set_data_from_numpy(array, binary_data=binary)
    return item


# JSON in and out.
x = np.array([1.5, 2.0, 3.2], dtype=np.float32)
y = np.array([1.0, 2.5, 2.8], dtype=np.float32)
result = client.infer(
    "mse_loss",
    [tensor("input", x, "FP32", False), tensor("target", y, "FP32", False)],
    outputs=[triton.InferRequestedOutput(n, binary_data=False) for n in ("loss", "grad_input")],
    parameters={"grad": "input"},
)
print("mse_loss:", result.as_numpy("loss"), "grad_input:", result.as_numpy("grad_input"))

# Binary in and out: raw little-endian bytes after the JSON header.
logits = np.array([[1.2, 0.4, -0.5], [0.8, 1.9, -1.2]], dtype=np.float32)
classes = np.array([2, 1], dtype=np.int64)
weight = np.array([0.2, 0.3, 0.5], dtype=np.float32)
result = client.infer(
    "cross_entropy",
    [
        tensor("input", logits, "FP32", True),
        tensor("target", classes, "INT64", True),
        tensor("weight", weight, "FP32", True),
    ],
    outputs=[triton.InferRequestedOutput(n, binary_data=True) for n in ("loss", "grad_input")],
    parameters={"grad": "input", "label_smoothing": 0.1},
)
print("cross_entropy:", result.as_numpy("loss"))
print("grad_input:\n", result.as_numpy("grad_input"))
print("parameters:", result.get_response()["parameters"])
