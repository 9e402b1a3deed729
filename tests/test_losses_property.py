"""Every loss in the catalogue answers exactly what torch.nn.functional computes.

Hypothesis draws shapes, params, reductions, targets and wire forms per loss (the table in
``tests/support/cases.py``); the service's loss and gradients must equal the direct torch call
on the same dtype bit for bit.

``LOSS_TEST_DEVICE`` (default ``cpu``; ``cuda`` in ``benchmarks/gpu_check.py``) is the device
both the service and the torch reference compute on; ``LOSS_TEST_EXAMPLES`` scales the number
of examples per loss (default 25, a fifth of that for float16 and bfloat16). On a GPU both
sides run with ``torch.use_deterministic_algorithms`` (warn only), so that kernels with a
deterministic variant (scatter/index adds in some backward passes) do not differ in the last
bit between two runs for reasons of scheduling alone.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
import torch
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from service.compute.devices import resolve_device
from service.losses.registry import catalogue
from tests.support.app import module_client
from tests.support.cases import CASES, Case, reference
from tests.support.wire import DTYPES, FORMS, assert_problem, assert_same, post, to_wire

LOSSES = sorted(catalogue())
DEVICE = os.environ.get("LOSS_TEST_DEVICE", "cpu")
EXAMPLES = int(os.environ.get("LOSS_TEST_EXAMPLES", "25"))
if DEVICE != "cpu":
    torch.use_deterministic_algorithms(True, warn_only=True)
PROPERTY = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
INDEX_WIRE_DTYPES = ("int64", "int32", "int16")


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    yield from module_client(tmp_path_factory)


def test_strategy_table_covers_every_loss_in_the_catalogue() -> None:
    assert sorted(CASES) == LOSSES


def wire_value(data: st.DataObject, master: torch.Tensor, cast: torch.Tensor) -> Any:
    """One of the wire forms of ``cast`` whose decoding gives exactly ``cast`` in the service.

    Floats travel as the float64 master (cast by the service, as the test cast it) or in the
    compute dtype itself; indices in any integer dtype.
    """
    form = data.draw(st.sampled_from(FORMS))
    if not master.is_floating_point():
        if form == "nested":
            return to_wire(master, "nested")
        name = data.draw(st.sampled_from(INDEX_WIRE_DTYPES))
        return to_wire(master.to(DTYPES[name][0]), form)
    if form == "base64":
        return to_wire(cast, "base64")
    return to_wire(master, form)


def request_body(
    data: st.DataObject, name: str, master: Case, case: Case, dtype: str
) -> tuple[dict[str, Any], list[str]]:
    """The request, and the inputs whose gradients it asks for."""
    spec = catalogue()[name]
    body: dict[str, Any] = {
        n: wire_value(data, master.inputs[n], case.inputs[n]) for n in case.inputs
    }
    params = {
        n: wire_value(data, master.params[n], v) if isinstance(v, torch.Tensor) else v
        for n, v in case.params.items()
    }
    if bool(params) or data.draw(st.booleans()):
        body["params"] = params
    if dtype != "float32" or data.draw(st.booleans()):
        body["dtype"] = dtype
    # "auto" (the default) is the CPU only where torch sees no GPU.
    if DEVICE != "cpu" or torch.cuda.is_available() or data.draw(st.booleans()):
        body["device"] = DEVICE
    differentiable = [
        n for n in spec.differentiable if n in case.inputs and case.inputs[n].is_floating_point()
    ]
    choice = data.draw(st.sampled_from(["none", "all", "some"]))
    if choice == "all":
        body["grad"] = True
        return body, differentiable
    if choice == "some":
        chosen = (
            data.draw(st.lists(st.sampled_from(differentiable), unique=True))
            if differentiable
            else []
        )
        body["grad"] = chosen
        return body, chosen
    if data.draw(st.booleans()):
        body["grad"] = False
    return body, []


def check_against_torch(api: TestClient, name: str, data: st.DataObject, dtype: str) -> None:
    master = data.draw(CASES[name], label="case")
    case = master.cast(DTYPES[dtype][0])
    body, grad_names = request_body(data, name, master, case, dtype)
    try:
        loss, grads = reference(name, case.to(DEVICE), grad_names)
    except NotImplementedError as exc:
        problem = assert_problem(post(api, f"/v1/losses/{name}", body), 422)
        assert str(exc).splitlines()[0][:60] in problem["detail"]
        return
    response = post(api, f"/v1/losses/{name}", body)
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["dtype"] == dtype
    assert answer["device"] == str(resolve_device(DEVICE))
    assert_same(answer["loss"], loss)
    assert sorted(answer["grad"]) == sorted(grads)
    for input_name, expected in grads.items():
        assert_same(answer["grad"][input_name], expected)


@pytest.mark.parametrize("name", LOSSES)
@PROPERTY
@given(data=st.data())
def test_loss_and_gradients_equal_torch(api: TestClient, name: str, data: st.DataObject) -> None:
    check_against_torch(api, name, data, data.draw(st.sampled_from(["float32", "float64"])))


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
@pytest.mark.parametrize("name", LOSSES)
@settings(PROPERTY, max_examples=max(1, EXAMPLES // 5))
@given(data=st.data())
def test_half_precision_equals_torch(
    api: TestClient, name: str, dtype: str, data: st.DataObject
) -> None:
    check_against_torch(api, name, data, dtype)
