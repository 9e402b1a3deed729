"""The training loop itself, in-process: every loss learns, cancellation, determinism."""

from __future__ import annotations

from pathlib import Path
from typing import get_args

import pytest
import torch

from service.datasets import load_split
from service.datasets.catalog import FILE_NAMES
from service.jobs.config import JobConfig, LossName
from service.jobs.inference import TENSOR_NAMES, images_to_input, load_model, predict, save_model
from service.jobs.training import Cancelled, TrainingHooks, normalise, train

from .conftest import FIXTURE


@pytest.fixture(scope="module")
def data() -> tuple[torch.Tensor, ...]:
    split = load_split({role: FIXTURE / name for role, name in FILE_NAMES.items()})
    return (
        normalise(split.train_images),
        split.train_labels,
        normalise(split.test_images),
        split.test_labels,
    )


@pytest.mark.parametrize("loss", get_args(LossName))
def test_every_loss_learns(loss: str, data: tuple[torch.Tensor, ...]) -> None:
    # Regression losses on softmax outputs have small gradients: they learn, but slower.
    regression = loss in {"l1_loss", "smooth_l1_loss", "huber_loss", "mse_loss"}
    config = JobConfig(loss=loss, epochs=3, learning_rate=1e-2 if regression else 1e-3)  # type: ignore[arg-type]
    result = train(config, 0, *data, torch.device("cpu"))
    last = result.epochs[-1]
    assert last.test_accuracy > (0.3 if regression else 0.6), (loss, last)
    assert result.epochs[-1].train_loss < result.epochs[0].train_loss


@pytest.mark.parametrize("optimizer", ["adam", "adamw", "sgd"])
def test_optimizers(optimizer: str, data: tuple[torch.Tensor, ...]) -> None:
    lr = 0.05 if optimizer == "sgd" else 1e-3
    config = JobConfig(optimizer=optimizer, epochs=1, learning_rate=lr)  # type: ignore[arg-type]
    assert train(config, 0, *data, torch.device("cpu")).epochs[0].test_accuracy > 0.5


def test_same_seed_same_model(data: tuple[torch.Tensor, ...]) -> None:
    """Bit for bit, at the same torch thread count (docs/jobs-reproducibility.md)."""
    config = JobConfig(epochs=2)
    first, second = (train(config, 7, *data, torch.device("cpu")) for _ in range(2))
    a, b = first.model.state_dict(), second.model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    numbers = [
        [(e.train_loss, e.test_loss, e.test_accuracy) for e in r.epochs] for r in (first, second)
    ]
    assert numbers[0] == numbers[1]


def test_cancel_within_one_step(data: tuple[torch.Tensor, ...]) -> None:
    steps = 0

    def should_stop() -> bool:
        nonlocal steps
        steps += 1
        return steps > 3

    with pytest.raises(Cancelled):
        train(JobConfig(epochs=5), 0, *data, torch.device("cpu"), TrainingHooks(should_stop))
    assert steps == 4


def test_model_file_and_predict(tmp_path: Path, data: tuple[torch.Tensor, ...]) -> None:
    model = train(JobConfig(epochs=2), 0, *data, torch.device("cpu")).model
    path = tmp_path / "m.safetensors"
    save_model(model, path, {"dataset": "mnist"})
    loaded = load_model(path)
    from safetensors import safe_open

    with safe_open(str(path), "pt") as f:
        assert sorted(f.keys()) == sorted(TENSOR_NAMES)
        assert f.metadata()["dataset"] == "mnist"
    split = load_split({role: FIXTURE / name for role, name in FILE_NAMES.items()})
    x = images_to_input(split.test_images, ("images",), normalized=False)
    classes, probabilities = predict(loaded, x)
    assert probabilities.shape == (200, 10)
    assert torch.allclose(probabilities.sum(1), torch.ones(200))
    assert (classes == split.test_labels).float().mean() > 0.7
    # floats in [0, 1] mean the same as uint8 pixels
    same = images_to_input(split.test_images.float() / 255, ("images",), normalized=False)
    assert torch.allclose(same, x, atol=1e-5)
