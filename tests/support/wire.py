"""The wire format as a client writes it, independently of the service's own codec.

Tests encode tensors here and decode answers here, so a bug in ``service.tensors`` cannot
cancel itself out.
"""

from __future__ import annotations

import base64
import math
import warnings
from typing import Any, Literal

import numpy as np
import orjson
import torch
from httpx import Response

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    from fastapi.testclient import TestClient

Form = Literal["nested", "data", "base64"]
FORMS: tuple[Form, ...] = ("nested", "data", "base64")

# name -> (torch dtype, little-endian numpy dtype whose bytes are the element's bytes, OIP name)
DTYPES: dict[str, tuple[torch.dtype, str, str]] = {
    "float16": (torch.float16, "<f2", "FP16"),
    "bfloat16": (torch.bfloat16, "<u2", "BF16"),
    "float32": (torch.float32, "<f4", "FP32"),
    "float64": (torch.float64, "<f8", "FP64"),
    "int8": (torch.int8, "i1", "INT8"),
    "int16": (torch.int16, "<i2", "INT16"),
    "int32": (torch.int32, "<i4", "INT32"),
    "int64": (torch.int64, "<i8", "INT64"),
    "uint8": (torch.uint8, "u1", "UINT8"),
    "bool": (torch.bool, "?", "BOOL"),
}
FLOAT_DTYPES = ("float16", "bfloat16", "float32", "float64")
NAME_OF = {torch_dtype: name for name, (torch_dtype, _, _) in DTYPES.items()}
PROBLEM_JSON = "application/problem+json"


def jsonable(node: Any) -> Any:
    """Nested Python numbers with non-finite floats as the proto3 strings."""
    if isinstance(node, list):
        return [jsonable(item) for item in node]
    if isinstance(node, float) and not math.isfinite(node):
        return "NaN" if math.isnan(node) else ("Infinity" if node > 0 else "-Infinity")
    return node


def tensor_bytes(tensor: torch.Tensor) -> bytes:
    """Row-major little-endian bytes of ``tensor``."""
    flat = tensor.detach().contiguous().reshape(-1)
    if flat.dtype is torch.bfloat16:  # numpy has no bfloat16: its bits travel as 16-bit ints
        return flat.view(torch.int16).numpy().astype("<i2").tobytes()
    return flat.numpy().astype(DTYPES[NAME_OF[tensor.dtype]][1]).tobytes()


def to_wire(tensor: torch.Tensor, form: Form, dtype_name: str | None = None) -> Any:
    """``tensor`` as a client would send it in ``form`` (the nested form infers its dtype)."""
    name = dtype_name or NAME_OF[tensor.dtype]
    if form == "nested":
        return jsonable(tensor.tolist())
    if form == "data":
        return {
            "shape": list(tensor.shape),
            "dtype": name,
            "data": jsonable(tensor.reshape(-1).tolist()),
        }
    return {
        "shape": list(tensor.shape),
        "dtype": name,
        "base64": base64.b64encode(tensor_bytes(tensor)).decode("ascii"),
    }


def from_wire(value: Any) -> torch.Tensor:
    """The tensor an answer describes (JSON number, nested list, or a shape/dtype object with
    data or base64)."""
    if isinstance(value, dict) and "data" in value:
        data = torch.tensor(_floats(value["data"]), dtype=torch.float64)
        return data.reshape(value["shape"]).to(DTYPES[value["dtype"]][0])
    if isinstance(value, dict):
        torch_dtype, layout, _ = DTYPES[value["dtype"]]
        raw = base64.b64decode(value["base64"], validate=True)
        array = np.frombuffer(raw, dtype=np.dtype(layout)).copy()
        tensor = torch.from_numpy(array.reshape(value["shape"]))
        return tensor.view(torch.bfloat16) if torch_dtype is torch.bfloat16 else tensor
    return torch.tensor(_floats(value), dtype=torch.float64)


def _floats(node: Any) -> Any:
    if isinstance(node, list):
        return [_floats(item) for item in node]
    if isinstance(node, str):
        return {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}[node]
    assert isinstance(node, (int, float)) and not isinstance(node, bool), node
    return float(node)


def assert_same(actual: Any, expected: torch.Tensor) -> None:
    """The wire value ``actual`` holds exactly the numbers of ``expected`` (NaN matches NaN)."""
    got = from_wire(actual)
    want = expected.detach()
    if isinstance(actual, dict):
        assert got.dtype is want.dtype, (got.dtype, want.dtype)
    else:
        assert list(got.shape) == list(want.shape), (list(got.shape), list(want.shape))
        if want.dim() == 0:
            assert isinstance(actual, (float, int, str)), f"expected a JSON number, got {actual!r}"
    torch.testing.assert_close(
        got.to(torch.float64), want.to(torch.float64), rtol=0, atol=0, equal_nan=True
    )


def post(client: TestClient, path: str, body: Any) -> Response:
    response: Response = client.post(
        path, content=orjson.dumps(body), headers={"content-type": "application/json"}
    )
    return response


def post_raw(client: TestClient, path: str, content: bytes) -> Response:
    response: Response = client.post(
        path, content=content, headers={"content-type": "application/json"}
    )
    return response


def assert_problem(
    response: Response, status: int, loc: list[str | int] | None = None, says: str | None = None
) -> dict[str, Any]:
    """``response`` is an RFC 9457 problem with ``status``; ``loc`` (when given) is the
    location of one of its ``errors`` and ``says`` (when given) appears in its detail."""
    assert response.status_code == status, (response.status_code, response.text[:800])
    assert response.headers["content-type"].startswith(PROBLEM_JSON), response.headers
    problem: dict[str, Any] = response.json()
    assert problem["status"] == status
    for key in ("type", "title", "detail"):
        assert isinstance(problem[key], str) and problem[key], problem
    assert "Traceback" not in response.text
    if loc is not None:
        locs = [error["loc"] for error in problem.get("errors", [])]
        assert loc in locs, f"no error at {loc}: {locs} ({problem['detail']})"
    if says is not None:
        assert says.lower() in response.text.lower(), problem
    return problem
