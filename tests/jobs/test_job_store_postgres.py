"""What only the PostgreSQL store does, against a real server: the change feed between
replicas (LISTEN/NOTIFY), leadership that moves when the leader's connection or process dies,
schema migrations, and the start-up check's one line and exit status."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg  # the dev extra holds the postgres one
import pytest
from pydantic import ValidationError

from service.jobs.stores.postgres import PostgresJobStore
from service.jobs.stores.postgres_check import (
    EXIT_CONFIG,
    EXIT_TEMPFAIL,
    PostgresDatabaseError,
    open_database,
)
from service.jobs.stores.postgres_coordination import LISTENER_NAME
from service.jobs.stores.postgres_schema import LEADER_LOCK, LOCK_NAMESPACE, migrations
from service.settings import Settings, describe_invalid_settings
from tests.support.postgres import PostgresServer, free_port

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def replicas(postgres_url: str) -> Iterator[Callable[[], PostgresJobStore]]:
    """Opens stores on the test's database, as separate server processes would; all closed."""
    opened: list[PostgresJobStore] = []

    def open_one() -> PostgresJobStore:
        opened.append(PostgresJobStore(postgres_url))
        return opened[-1]

    yield open_one
    for store in opened:
        store.close()


def sql(url: str, statement: str, *args: object) -> list[tuple[object, ...]]:
    with psycopg.connect(url, autocommit=True) as db:
        cursor = db.execute(statement, args or None)
        return cursor.fetchall() if cursor.description else []


def record(job_id: str, status: str = "queued") -> dict[str, object]:
    return {"id": job_id, "status": status, "train_loss_series": {"points": []}}


def expect(heard: queue.Queue[tuple[str, str]], change: tuple[str, str], within: float) -> None:
    deadline = time.monotonic() + within
    while (left := deadline - time.monotonic()) > 0:
        try:
            if heard.get(timeout=left) == change:
                return
        except queue.Empty:
            break
    raise AssertionError(f"{change} not heard within {within}s")


# The change feed


def test_changes_on_one_replica_reach_the_listener_of_another_within_a_second(
    replicas: Callable[[], PostgresJobStore],
) -> None:
    writer, follower = replicas(), replicas()
    heard: queue.Queue[tuple[str, str]] = queue.Queue()
    assert follower.listen(lambda kind, job_id: heard.put((kind, job_id)))
    started = time.monotonic()
    writer.insert(record("a"), "status", {"status": "queued"})
    expect(heard, ("event", "a"), within=1.0)
    writer.update(record("a", "running"), "progress", {"step": 1})
    expect(heard, ("event", "a"), within=1.0)
    writer.request_cancel("a")
    expect(heard, ("cancel", "a"), within=1.0)
    assert time.monotonic() - started < 3.0
    writer.update(record("a", "running"))  # no event: nothing to hear
    writer.add_point("a", 0, {"loss": 1.0})
    time.sleep(0.3)
    assert heard.empty()


def test_the_listener_reconnects_when_its_connection_is_killed(
    postgres_url: str, replicas: Callable[[], PostgresJobStore]
) -> None:
    writer, follower = replicas(), replicas()
    heard: queue.Queue[tuple[str, str]] = queue.Queue()
    follower.listen(lambda kind, job_id: heard.put((kind, job_id)))
    killed = sql(
        postgres_url,
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
        "WHERE application_name = %s AND datname = current_database()",
        LISTENER_NAME,
    )
    assert killed == [(True,)]
    for i in range(50):  # until the new connection listens (a few tenths of a second)
        writer.insert(record(f"after{i}"), "status", {})
        try:
            kind, _ = heard.get(timeout=0.2)
        except queue.Empty:
            continue
        assert kind == "event"
        return
    raise AssertionError("the listener did not come back")


