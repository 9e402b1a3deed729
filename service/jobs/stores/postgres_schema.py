"""The PostgreSQL store's schema: numbered SQL files (``migrations/0001_jobs.sql`` …) applied
in order when a store opens, never by hand.

All of them run in one transaction that first takes a transaction-scoped advisory lock, so
replicas that start together apply each migration once (the others wait, then find it
applied); ``schema_migrations`` records the applied versions. A database that has a version
this code does not know was upgraded by a newer release: it is refused (``NewerSchema``)
rather than used with a schema this code may misread.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import psycopg

# Advisory lock keys (the two-integer form): this service's namespace, then the lock.
LOCK_NAMESPACE = 0x4C4F5353  # "LOSS"
LEADER_LOCK = 1
MIGRATION_LOCK = 2

_FILE_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: bytes


class NewerSchema(Exception):
    """The database holds migrations this code does not know."""

    def __init__(self, unknown: list[int]) -> None:
        super().__init__(", ".join(str(version) for version in unknown))
        self.unknown = unknown


def migrations() -> list[Migration]:
    """The migrations shipped in the package, in order."""
    found = []
    for entry in (
        resources.files(__package__ or "service.jobs.stores").joinpath("migrations").iterdir()
    ):
        match = _FILE_NAME.match(entry.name)
        if match:
            found.append(Migration(int(match[1]), match[2], entry.read_bytes()))
    found.sort(key=lambda migration: migration.version)
    versions = [migration.version for migration in found]
    if versions != list(range(1, len(found) + 1)):
        raise RuntimeError(f"migrations are not numbered 1, 2, …: {versions}")
    return found


def migrate(connection: psycopg.Connection[Any], upto: int | None = None) -> list[int]:
    """Apply the migrations the database lacks (up to version ``upto``, when given); the
    versions applied now. Raises ``NewerSchema`` (and changes nothing) for a database from a
    newer release."""
    known = migrations()
    applied_now: list[int] = []
    with connection.transaction():
        connection.execute("SELECT pg_advisory_xact_lock(%s, %s)", (LOCK_NAMESPACE, MIGRATION_LOCK))
        connection.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " version integer PRIMARY KEY,"
            " name text NOT NULL,"
            " applied_at timestamptz NOT NULL DEFAULT now())"
        )
        applied = {
            int(str(row[0]))
            for row in connection.execute("SELECT version FROM schema_migrations").fetchall()
        }
        unknown = sorted(applied - {migration.version for migration in known})
        if unknown:
            raise NewerSchema(unknown)
        for migration in known:
            if migration.version in applied or (upto is not None and migration.version > upto):
                continue
            connection.execute(migration.sql)
            connection.execute(
                "INSERT INTO schema_migrations (version, name) VALUES (%s, %s)",
                (migration.version, migration.name),
            )
            applied_now.append(migration.version)
    return applied_now


def applied_versions(connection: psycopg.Connection[Any]) -> list[int]:
    rows = connection.execute("SELECT version FROM schema_migrations ORDER BY version").fetchall()
    return [int(str(row[0])) for row in rows]
