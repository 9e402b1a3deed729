"""Job records, their loss series and their event log, in SQLite: the embedded store.

One row per job holds the record as JSON, beside the columns that queries need (status,
creation order, owner, finish time); ``job_loss_points`` holds each job's training-loss series,
one row per point, so that recording a point is one insert and never rewrites the record;
``job_events`` is the append-only log that Server-Sent Events replay, so a client can resume
with ``Last-Event-ID`` even across a restart. WAL journaling keeps readers and the writer out of
each other's way; one connection shared under a lock serves all threads.

Server processes of one host (``--workers N``, or two servers on one database) coordinate
through it too: the one holding an exclusive ``fcntl`` lock on ``<db>.lock`` leads, and the
others poll (SQLite has no change feed). Models are files in the models folder.

A row whose JSON cannot be read (a damaged file, a hand edit) is reported once in the log and
left out of listings; it never makes a whole page fail. A file that is not a database at all
raises ``JobDatabaseError`` (``service.jobs.database``) when the store opens.
"""

from __future__ import annotations

import contextlib
import fcntl
import shutil
import threading
from pathlib import Path
from typing import IO

from service.jobs.stores.base import (
    TERMINAL_STATUSES,
    ChangeCallback,
    DamagedRecord,
    Record,
)
from service.jobs.stores.rows import RecordParser, dumps
from service.jobs.stores.sqlite_schema import open_database
from service.jobs.stores.sqlite_series import SeriesAndEvents