def test_a_failing_callback_does_not_stop_the_feed(
    replicas: Callable[[], PostgresJobStore],
) -> None:
    writer, follower = replicas(), replicas()
    heard: queue.Queue[tuple[str, str]] = queue.Queue()

    def fails(kind: str, job_id: str) -> None:
        raise RuntimeError("a broken subscriber")

    follower.listen(fails)
    follower.listen(lambda kind, job_id: heard.put((kind, job_id)))
    writer.insert(record("a"), "status", {})
    writer.insert(record("b"), "status", {})
    expect(heard, ("event", "a"), within=1.0)
    expect(heard, ("event", "b"), within=1.0)


# Leadership


def leader_pid(url: str) -> int:
    rows = sql(
        url,
        "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted "
        "AND classid = %s::bigint::oid AND objid = %s::bigint::oid AND objsubid = 2 "
        "AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
        LOCK_NAMESPACE,
        LEADER_LOCK,
    )
    assert len(rows) == 1, rows
    return int(str(rows[0][0]))


def test_the_lead_moves_when_the_leaders_connection_dies(
    postgres_url: str, replicas: Callable[[], PostgresJobStore]
) -> None:
    first, second = replicas(), replicas()
    assert first.try_lead() and not second.try_lead()
    assert sql(postgres_url, "SELECT pg_terminate_backend(%s)", leader_pid(postgres_url))
    deadline = time.monotonic() + 5
    while not second.try_lead():  # the server drops the lock as the backend exits
        assert time.monotonic() < deadline, "the lead was not released"
        time.sleep(0.05)
    assert not first.still_leading()
    assert not first.try_lead()  # reconnects, but the other replica leads now
    assert second.still_leading()


def test_a_killed_leader_process_is_replaced(
    postgres_url: str, replicas: Callable[[], PostgresJobStore]
) -> None:
    program = textwrap.dedent(
        f"""
        import sys, time
        from service.jobs.stores.postgres import PostgresJobStore
        store = PostgresJobStore({postgres_url!r})
        print("leading" if store.try_lead() else "following", flush=True)
        time.sleep(120)
        """
    )
    process = subprocess.Popen(
        [sys.executable, "-c", program],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        assert process.stdout is not None
        assert process.stdout.readline().strip() == "leading"
        follower = replicas()
        assert not follower.try_lead()
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=30)
        deadline = time.monotonic() + 10
        while not follower.try_lead():
            assert time.monotonic() < deadline, "the dead leader's lock was not released"
            time.sleep(0.1)
    finally:
        if process.poll() is None:
            os.kill(process.pid, signal.SIGKILL)
            process.wait(timeout=30)


# Migrations


def versions(url: str) -> list[int]:
    rows = sql(url, "SELECT version FROM schema_migrations ORDER BY version")
    return [int(str(row[0])) for row in rows]


def test_migrations_build_an_empty_database_and_reopening_changes_nothing(
    postgres_url: str, replicas: Callable[[], PostgresJobStore]
) -> None:
    latest = [migration.version for migration in migrations()]
    assert latest[:2] == [1, 2]
    store = replicas()
    assert versions(postgres_url) == latest
    store.insert(record("a"), "status", {})
    replicas()  # a second replica opens the same database: nothing to apply
    assert versions(postgres_url) == latest
    assert store.get("a") == record("a")


def test_a_database_at_migration_1_is_upgraded_with_its_jobs(
    postgres_url: str, replicas: Callable[[], PostgresJobStore], tmp_path: Path
) -> None:
    open_database(postgres_url, upto=1)
    assert versions(postgres_url) == [1]
    assert sql(postgres_url, "SELECT to_regclass('job_models') IS NULL") == [(True,)]
    sql(  # a job as release 1 wrote it
        postgres_url,
        "INSERT INTO jobs (id, status, record) VALUES ('old', 'succeeded', %s)",
        '{"id": "old", "status": "succeeded"}',
    )
    store = replicas()
    assert versions(postgres_url) == [migration.version for migration in migrations()]
    assert store.get("old") == {"id": "old", "status": "succeeded"}
    model = tmp_path / "old.safetensors"
    model.write_bytes(b"weights")
    store.save_model("old", model)
    path = store.model_path("old", tmp_path / "cache")
    assert path is not None and path.read_bytes() == b"weights"


