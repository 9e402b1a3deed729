"""The PostgreSQL job store: records, their event log, loss series and models in PostgreSQL,
shared by any number of API replicas on any hosts (``LOSS_SERVICE_DATABASE_URL``).

Opening it connects and migrates the schema (``postgres_schema``; ``PostgresDatabaseError``, a
one-line reason, when it cannot). Queries share a pool of connections (``postgres_records``);
the leader lock and the change feed (``postgres_coordination``) each hold one of their own.
Models are kept in the database (``job_models``) and copied into a local cache folder to load.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Any

from psycopg import Connection
from psycopg.conninfo import conninfo_to_dict
from psycopg_pool import ConnectionPool

from service.jobs.stores.base import ChangeCallback
from service.jobs.stores.postgres_check import CONNECT_TIMEOUT_S, open_database
from service.jobs.stores.postgres_coordination import ChangeFeed, Leadership, notify
from service.jobs.stores.postgres_records import PostgresRecords
from service.settings import without_password

POOL_SIZE = 8  # connections for queries, per store (one store per server process)
POOL_TIMEOUT_S = 30.0  # longest wait for a free (or new) connection


class PostgresJobStore(PostgresRecords):
    def __init__(self, url: str, *, pool_size: int = POOL_SIZE) -> None:
        open_database(url)  # PostgresDatabaseError (one line) when it cannot be used
        given = conninfo_to_dict(url)
        options: dict[str, Any] = {}
        if "connect_timeout" not in given:
            options["connect_timeout"] = CONNECT_TIMEOUT_S
        if "application_name" not in given:
            options["application_name"] = "loss-service"
        pool: ConnectionPool[Connection[Any]] = ConnectionPool(
            url,
            min_size=1,
            max_size=pool_size,
            kwargs=options,
            timeout=POOL_TIMEOUT_S,
            check=ConnectionPool.check_connection,  # a dropped connection is replaced, not used
            name="job-store",
            open=True,
        )
        super().__init__(pool, without_password(url))
        self._url = url
        self._leadership = Leadership(url)
        self._feed: ChangeFeed | None = None

    def close(self) -> None:
        if self._feed is not None:
            self._feed.stop()
            self._feed = None
        self._leadership.close()
        self._pool.close()

    # Models

    def save_model(self, job_id: str, source: Path) -> None:
        """Keep the bytes of the model file ``source`` in the database."""
        model = source.read_bytes()
        with self._transaction() as db:
            db.execute(
                "INSERT INTO job_models (job_id, model) VALUES (%s, %s) "
                "ON CONFLICT (job_id) DO UPDATE SET model = EXCLUDED.model, saved_at = now()",
                (job_id, model),
            )

    def model_path(self, job_id: str, cache_dir: Path) -> Path | None:
        """``cache_dir/<id>.safetensors``, copied from the database unless a copy is there
        already; None (and no copy left) when the job has no model."""
        target = cache_dir / f"{job_id}.safetensors"
        with self._transaction() as db:
            row = db.execute(
                "SELECT octet_length(model) FROM job_models WHERE job_id = %s", (job_id,)
            ).fetchone()
            if row is not None and target.is_file() and target.stat().st_size == row[0]:
                return target
            if row is not None:
                row = db.execute(
                    "SELECT model FROM job_models WHERE job_id = %s", (job_id,)
                ).fetchone()
        if row is None:
            with contextlib.suppress(FileNotFoundError):
                target.unlink()  # the job was deleted: its copy goes too
            return None
        cache_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(
            dir=cache_dir, prefix=f".{job_id}.", suffix=".part", delete=False
        ) as part:
            try:
                part.write(bytes(row[0]))
                part.flush()
                os.fsync(part.fileno())
            except BaseException:
                os.unlink(part.name)
                raise
        os.replace(part.name, target)  # readers never see a half-written file
        return target

    # Coordination between replicas

    def request_cancel(self, job_id: str) -> None:
        """Ask the leader, which runs ``job_id``, to cancel it (it hears it at once through
        ``listen``, or finds it in ``take_cancels``)."""
        with self._transaction() as db:
            db.execute(
                "INSERT INTO job_cancels (job_id) VALUES (%s) ON CONFLICT DO NOTHING", (job_id,)
            )
            notify(db, "cancel", job_id)

    def take_cancels(self) -> list[str]:
        with self._transaction() as db:
            rows = db.execute("DELETE FROM job_cancels RETURNING job_id").fetchall()
        return sorted(str(row[0]) for row in rows)

    def try_lead(self) -> bool:
        """Take the leader lock when no replica holds it (never blocks); whether this store
        leads."""
        return self._leadership.try_lead()

    def still_leading(self) -> bool:
        """Whether the leader lock still holds (its connection alive and holding it)."""
        return self._leadership.still_leading()

    def listen(self, callback: ChangeCallback) -> bool:
        """Call ``callback(kind, job_id)`` from a thread for every change of every replica,
        from the moment this returns (it waits, up to the connect timeout, for ``LISTEN``)."""
        if self._feed is None:
            self._feed = ChangeFeed(self._url, self.where)
            self._feed.callbacks.append(callback)
            self._feed.start()
        else:
            self._feed.callbacks.append(callback)
        self._feed.listening.wait(CONNECT_TIMEOUT_S)
        return True
