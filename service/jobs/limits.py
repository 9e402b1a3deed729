"""What one job may cost, checked before it is queued: its number of training steps and the
size of the model it writes. Both answer 422 naming the field to change."""

from __future__ import annotations

from service.datasets.catalog import dataset_spec
from service.errors import FieldError, InvalidInput
from service.jobs.config import JobConfig
from service.jobs.training import CLASSES, INPUT_FEATURES
from service.settings import Settings


def model_bytes(hidden_units: int) -> int:
    """Bytes of float32 parameters of the 784-hidden-10 MLP (fc1 and fc2, with biases)."""
    parameters = (INPUT_FEATURES + 1) * hidden_units + (hidden_units + 1) * CLASSES
    return 4 * parameters


def total_steps(config: JobConfig) -> tuple[int, int]:
    """(steps per epoch, steps in all) of ``config``."""
    samples = dataset_spec(config.dataset).train_size
    if config.train_samples is not None:
        samples = min(samples, config.train_samples)
    per_epoch = -(-samples // config.batch_size)
    return per_epoch, per_epoch * config.epochs


def check_job_limits(config: JobConfig, settings: Settings) -> None:
    errors: list[FieldError] = []
    per_epoch, steps = total_steps(config)
    if steps > settings.max_job_steps:
        errors.append(
            FieldError(
                ("body", "epochs"),
                f"{config.epochs} epochs of {per_epoch} steps (batch_size {config.batch_size}) "
                f"are {steps:,} training steps; at most {settings.max_job_steps:,} are allowed "
                "(LOSS_SERVICE_MAX_JOB_STEPS): lower epochs, raise batch_size or set "
                "train_samples",
                "job_steps",
            )
        )
    size = model_bytes(config.hidden_units)
    if size > settings.max_model_bytes:
        largest = max(
            1, (settings.max_model_bytes // 4 - CLASSES) // (INPUT_FEATURES + 1 + CLASSES)
        )
        errors.append(
            FieldError(
                ("body", "hidden_units"),
                f"a model with {config.hidden_units} hidden units takes {size:,} bytes; at most "
                f"{settings.max_model_bytes:,} are allowed (LOSS_SERVICE_MAX_MODEL_BYTES), "
                f"i.e. hidden_units <= {largest}",
                "model_size",
            )
        )
    if errors:
        first = errors[0]
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        raise InvalidInput(f"{'.'.join(map(str, first.loc))}: {first.msg}{more}", errors)
