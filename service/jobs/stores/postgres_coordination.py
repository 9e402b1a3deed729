"""What lets replicas share the PostgreSQL store: leadership (a session advisory lock held by
one connection) and the change feed (``LISTEN``).

Leadership: the leader is the replica whose dedicated connection holds the advisory lock
``(LOCK_NAMESPACE, LEADER_LOCK)``. PostgreSQL releases it when that connection ends, however it
ends: the replica stopped, was killed, or lost the network (the server notices with TCP
keepalives, which these connections turn on). Another replica's next ``try_lead`` then takes it.

Change feed: the store sends ``pg_notify(CHANNEL, 'event:<job id>')`` in the transaction that
appends an event and ``'cancel:<job id>'`` in the one that asks for a cancel, so listeners hear
of a change when it is committed, never before. A thread per store listens on a connection of
its own, and reconnects (with backoff) when that connection is lost; changes made while it was
away are not replayed, so a reader must not rely on the feed alone for completeness.
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import threading
from collections.abc import Iterable
from typing import Any

import psycopg

from service.jobs.stores.base import ChangeCallback, ChangeKind
from service.jobs.stores.postgres_check import PostgresDatabaseError, connect
from service.jobs.stores.postgres_schema import LEADER_LOCK, LOCK_NAMESPACE

log = logging.getLogger(__name__)

CHANNEL = "loss_service_jobs"
KINDS: dict[str, ChangeKind] = {"event": "event", "cancel": "cancel"}
LEADER_NAME = "loss-service leader"  # application_name, as pg_stat_activity shows it
LISTENER_NAME = "loss-service listener"
# libpq's TCP keepalives: a dead peer shows within about 25 s instead of hours.
KEEPALIVES: dict[str, Any] = {
    "keepalives": 1,
    "keepalives_idle": 10,
    "keepalives_interval": 5,
    "keepalives_count": 3,
}
HEARTBEAT_S = 15.0  # an idle listener asks the server something this often
RETRY_FIRST_S = 0.2
RETRY_MOST_S = 10.0


def notify(connection: psycopg.Connection[Any], kind: str, job_id: str) -> None:
    """Announce a change when the current transaction commits."""
    connection.execute("SELECT pg_notify(%s, %s)", (CHANNEL, f"{kind}:{job_id}"))


class Leadership:
    """The leader lock on a connection of its own (kept open between tries, too)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._connection: psycopg.Connection[Any] | None = None
        self._leading = False
        self._lock = threading.Lock()

    def try_lead(self) -> bool:
        with self._lock:
            if self._leading and self._holds():
                return True
            self._leading = False
            try:
                connection = self._connect()
                row = connection.execute(
                    "SELECT pg_try_advisory_lock(%s, %s)", (LOCK_NAMESPACE, LEADER_LOCK)
                ).fetchone()
            except (PostgresDatabaseError, psycopg.Error) as error:
                log.warning("cannot try to lead the job service: %s", error)
                self._drop()
                return False
            self._leading = bool(row and row[0])
            return self._leading

    def still_leading(self) -> bool:
        with self._lock:
            if self._leading and not self._holds():
                log.error("this replica lost the lead of the job service (its connection died)")
                self._leading = False
                self._drop()
            return self._leading

    def _holds(self) -> bool:
        """Whether the connection is alive and holds the lock (asked of the server)."""
        if self._connection is None or self._connection.closed:
            return False
        try:
            row = self._connection.execute(
                "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' "
                "AND pid = pg_backend_pid() AND classid = %s::bigint::oid "
                "AND objid = %s::bigint::oid AND objsubid = 2 AND granted)",
                (LOCK_NAMESPACE, LEADER_LOCK),
            ).fetchone()
        except psycopg.Error:
            return False
        return bool(row and row[0])

    def _connect(self) -> psycopg.Connection[Any]:
        if self._connection is None or self._connection.closed or self._connection.broken:
            self._drop()
            self._connection = connect(
                self.url, autocommit=True, application_name=LEADER_NAME, **KEEPALIVES
            )
        return self._connection

    def _drop(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            connection.close()  # ends the session: PostgreSQL releases its locks

    def close(self) -> None:
        with self._lock:
            if self._leading and self._connection is not None:
                # Unlocked now, not when the server notices the closed connection a moment
                # later: another replica's very next try_lead succeeds.
                with contextlib.suppress(psycopg.Error):  # gone: the lock went with it
                    self._connection.execute(
                        "SELECT pg_advisory_unlock(%s, %s)", (LOCK_NAMESPACE, LEADER_LOCK)
                    )
            self._leading = False
            self._drop()


class ChangeFeed:
    """A thread that calls every callback with ``(kind, job_id)`` for each notification."""

    def __init__(self, url: str, where: str) -> None:
        self.url = url
        self.where = where
        self.callbacks: list[ChangeCallback] = []
        self.listening = threading.Event()  # set while LISTEN is in force
        self._stopping = threading.Event()
        self._wake_read, self._wake_write = os.pipe()
        self._thread = threading.Thread(target=self._run, name="job-store-listen", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        delay = RETRY_FIRST_S
        while not self._stopping.is_set():
            try:
                with connect(
                    self.url, autocommit=True, application_name=LISTENER_NAME, **KEEPALIVES
                ) as connection:
                    connection.execute(f"LISTEN {CHANNEL}")
                    self.listening.set()
                    delay = RETRY_FIRST_S
                    self._relay(connection)
            except (PostgresDatabaseError, psycopg.Error) as error:
                self.listening.clear()
                if self._stopping.is_set():
                    break
                log.warning(
                    "listening for job changes on %s failed (%s); trying again in %.1fs",
                    self.where,
                    " ".join(str(error).split()),
                    delay,
                )
                self._stopping.wait(delay)
                delay = min(delay * 2, RETRY_MOST_S)
        self.listening.clear()

    def _relay(self, connection: psycopg.Connection[Any]) -> None:
        while not self._stopping.is_set():
            ready, _, _ = select.select([connection.fileno(), self._wake_read], [], [], HEARTBEAT_S)
            if self._wake_read in ready:
                return
            if not ready:
                connection.execute("SELECT 1")  # a server that is gone shows here
            self._deliver(notification.payload for notification in connection.notifies(timeout=0))

    def _deliver(self, payloads: Iterable[str]) -> None:
        for payload in payloads:
            name, _, job_id = payload.partition(":")
            kind = KINDS.get(name)
            if kind is None or not job_id:
                continue
            for callback in list(self.callbacks):
                try:
                    callback(kind, job_id)
                except Exception:
                    log.exception("a job change listener failed")

    def stop(self) -> None:
        self._stopping.set()
        os.write(self._wake_write, b"x")
        if self._thread.is_alive():
            self._thread.join(timeout=10)
        os.close(self._wake_read)
        os.close(self._wake_write)
