"""The SQLite job database: opened, checked and brought to the current schema.

A file that is not a database, or a damaged one, raises ``JobDatabaseError``
(``service.jobs.database``: one line, exit 78). Databases written by earlier versions gain the
columns added since at open.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import orjson

from service.jobs.database import JobDatabaseError
from service.jobs.stores.base import TERMINAL_STATUSES

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
CREATE TABLE IF NOT EXISTS job_loss_points (
    job_id TEXT NOT NULL,
    n INTEGER NOT NULL,
    point TEXT NOT NULL,
    PRIMARY KEY (job_id, n)
) WITHOUT ROWID;
"""

# Columns added after the first release; databases written before them gain them at open.
ADDED_COLUMNS = {"owner": "TEXT", "finished_at": "TEXT"}


def open_database(path: Path) -> sqlite3.Connection:
    """A connection (autocommit, WAL, shared between threads) to a checked, current database."""
    try:
        if str(path) != ":memory:":
            path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
    except (OSError, sqlite3.Error) as exc:
        raise JobDatabaseError.classify(path, exc) from exc
    try:
        db.execute("PRAGMA busy_timeout=5000")
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        check = [str(row[0]) for row in db.execute("PRAGMA quick_check(3)")]
        if check != ["ok"]:
            more = f" (and {len(check) - 1} more problems)" if len(check) > 1 else ""
            raise JobDatabaseError(path, check[0] + more, damaged=True)
        db.executescript(SCHEMA)
        _migrate(db)
    except sqlite3.Error as exc:
        db.close()
        raise JobDatabaseError.classify(path, exc) from exc
    except JobDatabaseError:
        db.close()
        raise
    return db


def _migrate(db: sqlite3.Connection) -> None:
    present = {str(row[1]) for row in db.execute("PRAGMA table_info(jobs)")}
    added = [name for name in ADDED_COLUMNS if name not in present]
    for name in added:
        db.execute(f"ALTER TABLE jobs ADD COLUMN {name} {ADDED_COLUMNS[name]}")
    db.execute("CREATE INDEX IF NOT EXISTS jobs_by_owner ON jobs (owner, status)")
    if "finished_at" in added:  # fill it in for records written before the column existed
        rows = db.execute(
            "SELECT id, record FROM jobs WHERE status IN (?, ?, ?)", TERMINAL_STATUSES
        ).fetchall()
        for job_id, text in rows:
            try:
                record = orjson.loads(text)
            except orjson.JSONDecodeError:
                continue  # a damaged record: reported when it is read
            if isinstance(record, dict):
                db.execute(
                    "UPDATE jobs SET finished_at = ? WHERE id = ?",
                    (record.get("finished_at"), job_id),
                )
