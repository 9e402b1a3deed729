"""Every setting of the service, read once from the environment (prefix ``LOSS_SERVICE_``)."""

from __future__ import annotations

import json
import os
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal, Self

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

MiB = 1024 * 1024


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LOSS_SERVICE_", extra="ignore")

    # Server
    host: str = Field("127.0.0.1", description="Address `python -m service` binds to.")
    port: int = Field(8000, ge=1, le=65535, description="Port `python -m service` listens on.")
    workers: int = Field(1, ge=1, le=64, description="Uvicorn worker processes.")
    torch_threads: int | None = Field(
        None,
        ge=1,
        description="Torch intra-op threads per worker; default: CPU cores / workers.",
    )
    log_level: str = Field("info", description="Log level: debug, info, warning, error.")

    # Limits that protect the server
    max_body_bytes: int = Field(
        64 * MiB, ge=1024, description="Largest request body accepted (413 beyond)."
    )
    max_tensor_elements: int = Field(
        16_000_000, ge=1, description="Most tensor elements in one request, all tensors together."
    )
    max_nesting_depth: int = Field(
        32, ge=1, le=64, description="Deepest nesting of a JSON tensor (dimensions)."
    )
    compute_timeout_s: float = Field(
        60.0, gt=0, description="Longest a request may compute before it is answered 503."
    )
    inline_body_bytes: int = Field(
        256 * 1024,
        ge=0,
        description="Requests smaller than this compute on the event loop; larger ones in a "
        "worker thread, so the loop keeps answering.",
    )
    max_concurrent_computations: int = Field(
        2, ge=1, description="Large requests computing at once per worker; others wait."
    )

    # Access
    api_keys: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Bearer keys that /v1 endpoints require (JSON list or comma-separated); "
        "empty: no authentication.",
    )
    admin_keys: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="API keys that see and manage every job (JSON list or comma-separated; "
        "they are valid API keys too). Other keys see only the jobs they created.",
    )

    # Grading
    max_evaluate_items: int = Field(
        1000, ge=1, description="Most loss requests in one POST /v1/evaluate (413 beyond)."
    )
    max_submissions: int = Field(
        10_000, ge=1, description="Most submissions graded in one POST /v1/grade (413 beyond)."
    )

    # Jobs and data
    data_dir: Path = Field(Path("data"), description="Datasets: one folder per dataset.")
    db_path: Path = Field(Path("var/jobs.sqlite3"), description="SQLite database of jobs.")
    models_dir: Path = Field(Path("var/models"), description="Trained model weights.")
    max_concurrent_jobs: int = Field(1, ge=1, le=64, description="Training jobs run at once.")
    max_queued_jobs: int = Field(
        16, ge=0, description="Jobs waiting to run; a new job beyond this is answered 429."
    )
    max_jobs_per_key: int = Field(
        4,
        ge=0,
        description="Jobs one API key may have queued or running at once (429 beyond); "
        "0: no per-key limit. Applies when API keys are configured.",
    )
    max_job_steps: int = Field(
        1_000_000,
        ge=1,
        description="Most training steps one job may take (epochs x steps per epoch); a "
        "config beyond is answered 422.",
    )
    max_model_bytes: int = Field(
        4 * MiB,
        ge=4096,
        description="Largest model a job may train: 4 x (795 x hidden_units + 10) bytes of "
        "float32 parameters; a config beyond is answered 422.",
    )
    job_max_loss_points: int = Field(
        500,
        ge=2,
        le=100_000,
        description="Most points kept in a job's training-loss series; when full, every other "
        "point is dropped and the spacing (`every_steps`) doubles.",
    )
    job_retention_days: float = Field(
        30.0,
        ge=0,
        description="Finished jobs and their models are deleted this many days after they "
        "finished; 0: no age limit.",
    )
    job_retention_count: int = Field(
        500,
        ge=0,
        description="Finished jobs kept (the newest); older ones and their models are "
        "deleted; 0: no count limit.",
    )
    job_torch_threads: int = Field(
        1, ge=1, description="Torch threads of each training process (one core by default)."
    )
    job_nice: int = Field(
        10, ge=0, le=19, description="CPU niceness of training processes (requests come first)."
    )
    job_progress_interval_s: float = Field(
        0.5, gt=0, description="Seconds between progress events of a running job."
    )
    mnist_mirrors: list[str] = Field(
        default_factory=list,
        description="Base URLs to download MNIST from (JSON list); empty: the usual mirrors.",
    )
    fashion_mnist_mirrors: list[str] = Field(
        default_factory=list,
        description="Base URLs to download Fashion-MNIST from (JSON list); empty: the usual "
        "mirrors.",
    )
    download_timeout_s: float = Field(
        30.0, gt=0, description="Timeout of each dataset download connection and read."
    )

    # Operations
    log_format: Literal["json", "text"] = Field(
        "json", description="Log lines as JSON objects (`json`) or plain text (`text`)."
    )
    access_log: bool = Field(True, description="Log one line per request (with its request id).")
    cors_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Origins browsers may call from (JSON list or comma-separated; `*`: any); "
        "empty: no CORS headers.",
    )
    shutdown_timeout_s: int = Field(
        10,
        ge=1,
        description="On SIGTERM, how long in-flight requests (and open event streams) may take "
        "to finish before they are cut; running jobs are then recorded as interrupted.",
    )

    @field_validator("api_keys", "admin_keys", "cors_origins", mode="before")
    @classmethod
    def _split_list(cls, value: object) -> object:
        """A JSON list, or a comma-separated one."""
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                return json.loads(text)
            return [item.strip() for item in text.split(",") if item.strip()]
        return value

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        level = value.lower()
        if level not in {"debug", "info", "warning", "error", "critical"}:
            raise ValueError("must be one of debug, info, warning, error, critical")
        return level

    @model_validator(mode="after")
    def _admin_keys_are_keys(self) -> Self:
        """Admin keys are API keys too (and setting one turns authentication on)."""
        missing = [key for key in self.admin_keys if key not in self.api_keys]
        if missing:
            self.api_keys = [*self.api_keys, *missing]
        return self

    def effective_torch_threads(self) -> int:
        if self.torch_threads is not None:
            return self.torch_threads
        return max(1, (os.cpu_count() or 1) // self.workers)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()


def markdown_table() -> str:
    """The README's configuration table, generated from the fields above."""
    rows = ["| variable | default | what |", "| --- | --- | --- |"]
    for name, field in Settings.model_fields.items():
        default = field.get_default(call_default_factory=True)
        shown = "(none)" if default in (None, [], "") else f"`{default}`"
        text = (field.description or "").replace("|", "\\|")
        rows.append(f"| `LOSS_SERVICE_{name.upper()}` | {shown} | {text} |")
    return "\n".join(rows) + "\n"


# Operations


def describe_invalid_settings(error: ValidationError) -> str:
    """One line per bad value, naming the environment variable to fix."""
    lines = ["invalid configuration (environment variables):"]
    for item in error.errors():
        field = ".".join(str(part) for part in item["loc"])
        variable = f"{Settings.model_config.get('env_prefix', '')}{field}".upper()
        lines.append(f"  {variable}={item.get('input')!r}: {item['msg']}")
    return "\n".join(lines)


def get_settings_or_exit() -> Settings:
    """``get_settings()``, or exit (status 1) with a message that names each bad variable."""
    try:
        return get_settings()
    except ValidationError as error:
        raise SystemExit(describe_invalid_settings(error)) from None


if __name__ == "__main__":
    print(markdown_table(), end="")
