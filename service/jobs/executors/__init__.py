"""Executors: where training jobs run (``LOSS_SERVICE_JOBS_EXECUTOR``)."""

from __future__ import annotations

from collections.abc import Callable

from service.jobs.executors.base import Executor, LaunchError
from service.jobs.records import RecordWriter
from service.jobs.stores import JobStore
from service.settings import Settings

__all__ = ["Executor", "LaunchError", "make_executor"]


def make_executor(
    settings: Settings, store: JobStore, records: RecordWriter, on_done: Callable[[], None]
) -> Executor:
    """The executor the settings name; ``on_done`` is called when a run ends (a slot frees)."""
    if settings.jobs_executor == "ray":
        from service.jobs.executors.ray import RayExecutor  # the optional extra

        return RayExecutor(settings, store, notify=records.notify, on_done=on_done)
    from service.jobs.executors.local import LocalExecutor

    return LocalExecutor(settings, records, on_done)
