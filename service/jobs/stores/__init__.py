"""Job stores: SQLite on one host (the default), PostgreSQL for replicas on many hosts."""

from __future__ import annotations

from typing import TYPE_CHECKING

from service.jobs.stores.base import (
    PROGRESS_EVENTS_KEPT,
    TERMINAL_STATUSES,
    DamagedRecord,
    JobStore,
    Record,
)

if TYPE_CHECKING:
    from service.settings import Settings

__all__ = [
    "PROGRESS_EVENTS_KEPT",
    "TERMINAL_STATUSES",
    "DamagedRecord",
    "JobStore",
    "Record",
    "open_store",
]


def open_store(settings: Settings) -> JobStore:
    """The store the settings name: PostgreSQL at ``database_url``, else SQLite at
    ``db_path`` (models in ``models_dir``)."""
    if settings.database_url:
        from service.jobs.stores.postgres import PostgresJobStore  # the optional extra

        return PostgresJobStore(settings.database_url)
    from service.jobs.stores.sqlite import SqliteJobStore

    return SqliteJobStore(settings.db_path, settings.models_dir)
