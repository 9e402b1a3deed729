"""Response bodies of the jobs API (what OpenAPI shows)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from service.jobs.config import JobConfig

JobStatus = Literal["queued", "running", "succeeded", "failed", "cancelled"]
Number = float | Literal["NaN", "Infinity", "-Infinity"]


class Download(BaseModel):
    file: str
    bytes: int
    total_bytes: int | None = None


class Progress(BaseModel):
    model_config = ConfigDict(extra="allow")

    phase: str = Field(
        description="starting, preparing_data, downloading, training, done",
    )
    epoch: int | None = Field(None, description="Current epoch, from 1.")
    epochs: int | None = None
    step: int | None = Field(None, description="Step within the epoch, from 1.")
    steps_per_epoch: int | None = None
    global_step: int | None = Field(None, description="Steps done over all epochs.")
    total_steps: int | None = None
    fraction: float | None = Field(None, description="global_step / total_steps.")
    samples_per_s: float | None = Field(None, description="Training speed this epoch.")
    eta_s: float | None = Field(None, description="Estimated seconds of training left.")
    loss: Number | None = Field(None, description="Latest recorded training loss.")
    download: Download | None = None


class EpochMetrics(BaseModel):
    epoch: int
    train_loss: Number = Field(description="Mean training loss over the epoch.")
    test_loss: Number | None = Field(description="Mean loss on the test set after the epoch.")
    test_accuracy: Number | None = Field(description="Test accuracy after the epoch, 0..1.")
    train_seconds: float
    eval_seconds: float
    samples_per_s: float


class LossPoint(BaseModel):
    step: int
    epoch: int
    loss: Number


class LossSeries(BaseModel):
    every_steps: int
    points: list[LossPoint]


class JobError(BaseModel):
    reason: str = Field(
        description="interrupted, dataset_unavailable, training_error, worker_crashed, worker_error"
    )
    message: str


class ModelInfo(BaseModel):
    format: Literal["safetensors"]
    bytes: int
    tensors: list[str] = Field(
        description="fc1.weight [hidden, 784], fc1.bias [hidden], fc2.weight [10, hidden], "
        "fc2.bias [10]; float32"
    )
    url: str


class Job(BaseModel):
    id: str
    status: JobStatus
    config: JobConfig = Field(description="The configuration, with the seed actually used.")
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    progress: Progress | None
    metrics: list[EpochMetrics]
    train_loss_series: LossSeries
    timings: dict[str, float | None] = Field(
        description="Seconds: queued_s, worker_start_s, data_s, train_s, eval_s, "
        "training_total_s, total_s (those known so far)."
    )
    device: str | None
    error: JobError | None
    model: ModelInfo | None


class JobList(BaseModel):
    jobs: list[Job]
    total: int
    limit: int
    offset: int
    next_offset: int | None


class PredictRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    images: Any = Field(
        description="Images in any tensor form: [28, 28], [784], [N, 28, 28], [N, 1, 28, 28] "
        "or [N, 784]; integers are pixels 0..255, floats intensities 0..1.",
        json_schema_extra={"example": {"shape": [1, 28, 28], "dtype": "uint8", "base64": "..."}},
    )
    normalized: bool = Field(False, description="Float images are already (x - 0.1307) / 0.3081.")
    encoding: Literal["json", "base64"] = Field(
        "json", description="Form of the probabilities tensor in the response."
    )


class PredictResponse(BaseModel):
    job_id: str
    classes: list[int] = Field(description="Predicted class of each image.")
    labels: list[str] = Field(description="Names of the predicted classes.")
    probabilities: Any = Field(description="Softmax of the model's output, [N, 10].")
