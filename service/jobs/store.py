"""Job records and their event log, in SQLite.

One row per job holds the whole record as JSON (plus the status and creation order, indexed,
for listing); ``job_events`` is the append-only log that Server-Sent Events replay, so a client
can resume with ``Last-Event-ID`` even across a restart. WAL journaling keeps readers and the
writer out of each other's way; one connection shared under a lock serves all threads.
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path
from typing import Any

import orjson

Record = dict[str, Any]

SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    status TEXT NOT NULL,
    record TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS jobs_by_status ON jobs (status, seq);
CREATE TABLE IF NOT EXISTS job_events (
    job_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    event TEXT NOT NULL,
    data TEXT NOT NULL,
    PRIMARY KEY (job_id, seq)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS job_cancels (job_id TEXT PRIMARY KEY);
"""


class JobStore:
    def __init__(self, path: Path) -> None:
        self.path = path
        if str(path) != ":memory:":
            path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._lock = threading.Lock()
        with self._lock:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute("PRAGMA busy_timeout=5000")
            self._db.executescript(SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # Records

    def insert(self, record: Record, event: str, data: Record) -> int:
        """Store a new record and its first event; the event's id."""
        with self._lock, self._db:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.execute(
                "INSERT INTO jobs (id, status, record) VALUES (?, ?, ?)",
                (record["id"], record["status"], _dumps(record)),
            )
            return self._append(record["id"], event, data)

    def update(self, record: Record, event: str | None = None, data: Record | None = None) -> int:
        """Replace the record, and append an event in the same transaction; the event's id
        (0 without an event)."""
        with self._lock, self._db:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.execute(
                "UPDATE jobs SET status = ?, record = ? WHERE id = ?",
                (record["status"], _dumps(record), record["id"]),
            )
            return self._append(record["id"], event, data or {}) if event else 0

    def update_if(self, record: Record, expected: str, event: str, data: Record) -> bool:
        """Replace the record only while its stored status is ``expected`` (another process
        may have moved it on); whether it did."""
        with self._lock, self._db:
            self._db.execute("BEGIN IMMEDIATE")
            changed = self._db.execute(
                "UPDATE jobs SET status = ?, record = ? WHERE id = ? AND status = ?",
                (record["status"], _dumps(record), record["id"], expected),
            ).rowcount
            if changed:
                self._append(record["id"], event, data)
            return bool(changed)

    def request_cancel(self, job_id: str) -> None:
        """Ask the process that runs ``job_id`` to cancel it (it polls ``take_cancels``)."""
        with self._lock:
            self._db.execute("INSERT OR IGNORE INTO job_cancels (job_id) VALUES (?)", (job_id,))

    def take_cancels(self) -> list[str]:
        with self._lock, self._db:
            self._db.execute("BEGIN IMMEDIATE")
            rows = self._db.execute("SELECT job_id FROM job_cancels").fetchall()
            self._db.execute("DELETE FROM job_cancels")
        return [str(row[0]) for row in rows]

    def get(self, job_id: str) -> Record | None:
        with self._lock:
            row = self._db.execute("SELECT record FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return None if row is None else _loads(row[0])

    def page(
        self, status: str | None = None, limit: int = 20, offset: int = 0
    ) -> tuple[list[Record], int]:
        """Records newest first, and how many match in all."""
        where, args = ("WHERE status = ?", [status]) if status else ("", [])
        with self._lock:
            total = self._db.execute(f"SELECT count(*) FROM jobs {where}", args).fetchone()[0]
            rows = self._db.execute(
                f"SELECT record FROM jobs {where} ORDER BY seq DESC LIMIT ? OFFSET ?",
                [*args, limit, offset],
            ).fetchall()
        return [_loads(row[0]) for row in rows], int(total)

    def with_status(self, status: str) -> list[Record]:
        """Records with ``status``, oldest first."""
        with self._lock:
            rows = self._db.execute(
                "SELECT record FROM jobs WHERE status = ? ORDER BY seq", (status,)
            ).fetchall()
        return [_loads(row[0]) for row in rows]

    def count(self, status: str) -> int:
        with self._lock:
            row = self._db.execute("SELECT count(*) FROM jobs WHERE status = ?", (status,))
            return int(row.fetchone()[0])

    # Events

    def _append(self, job_id: str, event: str, data: Record) -> int:
        row = self._db.execute(
            "SELECT coalesce(max(seq), 0) + 1 FROM job_events WHERE job_id = ?", (job_id,)
        ).fetchone()
        seq = int(row[0])
        self._db.execute(
            "INSERT INTO job_events (job_id, seq, event, data) VALUES (?, ?, ?, ?)",
            (job_id, seq, event, _dumps(data)),
        )
        return seq

    def events_after(self, job_id: str, after: int) -> list[tuple[int, str, str]]:
        """Events of ``job_id`` with ids above ``after``: (id, name, JSON data)."""
        with self._lock:
            rows = self._db.execute(
                "SELECT seq, event, data FROM job_events WHERE job_id = ? AND seq > ? ORDER BY seq",
                (job_id, after),
            ).fetchall()
        return [(int(seq), str(event), str(data)) for seq, event, data in rows]


def _dumps(value: Record) -> str:
    return orjson.dumps(value).decode()


def _loads(text: str) -> Record:
    value: Record = orjson.loads(text)
    return value
