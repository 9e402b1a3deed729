"""Metrics across uvicorn workers: with ``PROMETHEUS_MULTIPROC_DIR`` set, every process writes
its values to files there and ``/metrics`` adds them up. The folder must start empty; this
module imports no metric, so the server's main process can empty it before creating any."""

from __future__ import annotations

import os
from pathlib import Path

ENVIRONMENT_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"


def reset_multiprocess_dir() -> Path | None:
    """Create the folder, or empty it of a previous run's files; ``None`` when not set."""
    directory = os.environ.get(ENVIRONMENT_VARIABLE)
    if not directory:
        return None
    path = Path(directory)
    path.mkdir(parents=True, exist_ok=True)
    for stale in path.glob("*.db"):
        stale.unlink()
    return path
