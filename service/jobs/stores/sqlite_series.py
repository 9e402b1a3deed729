"""The loss series and the event log of the SQLite job store.

Points go to their own table, one insert each (the record is never rewritten for a point);
events are the append-only log that Server-Sent Events replay, numbered from 1 per job.
"""

from __future__ import annotations

import sqlite3
import threading

from service.jobs.stores.base import PROGRESS_EVENTS_KEPT, Record
from service.jobs.stores.rows import dumps, with_point_rows


class SeriesAndEvents:
    _db: sqlite3.Connection
    _lock: threading.Lock

    # Loss series

    def add_point(self, job_id: str, n: int, point: Record) -> None:
        """Store the loss point with index ``n`` (one insert, whatever the series' length)."""
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO job_loss_points (job_id, n, point) VALUES (?, ?, ?)",
                (job_id, n, dumps(point)),
            )

    def thin_points(self, job_id: str, stride: int) -> int:
        """Keep only the points whose index is a multiple of ``stride``; how many are left."""
        with self._lock, self._db:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.execute(
                "DELETE FROM job_loss_points WHERE job_id = ? AND n % ? != 0", (job_id, stride)
            )
            row = self._db.execute(
                "SELECT count(*) FROM job_loss_points WHERE job_id = ?", (job_id,)
            ).fetchone()
        return int(row[0])

    def with_points(self, records: list[Record]) -> list[Record]:
        """Copies of ``records`` whose ``train_loss_series.points`` come from the points
        table (records written before it keep the points in their JSON)."""
        if not records:
            return records
        ids = [record["id"] for record in records]
        marks = ",".join("?" * len(ids))
        with self._lock:
            rows = self._db.execute(
                f"SELECT job_id, point FROM job_loss_points WHERE job_id IN ({marks}) "
                "ORDER BY job_id, n",
                ids,
            ).fetchall()
        return with_point_rows(records, rows)

    # Events

    def _append(self, job_id: str, event: str, data: Record) -> int:
        row = self._db.execute(
            "SELECT coalesce(max(seq), 0) + 1 FROM job_events WHERE job_id = ?", (job_id,)
        ).fetchone()
        seq = int(row[0])
        self._db.execute(
            "INSERT INTO job_events (job_id, seq, event, data) VALUES (?, ?, ?, ?)",
            (job_id, seq, event, dumps(data)),
        )
        if event == "progress" and seq > PROGRESS_EVENTS_KEPT:
            # A long job sends one every LOSS_SERVICE_JOB_PROGRESS_INTERVAL_S: keep the
            # latest ones only, so the log of a job stays small however long it trains.
            self._db.execute(
                "DELETE FROM job_events WHERE job_id = ? AND seq < ? AND event = 'progress'",
                (job_id, seq - PROGRESS_EVENTS_KEPT),
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
