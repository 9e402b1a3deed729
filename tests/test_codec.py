"""Tensors on the wire: the four forms, every dtype and OIP spelling, non-finite strings, base64
answers, and devices, both at the codec and through HTTP."""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any, Literal

import orjson
import pytest
import torch
import torch.nn.functional as F
from fastapi.testclient import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st

from service.errors import InvalidInput
from service.tensors.codec import ElementBudget, decode_tensor, encode_tensor
from service.tensors.wirejson import dumps
from tests.support.app import module_client
from tests.support.wire import (
    DTYPES,
    FLOAT_DTYPES,
    Form,
    assert_problem,
    assert_same,
    from_wire,
    jsonable,
    post,
    to_wire,
)

ALL_SPELLINGS = [(name, name) for name in DTYPES] + [
    (oip, name) for name, (_, _, oip) in DTYPES.items()
]


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    yield from module_client(tmp_path_factory)


def decode(value: Any, float_dtype: torch.dtype = torch.float32) -> torch.Tensor:
    return decode_tensor(value, ("body", "input"), float_dtype, ElementBudget(10_000, 32))


def sample(name: str) -> torch.Tensor:
    """A 2x3 tensor of dtype ``name`` with values every dtype holds exactly."""
    values = [[0, 1, 0], [1, 1, 0]] if name == "bool" else [[0.5, -2.0, 3.0], [7.0, 0.0, -1.25]]
    torch_dtype = DTYPES[name][0]
    if not torch_dtype.is_floating_point and name != "bool":
        values = [[0, -2, 3], [7, 0, 1]] if name != "uint8" else [[0, 2, 3], [7, 0, 255]]
    return torch.tensor(values).to(torch_dtype)


# ---------------------------------------------------------------------------------------------
# Decoding


def test_number_and_boolean_are_0d_tensors() -> None:
    assert torch.equal(decode(2.5), torch.tensor(2.5))
    assert decode(2.5).dim() == 0
    assert decode(3).dtype is torch.int64
    assert decode(True).dtype is torch.bool
    assert decode(1.5, torch.float64).dtype is torch.float64


def test_nested_arrays_infer_their_dtype() -> None:
    assert decode([[1, 2], [3, 4]]).dtype is torch.int64
    assert decode([[True, False]]).dtype is torch.bool
    mixed = decode([[1, 2.5], [3, 4]], torch.float64)
    assert mixed.dtype is torch.float64
    assert mixed.tolist() == [[1.0, 2.5], [3.0, 4.0]]
    assert decode([1.5], torch.bfloat16).dtype is torch.bfloat16


@pytest.mark.parametrize(("spelling", "name"), ALL_SPELLINGS)
def test_data_and_base64_objects_keep_their_stated_dtype(spelling: str, name: str) -> None:
    tensor = sample(name)
    data = to_wire(tensor, "data", spelling)
    encoded = to_wire(tensor, "base64", spelling)
    for value in (data, encoded):
        got = decode(value)
        assert got.dtype is DTYPES[name][0]
        assert torch.equal(got, tensor)


def test_non_finite_strings_in_every_form() -> None:
    expected = [math.nan, math.inf, -math.inf, 1.0]
    wire = ["NaN", "Infinity", "-Infinity", 1.0]
    for value in (
        wire,
        {"shape": [4], "data": wire},
        {"shape": [2, 2], "dtype": "FP64", "data": wire},
    ):
        got = decode(value, torch.float64).reshape(-1)
        torch.testing.assert_close(got, torch.tensor(expected, dtype=torch.float64), equal_nan=True)
    assert math.isnan(float(decode("NaN")))
    assert float(decode("-Infinity")) == -math.inf


def test_empty_tensors() -> None:
    assert decode([]).shape == (0,)
    assert decode({"shape": [2, 0], "dtype": "int64", "data": []}).dtype is torch.int64
    assert decode({"shape": [0], "dtype": "float16", "base64": ""}).dtype is torch.float16


