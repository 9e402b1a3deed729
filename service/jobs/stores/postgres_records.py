"""Records, their event log and loss series in PostgreSQL: the queries of the SQLite store
(``stores.sqlite``) on the tables of the migrations (``migrations/``), with the same results.

A record is kept as the JSON text the service wrote, so it reads back byte for byte, and a
damaged one is left out of listings as in SQLite. Event ids count from 1 per job: each append
takes the job's row lock first, so replicas appending to one job get consecutive ids, and
notifies the change feed (``postgres_coordination``) in its transaction.
"""

from __future__ import annotations

import contextlib
from typing import Any

from psycopg import Connection
from psycopg_pool import ConnectionPool

from service.jobs.stores.base import (
    PROGRESS_EVENTS_KEPT,
    TERMINAL_STATUSES,
    DamagedRecord,
    Record,
)
from service.jobs.stores.postgres_coordination import notify
from service.jobs.stores.rows import RecordParser, dumps, with_point_rows


class PostgresRecords:
    """The record, event and loss-series methods of ``PostgresJobStore``."""

    def __init__(self, pool: ConnectionPool[Connection[Any]], where: str) -> None:
        self._pool = pool
        self.where = where
        self._parser = RecordParser(where)

    def _transaction(self) -> contextlib.AbstractContextManager[Connection[Any]]:
        """A pooled connection: one transaction, committed at the end (rolled back on error)."""
        return self._pool.connection()

    # Records

    def insert(self, record: Record, event: str, data: Record, owner: str | None = None) -> int:
        """Store a new record and its first event; the event's id."""
        with self._transaction() as db:
            db.execute(
                "INSERT INTO jobs (id, status, record, owner, finished_at) "
                "VALUES (%s, %s, %s, %s, %s)",
                (record["id"], record["status"], dumps(record), owner, record.get("finished_at")),
            )
            return self._append(db, record["id"], event, data)

    def update(
        self,
        record: Record,
        event: str | None = None,
        data: Record | None = None,
        done: Record | None = None,
    ) -> int:
        """Replace the record, and append an event (and a ``done`` event with ``done``) in the
        same transaction; the event's id (0 without an event)."""
        with self._transaction() as db:
            db.execute(
                "UPDATE jobs SET status = %s, record = %s, finished_at = %s WHERE id = %s",
                (record["status"], dumps(record), record.get("finished_at"), record["id"]),
            )
            seq = self._append(db, record["id"], event, data or {}) if event else 0
            if done is not None:
                self._append(db, record["id"], "done", done)
            return seq

    def update_if(
        self, record: Record, expected: str, event: str, data: Record, done: Record | None = None
    ) -> bool:
        """Replace the record only while its stored status is ``expected`` (another replica
        may have moved it on); whether it did."""
        with self._transaction() as db:
            changed = db.execute(
                "UPDATE jobs SET status = %s, record = %s, finished_at = %s "
                "WHERE id = %s AND status = %s",
                (
                    record["status"],
                    dumps(record),
                    record.get("finished_at"),
                    record["id"],
                    expected,
                ),
            ).rowcount
            if changed:
                self._append(db, record["id"], event, data)
                if done is not None:
                    self._append(db, record["id"], "done", done)
            return changed > 0

    def delete(self, job_id: str, status: str | None = None) -> bool:
        """Remove a job's record, loss series, events, pending cancel and model (only while its
        status is ``status``, when given); whether it did."""
        with self._transaction() as db:
            if status is None:
                gone = db.execute("DELETE FROM jobs WHERE id = %s", (job_id,)).rowcount
            else:
                gone = db.execute(
                    "DELETE FROM jobs WHERE id = %s AND status = %s", (job_id, status)
                ).rowcount
            if gone:
                for table in ("job_events", "job_loss_points", "job_cancels", "job_models"):
                    db.execute(f"DELETE FROM {table} WHERE job_id = %s", (job_id,))
        self._parser.forget(job_id)
        return gone > 0

    def get(self, job_id: str) -> Record | None:
        """The stored record (its loss points not included: see ``with_points``); None when
        there is none; ``DamagedRecord`` when its JSON cannot be read."""
        with self._transaction() as db:
            row = db.execute("SELECT record FROM jobs WHERE id = %s", (job_id,)).fetchone()
        if row is None:
            return None
        record = self._parser.parse(job_id, row[0])
        if record is None:
            raise DamagedRecord(job_id)
        return record

    def head(self, job_id: str) -> tuple[str, str | None] | None:
        """``(status, owner)`` of a job from its columns (readable even when its JSON is
        not), or None."""
        with self._transaction() as db:
            row = db.execute("SELECT status, owner FROM jobs WHERE id = %s", (job_id,)).fetchone()
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
        clauses, args = ["TRUE"], []
        if status:
            clauses.append("status = %s")
            args.append(status)
        if owner is not None:
            clauses.append("owner = %s")
            args.append(owner)
        where = " AND ".join(clauses)
        with self._transaction() as db:
            total = db.execute(f"SELECT count(*) FROM jobs WHERE {where}", args).fetchone()
            rows = db.execute(
                f"SELECT id, record FROM jobs WHERE {where} ORDER BY seq DESC LIMIT %s OFFSET %s",
                [*args, limit, offset],
            ).fetchall()
        return self._parser.readable(rows), int(total[0]) if total else 0

    def with_status(self, status: str) -> list[Record]:
        """Readable records with ``status``, oldest first."""
        with self._transaction() as db:
            rows = db.execute(
                "SELECT id, record FROM jobs WHERE status = %s ORDER BY seq", (status,)
            ).fetchall()
        return self._parser.readable(rows)

    def count(self, status: str, owner: str | None = None) -> int:
        with self._transaction() as db:
            row = db.execute(
                "SELECT count(*) FROM jobs WHERE status = %s AND (%s::text IS NULL OR owner = %s)",
                (status, owner, owner),
            ).fetchone()
        return int(row[0]) if row else 0

    def expired(self, finished_before: str | None, keep: int | None, limit: int) -> list[str]:
        """Ids of finished jobs (at most ``limit``) that retention removes: finished before
        ``finished_before`` (ISO time), or older than the newest ``keep`` finished ones."""
        found: list[str] = []
        finished = list(TERMINAL_STATUSES)
        with self._transaction() as db:
            if finished_before is not None:
                rows = db.execute(
                    "SELECT id FROM jobs WHERE status = ANY(%s) AND finished_at < %s "
                    "ORDER BY seq LIMIT %s",
                    (finished, finished_before, limit),
                ).fetchall()
                found.extend(str(row[0]) for row in rows)
            if keep is not None and len(found) < limit:
                rows = db.execute(
                    "SELECT id FROM jobs WHERE status = ANY(%s) ORDER BY seq DESC "
                    "LIMIT %s OFFSET %s",
                    (finished, limit, keep),
                ).fetchall()
                found.extend(str(row[0]) for row in rows if str(row[0]) not in found)
        return found[:limit]

    # Loss series

    def add_point(self, job_id: str, n: int, point: Record) -> None:
        """Store the loss point with index ``n`` (one insert, whatever the series' length)."""
        with self._transaction() as db:
            db.execute(
                "INSERT INTO job_loss_points (job_id, n, point) VALUES (%s, %s, %s) "
                "ON CONFLICT (job_id, n) DO UPDATE SET point = EXCLUDED.point",
                (job_id, n, dumps(point)),
            )

    def thin_points(self, job_id: str, stride: int) -> int:
        """Keep only the points whose index is a multiple of ``stride``; how many are left."""
        with self._transaction() as db:
            db.execute(
                "DELETE FROM job_loss_points WHERE job_id = %s AND mod(n, %s) <> 0",
                (job_id, stride),
            )
            row = db.execute(
                "SELECT count(*) FROM job_loss_points WHERE job_id = %s", (job_id,)
            ).fetchone()
        return int(row[0]) if row else 0

    def with_points(self, records: list[Record]) -> list[Record]:
        """Copies of ``records`` whose ``train_loss_series.points`` come from the points
        table (records written before it keep the points in their JSON)."""
        if not records:
            return records
        with self._transaction() as db:
            rows = db.execute(
                "SELECT job_id, point FROM job_loss_points WHERE job_id = ANY(%s) "
                "ORDER BY job_id, n",
                ([record["id"] for record in records],),
            ).fetchall()
        return with_point_rows(records, rows)

    # Events

    def _append(self, db: Connection[Any], job_id: str, event: str, data: Record) -> int:
        # The job's row lock orders appends to one job across replicas (ids stay 1, 2, …).
        db.execute("SELECT 1 FROM jobs WHERE id = %s FOR UPDATE", (job_id,))
        row = db.execute(
            "INSERT INTO job_events (job_id, seq, event, data) "
            "SELECT %s, coalesce(max(seq), 0) + 1, %s, %s FROM job_events WHERE job_id = %s "
            "RETURNING seq",
            (job_id, event, dumps(data), job_id),
        ).fetchone()
        assert row is not None
        seq = int(row[0])
        if event == "progress" and seq > PROGRESS_EVENTS_KEPT:
            # A long job sends one every LOSS_SERVICE_JOB_PROGRESS_INTERVAL_S: keep the
            # latest ones only, so the log of a job stays small however long it trains.
            db.execute(
                "DELETE FROM job_events WHERE job_id = %s AND seq < %s AND event = 'progress'",
                (job_id, seq - PROGRESS_EVENTS_KEPT),
            )
        notify(db, "event", job_id)
        return seq

    def events_after(self, job_id: str, after: int) -> list[tuple[int, str, str]]:
        """Events of ``job_id`` with ids above ``after``: (id, name, JSON data)."""
        with self._transaction() as db:
            rows = db.execute(
                "SELECT seq, event, data FROM job_events WHERE job_id = %s AND seq > %s "
                "ORDER BY seq",
                (job_id, after),
            ).fetchall()
        return [(int(seq), str(event), str(data)) for seq, event, data in rows]
