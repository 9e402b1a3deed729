"""POST /v1/losses/{name} end to end: the seed article's examples, aliases, gradients asked for.

The seed examples are the ones in the README: each must equal
torch exactly and round to the number in the errata table of /work/shared/seed/SEED.md.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from fastapi.testclient import TestClient

from service.http.examples import LOSS_EXAMPLES
from service.losses.registry import catalogue
from tests.support.app import module_client
from tests.support.wire import assert_same, post

# The seed article's inputs (seed-article-zh.txt), in float32 as the article computes them.
PREDICTIONS, TRUTH = [1.5, 2.0, 3.2], [1.0, 2.5, 2.8]
LOGITS = [[1.2, 0.4, -0.5, 2.1, 0.3], [0.8, 1.9, -1.2, 0.4, 1.1], [-0.1, 2.4, 0.7, 1.5, -0.5]]
CLASSES = [3, 1, 4]
CLASS_WEIGHTS = [0.1, 0.2, 0.3, 0.2, 0.2]
PROBABILITIES, LABELS = [0.8, 0.2, 0.6, 0.9], [1, 0, 1, 1]
BCE_WEIGHTS = [1.0, 2.0, 1.0, 1.0]
BCE_LOGITS = [1.5, -1.2, 0.4, 2.1]


def f32(values: Any) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.float32)


@dataclass(frozen=True)
class Seed:
    title: str
    path: str
    body: dict[str, Any]
    torch_value: Callable[[], torch.Tensor]
    rounded: str  # the errata table's "PyTorch gives"


SEEDS = [
    Seed(
        "MAE",
        "/v1/losses/l1_loss",
        {"input": PREDICTIONS, "target": TRUTH},
        lambda: F.l1_loss(f32(PREDICTIONS), f32(TRUTH)),
        "0.4667",
    ),
    Seed(
        "MSE",
        "/v1/losses/mse_loss",
        {"input": PREDICTIONS, "target": TRUTH},
        lambda: F.mse_loss(f32(PREDICTIONS), f32(TRUTH)),
        "0.2200",
    ),
    Seed(
        "MSE, reduction='sum'",
        "/v1/losses/mse_loss",
        {"input": PREDICTIONS, "target": TRUTH, "params": {"reduction": "sum"}},
        lambda: F.mse_loss(f32(PREDICTIONS), f32(TRUTH), reduction="sum"),
        "0.6600",
    ),
    Seed(
        "CrossEntropy, 3x5 logits, targets [3, 1, 4]",
        "/v1/losses/cross_entropy",
        {"input": LOGITS, "target": CLASSES},
        lambda: F.cross_entropy(f32(LOGITS), torch.tensor(CLASSES)),
        "1.5892",
    ),
    Seed(
        "CrossEntropy with weight [0.1, 0.2, 0.3, 0.2, 0.2]",
        "/v1/losses/cross_entropy",
        {"input": LOGITS, "target": CLASSES, "params": {"weight": CLASS_WEIGHTS}},
        lambda: F.cross_entropy(f32(LOGITS), torch.tensor(CLASSES), weight=f32(CLASS_WEIGHTS)),
        "1.5892",
    ),
    Seed(
        "BCE",
        "/v1/losses/binary_cross_entropy",
        {"input": PROBABILITIES, "target": LABELS},
        lambda: F.binary_cross_entropy(f32(PROBABILITIES), f32(LABELS)),
        "0.2656",
    ),
    Seed(
        "BCE with weight [1, 2, 1, 1]",
        "/v1/losses/binary_cross_entropy",
        {"input": PROBABILITIES, "target": LABELS, "params": {"weight": BCE_WEIGHTS}},
        lambda: F.binary_cross_entropy(f32(PROBABILITIES), f32(LABELS), weight=f32(BCE_WEIGHTS)),
        "0.3214",
    ),
    Seed(
        "BCEWithLogits",
        "/v1/losses/binary_cross_entropy_with_logits",
        {"input": BCE_LOGITS, "target": LABELS},
        lambda: F.binary_cross_entropy_with_logits(f32(BCE_LOGITS), f32(LABELS)),
        "0.2733",
    ),
]


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    yield from module_client(tmp_path_factory)


@pytest.mark.parametrize("seed", SEEDS, ids=[s.title for s in SEEDS])
def test_seed_examples_equal_torch_and_the_errata_table(api: TestClient, seed: Seed) -> None:
    response = post(api, seed.path, seed.body)
    assert response.status_code == 200, response.text
    answer = response.json()
    expected = seed.torch_value()
    assert answer["loss"] == expected.item()
    assert f"{answer['loss']:.4f}" == seed.rounded
    assert answer == {"loss": expected.item(), "grad": {}, "dtype": "float32", "device": "cpu"}


@pytest.mark.parametrize(
    ("alias", "name"),
    [
        ("MSELoss", "mse_loss"),
        ("mseloss", "mse_loss"),
        ("l2_loss", "mse_loss"),
        ("mae", "l1_loss"),
        ("L1Loss", "l1_loss"),
        ("CrossEntropyLoss", "cross_entropy"),
        ("BCELoss", "binary_cross_entropy"),
        ("BCEWithLogitsLoss", "binary_cross_entropy_with_logits"),
    ],
)
def test_aliases_compute_the_same_loss(api: TestClient, alias: str, name: str) -> None:
    seed = next(s for s in SEEDS if s.path.endswith(f"/{name}"))
    body = {**seed.body, "grad": True}
    by_alias = post(api, f"/v1/losses/{alias}", body)
    assert by_alias.status_code == 200, by_alias.text
    assert by_alias.json() == post(api, seed.path, body).json()


def test_grad_true_list_and_false(api: TestClient) -> None:
    body = {"input": PREDICTIONS, "target": TRUTH}
    leaves = [f32(PREDICTIONS).requires_grad_(), f32(TRUTH).requires_grad_()]
    grads = torch.autograd.grad(F.l1_loss(leaves[0], leaves[1]), leaves)
    every = post(api, "/v1/losses/l1_loss", {**body, "grad": True}).json()["grad"]
    assert sorted(every) == ["input", "target"]
    assert_same(every["input"], grads[0])
    assert_same(every["target"], grads[1])
    only = post(api, "/v1/losses/l1_loss", {**body, "grad": ["target"]}).json()["grad"]
    assert list(only) == ["target"]
    assert_same(only["target"], grads[1])
    assert post(api, "/v1/losses/l1_loss", {**body, "grad": False}).json()["grad"] == {}
    assert post(api, "/v1/losses/l1_loss", {**body, "grad": []}).json()["grad"] == {}


def test_grad_true_skips_class_index_targets(api: TestClient) -> None:
    answer = post(
        api, "/v1/losses/cross_entropy", {"input": LOGITS, "target": CLASSES, "grad": True}
    )
    assert list(answer.json()["grad"]) == ["input"]


def test_unreduced_loss_is_a_tensor_and_its_gradient_that_of_the_sum(api: TestClient) -> None:
    body = {"input": LOGITS, "target": CLASSES, "params": {"reduction": "none"}, "grad": ["input"]}
    answer = post(api, "/v1/losses/cross_entropy", body).json()
    leaf = f32(LOGITS).requires_grad_()
    loss = F.cross_entropy(leaf, torch.tensor(CLASSES), reduction="none")
    (grad,) = torch.autograd.grad(loss.sum(), [leaf])
    assert isinstance(answer["loss"], list)
    assert_same(answer["loss"], loss)
    assert_same(answer["grad"]["input"], grad)


def test_kl_div_batchmean_is_the_sum_over_the_batch_size(api: TestClient) -> None:
    log_q = torch.log_softmax(f32(LOGITS), dim=-1)
    p = torch.softmax(f32(LOGITS).flip(-1), dim=-1)
    body = {"input": log_q.tolist(), "target": p.tolist()}
    batchmean = post(api, "/v1/losses/kl_div", {**body, "params": {"reduction": "batchmean"}})
    total = post(api, "/v1/losses/kl_div", {**body, "params": {"reduction": "sum"}})
    assert batchmean.json()["loss"] == F.kl_div(log_q, p, reduction="batchmean").item()
    assert batchmean.json()["loss"] == pytest.approx(total.json()["loss"] / 3, rel=1e-6)


def test_ctc_padded_and_concatenated_targets_agree(api: TestClient) -> None:
    log_probs = torch.log_softmax(torch.arange(30, dtype=torch.float32).reshape(5, 2, 3).sin(), -1)
    common = {"log_probs": log_probs.tolist(), "input_lengths": [5, 4], "target_lengths": [2, 1]}
    padded = post(api, "/v1/losses/ctc_loss", {**common, "targets": [[1, 2], [2, 1]], "grad": True})
    joined = post(api, "/v1/losses/ctc_loss", {**common, "targets": [1, 2, 2], "grad": True})
    assert padded.status_code == joined.status_code == 200
    assert padded.json() == joined.json()
    expected = F.ctc_loss(
        log_probs, torch.tensor([1, 2, 2]), torch.tensor([5, 4]), torch.tensor([2, 1])
    )
    assert padded.json()["loss"] == expected.item()


def test_class_probability_targets(api: TestClient) -> None:
    one_hot = F.one_hot(torch.tensor(CLASSES), 5).float()
    answer = post(api, "/v1/losses/cross_entropy", {"input": LOGITS, "target": one_hot.tolist()})
    assert answer.json()["loss"] == F.cross_entropy(f32(LOGITS), one_hot).item()


@pytest.mark.parametrize("name", sorted(LOSS_EXAMPLES))
def test_documented_examples_compute(api: TestClient, name: str) -> None:
    assert name in catalogue()
    response = post(api, f"/v1/losses/{name}", LOSS_EXAMPLES[name])
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    assert set(response.json()) == {"loss", "grad", "dtype", "device"}