@pytest.mark.parametrize(
    ("value", "loc", "says"),
    [
        ([[1, 2], [3]], ["body", "input", 1], "ragged"),
        ({"shape": [2, 2], "data": [1, 2, 3]}, ["body", "input", "data"], "3 elements"),
        (
            {"shape": [2], "dtype": "float32", "base64": "AACAPw=="},
            ["body", "input", "base64"],
            "4 bytes",
        ),
        (
            {"shape": [1], "dtype": "float32", "base64": "AAC!Pw=="},
            ["body", "input", "base64"],
            "base64",
        ),
        (
            {"shape": [1], "dtype": "float8", "data": [1]},
            ["body", "input", "dtype"],
            "unknown dtype",
        ),
        ({"shape": [1], "dtype": "int8", "data": [300]}, ["body", "input", "data"], "out of range"),
        ({"shape": [1], "dtype": "int32", "data": [1.5]}, ["body", "input", "data"], "integers"),
        ({"shape": [1], "dtype": "bool", "data": [2]}, ["body", "input", "data"], "bool"),
        ({"shape": [-1], "data": []}, ["body", "input", "shape"], "non-negative"),
        ({"shape": [1], "data": [1], "extra": 1}, ["body", "input", "extra"], "unknown key"),
        ({"shape": [1]}, ["body", "input"], "exactly one"),
        (["nan"], ["body", "input", 0], "'nan'"),
        ([None], ["body", "input", 0], "null"),
        ([2**64], ["body", "input"], "int64"),
    ],
)
def test_malformed_tensors_name_the_field(value: Any, loc: list[Any], says: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        decode(value)
    assert [list(e.loc) for e in caught.value.errors] == [loc]
    assert says in caught.value.detail


# ---------------------------------------------------------------------------------------------
# Encoding


@pytest.mark.parametrize("name", list(DTYPES))
def test_base64_encoding_decodes_to_the_exact_tensor(name: str) -> None:
    tensor = sample(name).t()  # not contiguous: the bytes must still be row-major
    encoded = encode_tensor(tensor, "base64")
    assert encoded["dtype"] == name
    assert encoded["shape"] == [3, 2]
    assert torch.equal(from_wire(encoded), tensor)


@settings(max_examples=50, deadline=None)
@given(st.lists(st.floats(allow_nan=True, allow_infinity=True), min_size=1, max_size=8))
def test_json_encoding_prints_the_double_tolist_gives(values: list[float]) -> None:
    for dtype in (torch.float64, torch.float32, torch.float16, torch.bfloat16):
        tensor = torch.tensor(values, dtype=torch.float64).to(dtype)
        wire = orjson.loads(dumps(encode_tensor(tensor, "json")))
        assert wire == jsonable(tensor.tolist())


# ---------------------------------------------------------------------------------------------
# Through HTTP


@pytest.mark.parametrize("form", ["number", "nested", "data", "base64"])
def test_every_form_through_http(api: TestClient, form: Form | Literal["number"]) -> None:
    input_ = torch.tensor([[1.5, 2.0], [3.25, -1.0]])
    target = torch.tensor([[1.0, 2.5], [2.75, 0.5]])
    if form == "number":
        input_, target = input_[0, 0], target[0, 0]
        body = {"input": input_.item(), "target": target.item()}
    else:
        body = {"input": to_wire(input_, form), "target": to_wire(target, form)}
    body["grad"] = True
    answer = post(api, "/v1/losses/mse_loss", body).json()
    leaves = [input_.clone().requires_grad_(), target.clone().requires_grad_()]
    loss = F.mse_loss(leaves[0], leaves[1])
    grads = torch.autograd.grad(loss, leaves)
    assert_same(answer["loss"], loss)
    assert_same(answer["grad"]["input"], grads[0])
    assert_same(answer["grad"]["target"], grads[1])


@pytest.mark.parametrize(("spelling", "name"), ALL_SPELLINGS)
@pytest.mark.parametrize("form", ["data", "base64"])
def test_every_wire_dtype_through_http(
    api: TestClient, spelling: str, name: str, form: Form
) -> None:
    tensor = sample(name)
    if tensor.is_floating_point() or name == "bool":
        # A float role: any dtype is cast to the request dtype.
        body = {"input": to_wire(tensor, form, spelling), "target": [[0.5] * 3] * 2}
        answer = post(api, "/v1/losses/l1_loss", {**body, "params": {"reduction": "none"}})
        expected = F.l1_loss(tensor.float(), torch.full((2, 3), 0.5), reduction="none")
    else:
        # An index role: any integer dtype holds class indices.
        target = tensor.reshape(-1).abs() % 3
        body = {
            "input": [[-1.0, -2.0, -0.5]] * 6,
            "target": to_wire(target.to(tensor.dtype), form, spelling),
        }
        answer = post(api, "/v1/losses/nll_loss", {**body, "params": {"reduction": "none"}})
        expected = F.nll_loss(
            torch.tensor([[-1.0, -2.0, -0.5]] * 6), target.long(), reduction="none"
        )
    assert answer.status_code == 200, answer.text
    assert_same(answer.json()["loss"], expected)


@pytest.mark.parametrize(("spelling", "name"), [s for s in ALL_SPELLINGS if s[1] in FLOAT_DTYPES])
def test_request_dtype_accepts_oip_spellings(api: TestClient, spelling: str, name: str) -> None:
    answer = post(
        api, "/v1/losses/mse_loss", {"input": [1.5, 2.0], "target": [1.0, 2.5], "dtype": spelling}
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["dtype"] == name
    dtype = DTYPES[name][0]
    expected = F.mse_loss(
        torch.tensor([1.5, 2.0], dtype=dtype), torch.tensor([1.0, 2.5], dtype=dtype)
    )
    assert_same(answer.json()["loss"], expected)


def test_non_finite_values_travel_as_strings(api: TestClient) -> None:
    body = {
        "input": ["NaN", "Infinity", 1.0],
        "target": [0.0, 0.0, "-Infinity"],
        "params": {"reduction": "none"},
        "grad": ["input"],
    }
    response = post(api, "/v1/losses/mse_loss", body)
    assert response.status_code == 200
    assert '"NaN"' in response.text and '"Infinity"' in response.text
    answer = response.json()
    assert answer["loss"] == ["NaN", "Infinity", "Infinity"]
    assert_same(answer["grad"]["input"], torch.tensor([math.nan, math.inf, math.inf]))
    mean = post(api, "/v1/losses/mse_loss", {"input": ["NaN"], "target": [1.0]}).json()
    assert mean["loss"] == "NaN"
    inf = post(api, "/v1/losses/l1_loss", {"input": "Infinity", "target": 0.0}).json()
    assert inf["loss"] == "Infinity"


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
def test_base64_answers_decode_to_the_exact_tensors(api: TestClient, dtype: str) -> None:
    torch_dtype = DTYPES[dtype][0]
    logits = torch.tensor([[1.2, 0.4, -0.5], [0.8, 1.9, -1.2]], dtype=torch_dtype)
    target = torch.tensor([2, 1])
    body = {
        "input": to_wire(logits, "base64"),
        "target": [2, 1],
        "params": {"reduction": "none", "label_smoothing": 0.1},
        "grad": True,
        "dtype": dtype,
        "encoding": "base64",
    }
    answer = post(api, "/v1/losses/cross_entropy", body).json()
    leaf = logits.clone().requires_grad_()
    loss = F.cross_entropy(leaf, target, reduction="none", label_smoothing=0.1)
    (grad,) = torch.autograd.grad(loss.sum(), [leaf])
    assert answer["loss"]["dtype"] == dtype and answer["grad"]["input"]["dtype"] == dtype
    assert torch.equal(from_wire(answer["loss"]), loss.detach())
    assert torch.equal(from_wire(answer["grad"]["input"]), grad)
    # A reduced loss stays a JSON number even with base64 encoding.
    reduced = post(api, "/v1/losses/cross_entropy", {**body, "params": {}}).json()
    assert isinstance(reduced["loss"], float)


@pytest.mark.parametrize("device", ["cpu", "auto"])
def test_cpu_devices(api: TestClient, device: str) -> None:
    answer = post(api, "/v1/losses/mse_loss", {"input": [1.0], "target": [2.0], "device": device})
    assert answer.status_code == 200
    assert answer.json()["device"] == (
        "cuda:0" if device == "auto" and torch.cuda.is_available() else "cpu"
    )


@pytest.mark.skipif(torch.cuda.is_available(), reason="this host has a GPU")
@pytest.mark.parametrize("device", ["cuda", "cuda:0", "cuda:3"])
def test_cuda_without_a_gpu_is_a_422_that_says_so(api: TestClient, device: str) -> None:
    response = post(api, "/v1/losses/mse_loss", {"input": [1.0], "target": [2.0], "device": device})
    assert_problem(response, 422, ["body", "device"], says="no CUDA GPU")


@pytest.mark.parametrize("device", ["tpu", "cuda:x", "CPU", ""])
def test_unknown_devices_are_a_422(api: TestClient, device: str) -> None:
    response = post(api, "/v1/losses/mse_loss", {"input": [1.0], "target": [2.0], "device": device})
    assert_problem(response, 422, ["body", "device"])