class SqliteJobStore(SeriesAndEvents):
    def __init__(self, path: Path, models_dir: Path | None = None) -> None:
        self.path = path
        self.where = str(path)
        self.models_dir = models_dir if models_dir is not None else path.parent / "models"
        self._lock_file: IO[str] | None = None
        self._leading = False
        self._parser = RecordParser(str(path))
        self._lock = threading.Lock()
        self._db = open_database(path)

    def close(self) -> None:
        with self._lock:
            self._db.close()
        if self._lock_file is not None:
            self._lock_file.close()  # releases the leader lock
            self._lock_file = None
            self._leading = False

    # Coordination

    def try_lead(self) -> bool:
        if self._leading:
            return True
        if str(self.path) == ":memory:":
            self._leading = True
            return True
        handle = open(f"{self.path}.lock", "a+")  # noqa: SIM115 - held open while leading
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            return False
        self._lock_file = handle
        self._leading = True
        return True

    def still_leading(self) -> bool:
        return self._leading  # a lock on an open file cannot be lost

    def listen(self, callback: ChangeCallback) -> bool:
        return False  # no change feed between processes: the manager polls

    # Models: files in the models folder

    def save_model(self, job_id: str, source: Path) -> None:
        target = self._model_file(job_id)
        if source.resolve() != target.resolve():
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(str(source), target)

    def model_path(self, job_id: str, cache_dir: Path) -> Path | None:
        path = self._model_file(job_id)
        return path if path.is_file() else None

    def _model_file(self, job_id: str) -> Path:
        return self.models_dir / f"{job_id}.safetensors"

    # Records

    def insert(self, record: Record, event: str, data: Record, owner: str | None = None) -> int:
        """Store a new record and its first event; the event's id."""
        with self._lock, self._db:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.execute(
                "INSERT INTO jobs (id, status, record, owner, finished_at) VALUES (?, ?, ?, ?, ?)",
                (
                    record["id"],
                    record["status"],
                    dumps(record),
                    owner,
                    record.get("finished_at"),
                ),
            )
            return self._append(record["id"], event, data)

    def update(
        self,
        record: Record,
        event: str | None = None,
        data: Record | None = None,
        done: Record | None = None,
    ) -> int:
        """Replace the record, and append an event (and a ``done`` event with ``done``) in the
        same transaction; the event's id (0 without an event)."""
        with self._lock, self._db:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.execute(
                "UPDATE jobs SET status = ?, record = ?, finished_at = ? WHERE id = ?",
                (record["status"], dumps(record), record.get("finished_at"), record["id"]),
            )
            seq = self._append(record["id"], event, data or {}) if event else 0
            if done is not None:
                self._append(record["id"], "done", done)
            return seq

    def update_if(
        self, record: Record, expected: str, event: str, data: Record, done: Record | None = None
    ) -> bool:
        """Replace the record only while its stored status is ``expected`` (another process
        may have moved it on); whether it did."""
        with self._lock, self._db:
            self._db.execute("BEGIN IMMEDIATE")
            changed = self._db.execute(
                "UPDATE jobs SET status = ?, record = ?, finished_at = ? "
                "WHERE id = ? AND status = ?",
                (
                    record["status"],
                    dumps(record),
                    record.get("finished_at"),
                    record["id"],
                    expected,
                ),
            ).rowcount
            if changed:
                self._append(record["id"], event, data)
                if done is not None:
                    self._append(record["id"], "done", done)
            return bool(changed)

    def delete(self, job_id: str, status: str | None = None) -> bool:
        """Remove a job's record, loss series, events and pending cancel (only while its
        status is ``status``, when given); whether it did."""
        with self._lock, self._db:
            self._db.execute("BEGIN IMMEDIATE")
            if status is None:
                gone = self._db.execute("DELETE FROM jobs WHERE id = ?", (job_id,)).rowcount
            else:
                gone = self._db.execute(
                    "DELETE FROM jobs WHERE id = ? AND status = ?", (job_id, status)
                ).rowcount
            if gone:
                for table in ("job_events", "job_loss_points", "job_cancels"):
                    self._db.execute(f"DELETE FROM {table} WHERE job_id = ?", (job_id,))
        self._parser.forget(job_id)
        if gone:
            with contextlib.suppress(FileNotFoundError):
                self._model_file(job_id).unlink()
        return bool(gone)

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
        """The stored record (its loss points not included: see ``with_points``); None when
        there is none; ``DamagedRecord`` when its JSON cannot be read."""
        with self._lock:
            row = self._db.execute("SELECT record FROM jobs WHERE id = ?", (job_id,)).fetchone()
        if row is None:
            return None
        record = self._parser.parse(job_id, row[0])
        if record is None:
            raise DamagedRecord(job_id)
        return record

    def head(self, job_id: str) -> tuple[str, str | None] | None:
        """``(status, owner)`` of a job from its columns (readable even when its JSON is
        not), or None."""
        with self._lock:
            row = self._db.execute(
                "SELECT status, owner FROM jobs WHERE id = ?", (job_id,)
            ).fetchone()
        return None if row is None else (str(row[0]), row[1])

    def page(
        self,
        status: str | None = None,
        limit: int = 20,
        offset: int = 0,
        owner: str | None = None,
    ) -> tuple[list[Record], int]:
        """Readable records newest first (of ``owner`` only, when given), and how many rows
        match in all."""
        clauses, args = [], []
        if status:
            clauses.append("status = ?")
            args.append(status)
        if owner is not None:
            clauses.append("owner = ?")
            args.append(owner)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        with self._lock:
            total = self._db.execute(f"SELECT count(*) FROM jobs {where}", args).fetchone()[0]
            rows = self._db.execute(
                f"SELECT id, record FROM jobs {where} ORDER BY seq DESC LIMIT ? OFFSET ?",
                [*args, limit, offset],
            ).fetchall()
        return self._parser.readable(rows), int(total)

    def with_status(self, status: str) -> list[Record]:
        """Readable records with ``status``, oldest first."""
        with self._lock:
            rows = self._db.execute(
                "SELECT id, record FROM jobs WHERE status = ? ORDER BY seq", (status,)
            ).fetchall()
        return self._parser.readable(rows)

    def count(self, status: str, owner: str | None = None) -> int:
        with self._lock:
            if owner is None:
                row = self._db.execute("SELECT count(*) FROM jobs WHERE status = ?", (status,))
            else:
                row = self._db.execute(
                    "SELECT count(*) FROM jobs WHERE status = ? AND owner = ?", (status, owner)
                )
            return int(row.fetchone()[0])

    def expired(self, finished_before: str | None, keep: int | None, limit: int) -> list[str]:
        """Ids of finished jobs (at most ``limit``) that retention removes: finished before
        ``finished_before`` (ISO time), or older than the newest ``keep`` finished ones."""
        found: list[str] = []
        with self._lock:
            if finished_before is not None:
                rows = self._db.execute(
                    "SELECT id FROM jobs WHERE status IN (?, ?, ?) AND finished_at < ? "
                    "ORDER BY seq LIMIT ?",
                    (*TERMINAL_STATUSES, finished_before, limit),
                ).fetchall()
                found.extend(str(row[0]) for row in rows)
            if keep is not None and len(found) < limit:
                rows = self._db.execute(
                    "SELECT id FROM jobs WHERE status IN (?, ?, ?) ORDER BY seq DESC "
                    "LIMIT ? OFFSET ?",
                    (*TERMINAL_STATUSES, limit, keep),
                ).fetchall()
                found.extend(str(row[0]) for row in rows if str(row[0]) not in found)
        return found[:limit]
