"""The configuration of one training job. Defaults reproduce the seed article's recipe:
MLP 784-128-10, Adam with learning rate 1e-3, batch 64, 5 epochs, cross-entropy."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from service.datasets.catalog import DatasetName

OptimizerName = Literal["adam", "sgd", "adamw"]
LossName = Literal[
    "cross_entropy",
    "nll_loss",
    "multi_margin_loss",
    "mse_loss",
    "l1_loss",
    "smooth_l1_loss",
    "huber_loss",
    "kl_div",
    "binary_cross_entropy_with_logits",
    "multilabel_soft_margin_loss",
]

LOSS_ALIASES = {
    "CrossEntropyLoss": "cross_entropy",
    "NLLLoss": "nll_loss",
    "MultiMarginLoss": "multi_margin_loss",
    "MSELoss": "mse_loss",
    "l2_loss": "mse_loss",
    "L1Loss": "l1_loss",
    "mae": "l1_loss",
    "SmoothL1Loss": "smooth_l1_loss",
    "HuberLoss": "huber_loss",
    "KLDivLoss": "kl_div",
    "BCEWithLogitsLoss": "binary_cross_entropy_with_logits",
    "MultiLabelSoftMarginLoss": "multilabel_soft_margin_loss",
}

_DEVICE = re.compile(r"^(auto|cpu|cuda|cuda:\d+|mps)$")


class JobConfig(BaseModel):
    """``POST /v1/jobs/mnist``: every field is optional."""

    # Strict: JSON numbers only where numbers are meant (``false`` is not the seed 0), and
    # whole numbers where integers are (``2.0`` epochs is a mistake worth naming).
    model_config = ConfigDict(extra="forbid", strict=True)

    dataset: DatasetName = Field(
        "mnist",
        description="Folder under LOSS_SERVICE_DATA_DIR holding the four IDX files "
        "(downloaded when missing).",
    )
    epochs: int = Field(5, ge=1, le=1000, description="Passes over the training set.")
    batch_size: int = Field(64, ge=1, le=65536, description="Images per training step.")
    learning_rate: float = Field(1e-3, gt=0, le=10, description="Optimizer step size.")
    optimizer: OptimizerName = Field(
        "adam", description="`adam`, `adamw`, or `sgd` (with `momentum`)."
    )
    momentum: float = Field(0.9, ge=0, lt=1, description="SGD momentum (sgd only).")
    weight_decay: float = Field(
        0.0, ge=0, le=1, description="L2 penalty (adam, sgd) or decoupled decay (adamw)."
    )
    hidden_units: int = Field(128, ge=1, le=8192, description="Width of the hidden layer.")
    loss: LossName = Field(
        "cross_entropy",
        description="Training loss (PyTorch functional name; torch.nn class names accepted). "
        "cross_entropy, multi_margin_loss: on logits; nll_loss: on log-softmax; kl_div: "
        "log-softmax against one-hot; mse_loss, l1_loss, smooth_l1_loss, huber_loss: softmax "
        "against one-hot; binary_cross_entropy_with_logits, multilabel_soft_margin_loss: "
        "logits against one-hot.",
    )
    seed: int | None = Field(
        None,
        ge=0,
        le=2**63 - 1,
        description="Seed for initialisation and shuffling; the job records the one used.",
    )
    device: str = Field(
        "auto", description="`auto` (a GPU when available), `cpu`, `cuda`, `cuda:N`, `mps`."
    )
    train_samples: int | None = Field(
        None, ge=1, description="Train on the first N training images only (quick runs)."
    )
    test_samples: int | None = Field(
        None, ge=1, description="Evaluate on the first N test images only."
    )
    log_every: int = Field(
        100, ge=1, le=1_000_000, description="Record the training loss every N steps."
    )

    @field_validator("loss", mode="before")
    @classmethod
    def _loss_alias(cls, value: object) -> object:
        if isinstance(value, str):
            return LOSS_ALIASES.get(value, value)
        return value

    @field_validator("device")
    @classmethod
    def _device_form(cls, value: str) -> str:
        if not _DEVICE.match(value):
            raise ValueError("must be auto, cpu, cuda, cuda:N or mps")
        return value
