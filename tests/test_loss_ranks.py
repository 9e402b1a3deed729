"""Which ranks each loss accepts is torch's answer, not its documentation's.

For every loss and input ranks 0 to 3, the same tensors go to torch directly and to the
service: torch refusing them must be a 422, torch computing them must be a 200 with torch's
loss and gradients exactly. Then the requests that used to differ: 0-d margin-loss inputs, and
empty batches (their shape kept on the wire, the margin losses' empty mean and sum).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
import torch
from fastapi.testclient import TestClient

from service.losses.registry import catalogue
from tests.support.app import module_client
from tests.support.cases import Case, reference
from tests.support.wire import assert_problem, assert_same, post, to_wire

RANKS = (0, 1, 2, 3)
CLASSES = 3


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    yield from module_client(tmp_path_factory)


def shape_of(rank: int, last: int | None = None) -> tuple[int, ...]:
    """(2, 3, 4)[:rank], or (2, .., 2, last) when the last dimension is fixed."""
    if last is None:
        return (2, CLASSES, 4)[:rank]
    return (*(2,) * (rank - 1), last) if rank else ()


def uniform(shape: tuple[int, ...], low: float = -2.0, high: float = 2.0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(hash(shape) % 1000)
    values = torch.rand(shape, generator=generator, dtype=torch.float64)
    return low + (high - low) * values


def signs(shape: tuple[int, ...]) -> torch.Tensor:
    return torch.where(uniform(shape) > 0, 1.0, -1.0).to(torch.float64)


def index_target_shape(rank: int) -> tuple[int, ...]:
    """Class-index targets: () for a 0-d or (C,) input, (N, d..) for (N, C, d..)."""
    shape = shape_of(rank)
    return () if rank <= 1 else (shape[0], *shape[2:])


def pointwise(low: float = -2.0, high: float = 2.0, target: str = "float") -> Builder:
    def build(rank: int) -> dict[str, torch.Tensor]:
        shape = shape_of(rank)
        targets = {"float": uniform(shape), "unit": uniform(shape, 0.0, 1.0), "sign": signs(shape)}
        return {"input": uniform(shape, low, high), "target": targets[target]}

    return build


def class_indices(rank: int) -> dict[str, torch.Tensor]:
    return {
        "input": uniform(shape_of(rank)),
        # Class 1 where there is a class dimension; a 0-d input has one class, 0.
        "target": torch.full(index_target_shape(rank), 1 if rank else 0, dtype=torch.int64),
    }


def log_probs(rank: int) -> dict[str, torch.Tensor]:
    case = class_indices(rank)
    if rank:
        case["input"] = torch.log_softmax(case["input"], dim=1 if rank > 1 else 0)
    return case


def multilabel(rank: int) -> dict[str, torch.Tensor]:
    shape = shape_of(rank)
    target = torch.full(shape, -1, dtype=torch.int64)
    if rank:
        target[..., 0] = 0
    else:
        target = torch.tensor(0)
    return {"input": uniform(shape), "target": target}


def gaussian(rank: int) -> dict[str, torch.Tensor]:
    shape = shape_of(rank)
    return {"input": uniform(shape), "target": uniform(shape), "var": uniform(shape, 0.1, 2.0)}


def cosine(rank: int) -> dict[str, torch.Tensor]:
    shape = shape_of(rank)
    return {"input1": uniform(shape), "input2": uniform(shape), "target": signs(shape[:-1])}


def ranking(rank: int) -> dict[str, torch.Tensor]:
    shape = shape_of(rank)
    return {"input1": uniform(shape), "input2": uniform(shape), "target": signs(shape)}


def triplet(rank: int) -> dict[str, torch.Tensor]:
    shape = shape_of(rank)
    return {n: uniform(shape) for n in ("anchor", "positive", "negative")}


def ctc(rank: int) -> dict[str, torch.Tensor]:
    steps, batch = 4, 2
    shape = (steps, batch, CLASSES)[: max(rank, 0)] if rank != 2 else (steps, CLASSES)
    batched = rank == 3
    return {
        "log_probs": torch.log_softmax(uniform(shape), dim=-1) if rank else uniform(()),
        "targets": torch.ones((batch, 2) if batched else (2,), dtype=torch.int64),
        "input_lengths": torch.full((batch,) if batched else (), steps, dtype=torch.int64),
        "target_lengths": torch.full((batch,) if batched else (), 2, dtype=torch.int64),
    }


def linear(rank: int) -> dict[str, torch.Tensor]:
    hidden = 3
    return {
        "input": uniform(shape_of(rank, hidden)),
        "linear_weight": uniform((4, hidden)),
        "target": torch.zeros(shape_of(rank - 1, 2) if rank > 1 else (), dtype=torch.int64),
        "linear_bias": uniform((4,)),
    }


def box_pair(rank: int) -> dict[str, torch.Tensor]:
    shape = shape_of(rank, 4)
    if not rank:
        return {"boxes1": uniform(()), "boxes2": uniform(())}
    corner = uniform((*shape[:-1], 2))
    other = uniform((*shape[:-1], 2), -1.0, 1.0)
    return {
        "boxes1": torch.cat([corner, corner + 1.5], dim=-1),
        "boxes2": torch.cat([other, other + 2.0], dim=-1),
    }


Builder = Callable[[int], dict[str, torch.Tensor]]
BUILDERS: dict[str, Builder] = {
    "binary_cross_entropy": pointwise(0.05, 0.95, "unit"),
    "binary_cross_entropy_with_logits": pointwise(target="unit"),
    "complete_box_iou_loss": box_pair,
    "cosine_embedding_loss": cosine,
    "cross_entropy": class_indices,
    "ctc_loss": ctc,
    "distance_box_iou_loss": box_pair,
    "gaussian_nll_loss": gaussian,
    "generalized_box_iou_loss": box_pair,
    "hinge_embedding_loss": pointwise(target="sign"),
    "huber_loss": pointwise(),
    "kl_div": pointwise(),
    "l1_loss": pointwise(),
    "linear_cross_entropy": linear,
    "margin_ranking_loss": ranking,
    "mse_loss": pointwise(),
    "multi_margin_loss": class_indices,
    "multilabel_margin_loss": multilabel,
    "multilabel_soft_margin_loss": pointwise(target="unit"),
    "nll_loss": log_probs,
    "poisson_nll_loss": pointwise(),
    "sigmoid_focal_loss": pointwise(target="unit"),
    "smooth_l1_loss": pointwise(),
    "soft_margin_loss": pointwise(target="sign"),
    "triplet_margin_loss": triplet,
    "triplet_margin_with_distance_loss": triplet,
}


def test_every_loss_has_a_rank_builder() -> None:
    assert sorted(BUILDERS) == sorted(catalogue())


def torch_answer(
    name: str, case: Case, grads: list[str]
) -> tuple[torch.Tensor, dict[str, torch.Tensor]] | Exception:
    try:
        return reference(name, case, grads)
    except Exception as exc:  # what torch refuses, the service must refuse
        return exc


@pytest.mark.parametrize("reduction", ["none", "mean"])
@pytest.mark.parametrize("rank", RANKS)
@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_ranks_torch_accepts_are_answered_exactly_and_the_rest_refused(
    api: TestClient, name: str, rank: int, reduction: str
) -> None:
    spec = catalogue()[name]
    case = Case(BUILDERS[name](rank), {"reduction": reduction})
    grads = [
        n for n in spec.differentiable if n in case.inputs and case.inputs[n].is_floating_point()
    ]
    expected = torch_answer(name, case, grads)
    body: dict[str, Any] = {n: to_wire(t, "nested") for n, t in case.inputs.items()}
    body |= {"params": case.params, "grad": True, "dtype": "float64", "device": "cpu"}
    response = post(api, f"/v1/losses/{name}", body)
    if isinstance(expected, Exception):
        assert_problem(response, 422)
        return
    assert response.status_code == 200, (str(expected), response.text[:500])
    loss, expected_grads = expected
    answer = response.json()
    assert_same(answer["loss"], loss)
    assert sorted(answer["grad"]) == sorted(expected_grads)
    for input_name, gradient in expected_grads.items():
        assert_same(answer["grad"][input_name], gradient)


# ---------------------------------------------------------------------------------------------
# The requests that used to differ from torch


@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
def test_a_0d_multi_margin_input_is_one_sample_of_one_class(
    api: TestClient, reduction: str
) -> None:
    body = {"input": 0.5, "target": 0, "grad": True, "params": {"reduction": reduction}}
    answer = post(api, "/v1/losses/multi_margin_loss", body).json()
    assert answer["loss"] == 0.0
    assert answer["grad"] == {"input": 0.0}


def test_a_0d_multilabel_margin_input_gives_a_0d_unreduced_loss(api: TestClient) -> None:
    body = {"input": 0.5, "target": 0, "grad": True, "params": {"reduction": "none"}}
    answer = post(api, "/v1/losses/multilabel_margin_loss", body).json()
    expected = torch.nn.functional.multilabel_margin_loss(
        torch.tensor(0.5), torch.tensor(0), reduction="none"
    )
    assert expected.dim() == 0
    assert answer["loss"] == expected.item() == 0.0
    assert answer["grad"] == {"input": 0.0}


@pytest.mark.parametrize("name", ["multi_margin_loss", "multilabel_margin_loss"])
def test_a_0d_margin_target_out_of_range_is_a_422(api: TestClient, name: str) -> None:
    response = post(api, f"/v1/losses/{name}", {"input": 0.5, "target": 1})
    assert_problem(response, 422, loc=["body", "target"], says="out of range")


EMPTY = {"shape": [0, 3], "dtype": "float32", "data": []}


@pytest.mark.parametrize(
    ("name", "target"),
    [
        ("multi_margin_loss", {"shape": [0], "dtype": "int64", "data": []}),
        ("multilabel_margin_loss", {"shape": [0, 3], "dtype": "int64", "data": []}),
        ("cross_entropy", {"shape": [0], "dtype": "int64", "data": []}),
        ("mse_loss", EMPTY),
    ],
)
@pytest.mark.parametrize(("reduction", "loss"), [("mean", "NaN"), ("sum", 0.0)])
def test_an_empty_batch_reduces_to_nan_mean_and_zero_sum(
    api: TestClient, name: str, target: dict[str, Any], reduction: str, loss: Any
) -> None:
    body = {"input": EMPTY, "target": target, "grad": ["input"], "params": {"reduction": reduction}}
    answer = post(api, f"/v1/losses/{name}", body).json()
    assert answer["loss"] == loss, answer
    assert answer["grad"]["input"] == EMPTY


def test_an_empty_unreduced_margin_loss_is_empty(api: TestClient) -> None:
    body = {
        "input": EMPTY,
        "target": {"shape": [0], "dtype": "int64", "data": []},
        "params": {"reduction": "none"},
    }
    answer = post(api, "/v1/losses/multi_margin_loss", body).json()
    assert answer["loss"] == []


@pytest.mark.parametrize("shape", [[0, 3], [2, 0], [2, 0, 3], [0, 0]])
def test_empty_multi_dimensional_answers_keep_their_shape(
    api: TestClient, shape: list[int]
) -> None:
    tensor = {"shape": shape, "dtype": "float64", "data": []}
    body = {"input": tensor, "target": tensor, "grad": True, "dtype": "float64"}
    answer = post(api, "/v1/losses/l1_loss", {**body, "params": {"reduction": "none"}}).json()
    assert answer["loss"] == tensor
    assert answer["grad"] == {"input": tensor, "target": tensor}
    one_dimensional = {"input": [], "target": [], "params": {"reduction": "none"}, "grad": True}
    answer = post(api, "/v1/losses/l1_loss", one_dimensional).json()
    assert answer["loss"] == [] and answer["grad"]["input"] == []  # [] is shape (0,) already
