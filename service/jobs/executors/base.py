"""Where training runs: what the job manager needs from an executor.

``LocalExecutor`` (``executors.local``, the default) runs each job as a process on the leading
server process's host; ``RayExecutor`` (``executors.ray``) runs it in an actor on a Ray cluster.
Either way the run reports through a ``RecordWriter`` (``service.jobs.records``) into the job
store, so every replica sees its progress; only the leader launches jobs.
"""

from __future__ import annotations

from typing import Protocol

from service.jobs.stores.base import Record


class LaunchError(Exception):
    """The job could not be started (its record becomes ``failed``, ``worker_error``)."""


class Executor(Protocol):
    name: str  # "local" or "ray"

    def start(self) -> None:
        """This process now leads: get ready (warm workers). Called again after a lost
        leadership is regained; must not block for long (the event loop calls it)."""
        ...

    def device_problem(self, device: str) -> str | None:
        """Why a job asking for ``device`` cannot run here (None: it can)."""
        ...

    def launch(self, record: Record) -> None:
        """Start training ``record`` (already ``running`` in the store) without blocking; the
        run drives the record to a final status. ``LaunchError`` when it cannot start."""
        ...

    def cancel(self, job_id: str) -> bool:
        """Ask the run of ``job_id`` to stop (within one training step); whether this
        executor reached it (False: the leader must be asked through the store)."""
        ...

    def alive(self, record: Record) -> bool:
        """Whether the job of a ``running`` record is still training somewhere (a new leader
        asks, for each, before it marks it ``failed``/``interrupted``)."""
        ...

    def running(self) -> list[str]:
        """Ids of the jobs this executor drives from this process."""
        ...

    async def stop(self, grace_s: float) -> None:
        """The server stops. Local runs are cancelled (their records become ``failed``,
        ``interrupted``); runs on a cluster keep training and finish their records."""
        ...
