"""A real, throwaway PostgreSQL server for the tests: Debian's binaries
(``/usr/lib/postgresql/<version>/bin``), a data folder under /tmp, TCP on 127.0.0.1 with a free
port and password authentication (so that tests can also give a wrong password), ``fsync=off``
for speed; stopped by PID at the end (SIGINT: PostgreSQL's fast shutdown).

``initdb`` and ``postgres`` refuse to run as root: as root they run as the ``postgres`` user
that Debian's package creates (``nobody`` without it), owner of the data folder.

Missing binaries or driver: the tests that need them are skipped, and fail instead under
``LOSS_SERVICE_REQUIRE_TOOLS=1`` (set by ``.ci/run``, which installs the binaries).
"""

from __future__ import annotations

import contextlib
import os
import pwd
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import Any

import pytest

from tests.support.live import free_port

BINARIES = Path("/usr/lib/postgresql")
USER = "loss"  # the superuser the tests connect as
START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 30.0


def postgres_bin() -> Path | None:
    """The newest installed PostgreSQL's ``bin`` folder, or None."""
    found = [path.parent for path in BINARIES.glob("*/bin/initdb")]
    found.sort(key=lambda path: int(path.parent.name) if path.parent.name.isdigit() else 0)
    return found[-1] if found else None


def need(condition: bool, what: str) -> None:
    if not condition:
        if os.environ.get("LOSS_SERVICE_REQUIRE_TOOLS") == "1":
            pytest.fail(f"{what} is required here (LOSS_SERVICE_REQUIRE_TOOLS=1)")
        pytest.skip(f"{what} is not installed")


def _run_as() -> dict[str, Any]:
    """``Popen`` arguments that drop root for PostgreSQL's programs (nothing when not root)."""
    if os.geteuid() != 0:
        return {}
    for name in ("postgres", "nobody"):
        with contextlib.suppress(KeyError):
            entry = pwd.getpwnam(name)
            return {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}
    raise RuntimeError("running as root, and neither a postgres nor a nobody user exists")


class PostgresServer:
    """``with PostgresServer() as server:`` ``server.url`` (with its password), ``server.pid``,
    ``server.url_for(database)``."""

    def __init__(self, bin_dir: Path) -> None:
        self.bin_dir = bin_dir
        self.password = secrets.token_urlsafe(12)
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None
        self.home = Path(tempfile.mkdtemp(prefix="loss-pg-"))  # short: holds the socket
        self.log = self.home / "postgres.log"

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    @property
    def url(self) -> str:
        return self.url_for("postgres")

    def url_for(self, database: str, password: str | None = None) -> str:
        secret = self.password if password is None else password
        return f"postgresql://{USER}:{secret}@127.0.0.1:{self.port}/{database}"

    def __enter__(self) -> PostgresServer:
        try:
            self._initdb()
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def _initdb(self) -> None:
        run_as = _run_as()
        if run_as:
            os.chown(self.home, run_as["user"], run_as["group"])
        password_file = self.home / "password"
        password_file.write_text(self.password + "\n")
        if run_as:
            os.chown(password_file, run_as["user"], run_as["group"])
        subprocess.run(
            [
                str(self.bin_dir / "initdb"),
                "--pgdata",
                str(self.home / "data"),
                "--username",
                USER,
                "--pwfile",
                str(password_file),
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
                "--encoding=UTF8",
                "--locale=C.UTF-8",
                "--no-sync",
                "--no-instructions",
            ],
            check=True,
            capture_output=True,
            timeout=120,
            **run_as,
        )
        password_file.unlink()

    def _start(self) -> None:
        for _attempt in range(3):  # a free port can be taken between the probe and the bind
            self.port = free_port()
            log = open(self.log, "ab")  # noqa: SIM115 - handed to the process
            with log:
                self.process = subprocess.Popen(
                    [
                        str(self.bin_dir / "postgres"),
                        "-D",
                        str(self.home / "data"),
                        "-h",
                        "127.0.0.1",
                        "-p",
                        str(self.port),
                        "-k",
                        str(self.home),
                        "-c",
                        "fsync=off",
                        "-c",
                        "synchronous_commit=off",
                        "-c",
                        "full_page_writes=off",
                        "-c",
                        "max_connections=200",
                    ],
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=log,
                    **_run_as(),
                )
            if self._wait_ready():
                return
            self._stop_process()
        raise RuntimeError(f"PostgreSQL did not start: {self.log.read_text()[-2000:]}")

    def _wait_ready(self) -> bool:
        import psycopg

        assert self.process is not None
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                return False
            try:
                psycopg.connect(self.url, connect_timeout=2).close()
                return True
            except psycopg.OperationalError:
                time.sleep(0.05)
        return False

    def _stop_process(self) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        os.kill(process.pid, signal.SIGINT)  # fast shutdown: ends sessions, then exits
        try:
            process.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            os.kill(process.pid, signal.SIGKILL)
            process.wait(timeout=STOP_TIMEOUT_S)

    def stop(self) -> None:
        try:
            self._stop_process()
        finally:
            shutil.rmtree(self.home, ignore_errors=True)

    # Databases, one per test

    def create_database(self, name: str) -> str:
        """A new empty database; its URL."""
        self.admin(f'CREATE DATABASE "{name}" TEMPLATE template0')
        return self.url_for(name)

    def drop_database(self, name: str) -> None:
        self.admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def admin(self, statement: str) -> None:
        import psycopg

        with psycopg.connect(self.url, autocommit=True) as connection:
            connection.execute(statement.encode())


def start_postgres() -> PostgresServer:
    """A started server, or skip (fail under ``LOSS_SERVICE_REQUIRE_TOOLS=1``) when the
    binaries or the driver are missing."""
    bin_dir = postgres_bin()
    need(bin_dir is not None, f"PostgreSQL (Debian's postgresql package, {BINARIES}/*/bin)")
    try:
        import psycopg  # noqa: F401
    except ImportError:
        need(False, "psycopg (pip install 'loss-service[postgres]')")
    assert bin_dir is not None
    return PostgresServer(bin_dir).__enter__()


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """One PostgreSQL server for the whole session."""
    server = start_postgres()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> Iterator[str]:
    """The URL (with its password) of a new empty database of its own for one test, dropped
    after it (with the sessions still on it)."""
    name = f"test_{secrets.token_hex(6)}"
    url = postgres_server.create_database(name)
    yield url
    postgres_server.drop_database(name)
