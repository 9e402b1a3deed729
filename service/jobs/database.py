"""The job database at start: usable, or one line that names the file and what to do.

``python -m service`` opens the database before it starts serving. A file that is not a SQLite
database, a truncated or corrupted one, or a folder this user cannot write makes it print one
line to stderr, such as::

    loss-service: the job database /srv/var/jobs.sqlite3 is damaged (file is not a database);
    move it away (a new one is created at the next start) or restore a backup

and exit with status 78 (``EX_CONFIG`` of ``sysexits.h``: the configuration or the files it
points to need a person; restarting alone cannot fix it). Supervisors can treat 78 as "do not
restart" (systemd: ``RestartPreventExitStatus=78``).
"""

from __future__ import annotations

import sqlite3
import sys
from pathlib import Path

EXIT_DATABASE = 78

# Messages SQLite gives for a file whose content is not (or no longer) a database.
_DAMAGED = ("not a database", "malformed", "corrupt", "disk image")


class JobDatabaseError(Exception):
    """The job database cannot be opened or used."""

    def __init__(self, path: Path, reason: str, *, damaged: bool) -> None:
        reason = " ".join(reason.replace("*** in database main ***", "").split())
        super().__init__(reason)
        self.path = path
        self.reason = reason
        self.damaged = damaged

    @classmethod
    def classify(cls, path: Path, exc: BaseException) -> JobDatabaseError:
        reason = str(exc)
        if isinstance(exc, OSError) and exc.strerror:
            reason = exc.strerror if exc.filename is None else f"{exc.strerror}: {exc.filename}"
        damaged = isinstance(exc, sqlite3.DatabaseError) and any(
            word in str(exc).lower() for word in _DAMAGED
        )
        return cls(path, reason, damaged=damaged)

    @property
    def line(self) -> str:
        where = _absolute(self.path)
        if self.damaged:
            return (
                f"loss-service: the job database {where} is damaged ({self.reason}); move it "
                "away (a new one is created at the next start) or restore a backup"
            )
        return (
            f"loss-service: cannot open the job database {where} ({self.reason}); make its "
            "folder writable by this user, or set LOSS_SERVICE_DB_PATH to a writable place"
        )


def _absolute(path: Path) -> str:
    try:
        return str(path.absolute())
    except OSError:  # pragma: no cover - the working directory is gone
        return str(path)


def check_job_database(path: Path) -> None:
    """Open and check the database and its leader lock file, or (when there is no database
    yet) that its folder can hold them; raise ``JobDatabaseError`` when not."""
    from service.jobs.stores.sqlite import SqliteJobStore

    if str(path) != ":memory:" and not path.exists():
        # Not created here: the server creates it when it starts (after noticing, for one, a
        # database an earlier version left in the current folder).
        probe = path.parent / f".{path.name}.probe"
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            probe.touch()
            probe.unlink()
        except OSError as exc:
            raise JobDatabaseError.classify(path, exc) from exc
        return
    SqliteJobStore(path).close()
    if str(path) == ":memory:":
        return
    lock = Path(f"{path}.lock")
    try:
        with open(lock, "a+"):
            pass
    except OSError as exc:
        raise JobDatabaseError(lock, exc.strerror or str(exc), damaged=False) from exc


def check_job_database_or_exit(path: Path) -> None:
    """``check_job_database``, or print its one line to stderr and exit with status 78."""
    try:
        check_job_database(path)
    except JobDatabaseError as error:
        print(error.line, file=sys.stderr, flush=True)
        raise SystemExit(EXIT_DATABASE) from None
