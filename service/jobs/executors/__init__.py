"""Executors: where training jobs run (``LOSS_SERVICE_JOBS_EXECUTOR``)."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

from service.jobs.executors.base import Executor, LaunchError

if TYPE_CHECKING:  # not at import: ``loss-service`` imports this before it sets up metrics
    from service.jobs.records import RecordWriter
    from service.jobs.stores import JobStore
    from service.settings import Settings

__all__ = ["Executor", "LaunchError", "check_executor_or_exit", "make_executor"]

EXIT_CONFIG = 78  # EX_CONFIG, as for an unusable job database


def check_executor_or_exit(settings: Settings) -> None:
    """Before serving: the ``ray`` executor needs the ``ray`` extra; without it, one line on
    stderr and exit 78 (installing it needs a person, restarting does not help)."""
    if settings.jobs_executor != "ray":
        return
    try:
        import ray  # noqa: F401
    except ImportError:
        print(
            "loss-service: LOSS_SERVICE_JOBS_EXECUTOR=ray but Ray is not installed: "
            "pip install 'loss-service[ray]'",
            file=sys.stderr,
            flush=True,
        )
        raise SystemExit(EXIT_CONFIG) from None


def make_executor(
    settings: Settings, store: JobStore, records: RecordWriter, on_done: Callable[[], None]
) -> Executor:
    """The executor the settings name; ``on_done`` is called when a run ends (a slot frees)."""
    if settings.jobs_executor == "ray":
        from service.jobs.executors.ray import RayExecutor  # the optional extra

        return RayExecutor(settings, store, notify=records.notify, on_done=on_done)
    from service.jobs.executors.local import LocalExecutor

    return LocalExecutor(settings, records, on_done)
