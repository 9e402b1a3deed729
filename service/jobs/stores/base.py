"""What the job manager, the record writer and the routes need from a job store.

Two stores implement it: ``SqliteJobStore`` (``stores.sqlite``, the embedded default: one file,
one host) and ``PostgresJobStore`` (``stores.postgres``: any number of API replicas on any
hosts, ``LOSS_SERVICE_DATABASE_URL``). Everything that coordinates replicas goes through the
store, so that the database, not home-made code, carries it: leadership (a lock the database
holds for one connection), cancel requests, and the change feed that wakes event streams.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal, Protocol

Record = dict[str, Any]

TERMINAL_STATUSES = ("succeeded", "failed", "cancelled")
PROGRESS_EVENTS_KEPT = 100  # older ``progress`` events are dropped: each is a snapshot

# What a change feed reports: an event was appended to a job's log, or a cancel was asked.
ChangeKind = Literal["event", "cancel"]
ChangeCallback = Callable[[ChangeKind, str], None]


class DamagedRecord(Exception):
    """The stored JSON of one job cannot be read."""


class JobStore(Protocol):
    where: str  # the database, for messages (a path, or a URL without its password)

    # Records and their event log
    def insert(self, record: Record, event: str, data: Record, owner: str | None = None) -> int: ...
    def update(
        self,
        record: Record,
        event: str | None = None,
        data: Record | None = None,
        done: Record | None = None,
    ) -> int: ...
    def update_if(
        self, record: Record, expected: str, event: str, data: Record, done: Record | None = None
    ) -> bool: ...
    def delete(self, job_id: str, status: str | None = None) -> bool: ...
    def get(self, job_id: str) -> Record | None: ...
    def head(self, job_id: str) -> tuple[str, str | None] | None: ...
    def page(
        self,
        status: str | None = None,
        limit: int = 20,
        offset: int = 0,
        owner: str | None = None,
    ) -> tuple[list[Record], int]: ...
    def with_status(self, status: str) -> list[Record]: ...
    def count(self, status: str, owner: str | None = None) -> int: ...
    def expired(self, finished_before: str | None, keep: int | None, limit: int) -> list[str]: ...
    def events_after(self, job_id: str, after: int) -> list[tuple[int, str, str]]: ...

    # Loss series
    def add_point(self, job_id: str, n: int, point: Record) -> None: ...
    def thin_points(self, job_id: str, stride: int) -> int: ...
    def with_points(self, records: list[Record]) -> list[Record]: ...

    # Models
    def save_model(self, job_id: str, source: Path) -> None:
        """Keep the model file ``source`` that a training run wrote as the job's model
        (called before the job is recorded ``succeeded``)."""
        ...

    def model_path(self, job_id: str, cache_dir: Path) -> Path | None:
        """A local file holding the job's model (fetched into ``cache_dir`` when the store
        keeps models elsewhere), or None when it has none."""
        ...

    # Coordination between server processes and replicas
    def request_cancel(self, job_id: str) -> None: ...
    def take_cancels(self) -> list[str]: ...
    def try_lead(self) -> bool:
        """Become the leader when nobody leads (never blocks); whether this store leads."""
        ...

    def still_leading(self) -> bool:
        """Whether the leadership taken by ``try_lead`` still holds (a lost database
        connection loses it)."""
        ...

    def listen(self, callback: ChangeCallback) -> bool:
        """Call ``callback`` (from another thread) for every change any process makes;
        whether the store can (False: the manager polls instead)."""
        ...

    def close(self) -> None: ...