def test_replicas_starting_together_apply_each_migration_once(postgres_url: str) -> None:
    errors: list[BaseException] = []

    def open_it() -> None:
        try:
            open_database(postgres_url)
        except BaseException as error:  # pragma: no cover - reported below
            errors.append(error)

    threads = [threading.Thread(target=open_it) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    assert versions(postgres_url) == [migration.version for migration in migrations()]


def test_a_database_from_a_newer_release_is_refused(postgres_url: str) -> None:
    open_database(postgres_url)
    sql(postgres_url, "INSERT INTO schema_migrations (version, name) VALUES (999, 'future')")
    with pytest.raises(PostgresDatabaseError) as raised:
        PostgresJobStore(postgres_url)
    assert raised.value.exit_status == EXIT_CONFIG
    assert "newer release" in raised.value.line and "999" in raised.value.line
    assert versions(postgres_url)[-1] == 999  # and nothing was changed


# The start-up check and messages: the server named, its password never


def start(url: str, python: list[str] | None = None) -> subprocess.CompletedProcess[str]:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("LOSS_SERVICE_")},
        "PYTHONPATH": str(ROOT),
        "LOSS_SERVICE_DATABASE_URL": url,
    }
    # Port 9 (discard) on loopback: the check fails before the server would bind.
    return subprocess.run(
        [*(python or [sys.executable, "-m", "service"]), "--host", "127.0.0.1", "--port", "9"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def one_line(done: subprocess.CompletedProcess[str], password: str) -> str:
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert password not in done.stderr + done.stdout
    return lines[0]


def test_start_refused_connection_is_temporary() -> None:
    port = free_port()
    done = start(f"postgresql://loss:s3cret-pw@127.0.0.1:{port}/jobs")
    assert done.returncode == EXIT_TEMPFAIL == 75
    line = one_line(done, "s3cret-pw")
    assert f"postgresql://loss@127.0.0.1:{port}/jobs" in line and "Connection refused" in line


def test_start_wrong_password_needs_a_person(postgres_server: PostgresServer) -> None:
    done = start(postgres_server.url_for("postgres", password="wrong-pw-42"))
    assert done.returncode == EXIT_CONFIG == 78
    line = one_line(done, "wrong-pw-42")
    assert "password authentication failed" in line and "LOSS_SERVICE_DATABASE_URL" in line
    assert postgres_server.password not in line


def test_start_newer_schema_needs_a_person(
    postgres_server: PostgresServer, postgres_url: str
) -> None:
    open_database(postgres_url)
    sql(postgres_url, "INSERT INTO schema_migrations (version, name) VALUES (999, 'future')")
    done = start(postgres_url)
    assert done.returncode == EXIT_CONFIG
    assert "newer release" in one_line(done, postgres_server.password)


def test_start_without_the_driver_says_what_to_install() -> None:
    no_driver = "import sys; sys.modules['psycopg'] = None; import runpy; " + (
        "runpy.run_module('service', run_name='__main__')"
    )
    done = start(
        "postgresql://loss:pw-never-shown@db.example:5432/jobs",
        [sys.executable, "-c", no_driver],
    )
    assert done.returncode == EXIT_CONFIG
    line = one_line(done, "pw-never-shown")
    assert "pip install 'loss-service[postgres]'" in line
    assert "postgresql://loss@db.example:5432/jobs" in line


def test_a_store_names_its_database_without_the_password(postgres_url: str) -> None:
    store = PostgresJobStore(postgres_url)
    try:
        assert store.where.startswith("postgresql://loss@127.0.0.1:")
        assert ":" not in store.where.split("//")[1].split("@")[0]
    finally:
        store.close()


def test_invalid_settings_never_show_the_password() -> None:
    with pytest.raises(ValidationError) as raised:
        Settings(database_url="mysql://loss:hunter2-secret@db/jobs")
    message = describe_invalid_settings(raised.value)
    assert "LOSS_SERVICE_DATABASE_URL='mysql://loss@db/jobs'" in message
    assert "hunter2-secret" not in message + str(raised.value)
