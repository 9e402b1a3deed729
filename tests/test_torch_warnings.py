"""Torch's warnings about a request's inputs reach its answer, and only its answer; the
catalogue's ``broadcast`` says which tensors torch broadcasts, as torch does."""

from __future__ import annotations

import warnings
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import torch
from fastapi.testclient import TestClient

from service.compute.engine import decode_call, evaluate
from service.http.examples import LOSS_EXAMPLES
from service.http.loss_requests import parse_loss_call
from service.losses.registry import catalogue, resolve
from service.tensors.codec import ElementBudget

BROADCAST_MSE = {"input": [[1.0], [2.0]], "target": [1.0, 3.0]}


def test_broadcasting_warning_is_in_the_answer(client: TestClient) -> None:
    for name in ("mse_loss", "l1_loss", "huber_loss", "smooth_l1_loss"):
        answer = client.post(f"/v1/losses/{name}", json=BROADCAST_MSE).json()
        (warning,) = answer["warnings"]
        assert "different to the input size" in warning and "broadcasting" in warning
    # Every request that earns it gets it, not only the first (torch warns once per place).
    assert "warnings" in client.post("/v1/losses/mse_loss", json=BROADCAST_MSE).json()


def test_kl_div_mean_warns(client: TestClient) -> None:
    body = {"input": [-1.0, -2.0], "target": [0.5, 0.5]}
    mean = client.post("/v1/losses/kl_div", json={**body, "params": {"reduction": "mean"}})
    assert "'batchmean' divides only by the batch size" in mean.json()["warnings"][0]
    batchmean = client.post(
        "/v1/losses/kl_div", json={**body, "params": {"reduction": "batchmean"}}
    )
    assert "warnings" not in batchmean.json()


def test_answers_without_warnings_keep_their_shape(client: TestClient) -> None:
    answer = client.post("/v1/losses/mse_loss", json=LOSS_EXAMPLES["mse_loss"]).json()
    assert set(answer) == {"loss", "grad", "dtype", "device"}


def test_each_computation_gets_its_own_warnings_across_threads() -> None:
    spec = resolve("mse_loss")
    same = {"input": [[1.0], [2.0]], "target": [[1.0], [3.0]]}

    def run(index: int) -> tuple[int, tuple[str, ...]]:
        call = parse_loss_call(spec, BROADCAST_MSE if index % 2 else same)
        return index, evaluate(call, ElementBudget(100, 8)).warnings

    with ThreadPoolExecutor(8) as pool:
        for index, got in pool.map(run, range(400)):
            assert len(got) == (index % 2), (index, got)


def test_warnings_outside_a_computation_are_not_collected_or_lost() -> None:
    spec = resolve("mse_loss")
    evaluate(parse_loss_call(spec, BROADCAST_MSE), ElementBudget(100, 8))  # installs the hook
    with pytest.warns(UserWarning, match="elsewhere"):
        warnings.warn("elsewhere", UserWarning, stacklevel=1)


def shrunk(tensor: torch.Tensor) -> torch.Tensor:
    return tensor[:1].clone()


@pytest.mark.parametrize("name", sorted(LOSS_EXAMPLES))
def test_catalogue_broadcast_is_what_torch_broadcasts(name: str) -> None:
    """Each tensor the catalogue lists computes with its first row only (broadcast); each other
    floating tensor beside the first input does not."""
    spec = catalogue()[name]
    tensors, params = decode_call(
        parse_loss_call(spec, LOSS_EXAMPLES[name]), ElementBudget(10**6, 8)
    )
    first = spec.inputs[0].name
    candidates = [
        n for n, t in tensors.items() if n != first and t.is_floating_point() and t.numel() > 1
    ] + [n for n, v in params.items() if isinstance(v, torch.Tensor) and v.numel() > 1]
    for candidate in candidates:
        t2: dict[str, Any] = dict(tensors)
        p2: dict[str, Any] = dict(params)
        if candidate in t2:
            t2[candidate] = shrunk(t2[candidate])
        else:
            p2[candidate] = shrunk(p2[candidate])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                spec.call(t2, p2)
                broadcasts = True
            except (RuntimeError, ValueError, IndexError):
                broadcasts = False
        assert broadcasts == (candidate in spec.broadcast), candidate
    assert set(spec.broadcast) <= {i.name for i in spec.inputs} | {p.name for p in spec.params}


def test_catalogue_says_which_tensors_broadcast(client: TestClient) -> None:
    assert client.get("/v1/losses/mse_loss").json()["broadcast"] == ["target"]
    described = client.get("/v1/losses/binary_cross_entropy_with_logits").json()
    assert described["broadcast"] == ["weight", "pos_weight"]
    assert client.get("/v1/losses/cross_entropy").json()["broadcast"] == []
