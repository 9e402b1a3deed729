"""A damaged or unusable job database stops ``python -m service`` with one line that names the
file and what to do, and exit status 78, never a traceback."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from service.jobs.database import EXIT_DATABASE
from service.jobs.stores.sqlite import SqliteJobStore

from .test_jobs_restart import record


def start(tmp_path: Path, db: Path) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "LOSS_SERVICE_DATA_DIR": str(tmp_path / "data"),
        "LOSS_SERVICE_DB_PATH": str(db),
        "LOSS_SERVICE_MODELS_DIR": str(tmp_path / "models"),
        "PYTHONPATH": str(Path(__file__).resolve().parents[2]),
    }
    # Port 9 (discard) on loopback: the check runs before the server would bind.
    return subprocess.run(
        [sys.executable, "-m", "service", "--host", "127.0.0.1", "--port", "9"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def a_database(path: Path, jobs: int = 200) -> bytes:
    store = SqliteJobStore(path)
    for i in range(jobs):
        store.insert(record(f"job{i}", "succeeded", device="x" * 200), "status", {})
    store.close()
    return path.read_bytes()


def garbage(path: Path) -> None:
    path.write_bytes(os.urandom(8192))


def truncated(path: Path) -> None:
    data = a_database(path)
    path.write_bytes(data[: len(data) // 2])


def zeroed_pages(path: Path) -> None:
    data = a_database(path)
    path.write_bytes(data[:4096] + bytes(len(data) - 4096))


def header_only(path: Path) -> None:
    data = a_database(path)
    path.write_bytes(data[:100])


@pytest.mark.parametrize("damage", [garbage, truncated, zeroed_pages, header_only])
def test_a_damaged_database_is_one_line_and_exit_78(
    tmp_path: Path, damage: Callable[[Path], None]
) -> None:
    db = tmp_path / "var" / "jobs.sqlite3"
    db.parent.mkdir()
    damage(db)
    result = start(tmp_path, db)
    assert result.returncode == EXIT_DATABASE == 78
    lines = result.stderr.strip().splitlines()
    assert lines == [lines[0]], result.stderr
    assert lines[0].startswith(f"loss-service: the job database {db} is damaged (")
    assert lines[0].endswith(
        "move it away (a new one is created at the next start) or restore a backup"
    )
    assert "Traceback" not in result.stderr + result.stdout


def test_an_unwritable_place_is_one_line_and_exit_78(tmp_path: Path) -> None:
    not_a_folder = tmp_path / "var"
    not_a_folder.write_text("a file where the database's folder should be")
    db = not_a_folder / "jobs.sqlite3"
    result = start(tmp_path, db)
    assert result.returncode == EXIT_DATABASE
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"loss-service: cannot open the job database {db} (")
    assert "LOSS_SERVICE_DB_PATH" in lines[0]


def test_a_read_only_folder_is_one_line_and_exit_78(tmp_path: Path) -> None:
    folder = tmp_path / "var"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        if os.access(folder, os.W_OK):  # root writes anyway: make the file itself unusable
            db = folder / "jobs.sqlite3"
            folder.chmod(0o700)
            db.mkdir()  # a folder where the database file should be
        else:
            db = folder / "jobs.sqlite3"
        result = start(tmp_path, db)
    finally:
        folder.chmod(0o700)
    assert result.returncode == EXIT_DATABASE
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and str(db) in lines[0], result.stderr


def test_an_intact_database_of_an_older_version_gains_its_columns(tmp_path: Path) -> None:
    db = tmp_path / "jobs.sqlite3"
    with sqlite3.connect(db) as conn:  # the schema before owners and finish times
        conn.executescript(
            "CREATE TABLE jobs (seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE,"
            " status TEXT NOT NULL, record TEXT NOT NULL);"
        )
        old = record("old", "succeeded", finished_at="2020-01-01T00:00:00.000Z")
        conn.execute(
            "INSERT INTO jobs (id, status, record) VALUES (?, ?, ?)",
            ("old", "succeeded", json.dumps(old)),
        )
    store = SqliteJobStore(db)
    assert store.expired("2021-01-01T00:00:00.000Z", None, 10) == ["old"]
    assert store.get("old") == old
