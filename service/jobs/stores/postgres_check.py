"""The PostgreSQL job database at start: usable (its schema migrated), or one line that names
the server (never its password) and what to do.

``python -m service`` with ``LOSS_SERVICE_DATABASE_URL`` set connects and applies the
migrations before it starts serving. When it cannot, it prints one line to stderr, such as::

    loss-service: cannot connect to the job database postgresql://loss@db:5432/jobs (connection
    to server at "10.0.0.5", port 5432 failed: Connection refused ...); retry when it is up

and exits with one of the statuses of ``sysexits.h``:

- 75 (``EX_TEMPFAIL``): the server cannot be reached now: connection refused, a timeout, a
  name that does not resolve (yet), a server starting up, shutting down or out of
  connections. Restarting later may work: supervisors should restart (with a delay).
- 78 (``EX_CONFIG``): a person must change something: the password or user is refused, the
  database does not exist, the user may not create the tables, the URL is malformed, the
  driver is not installed (``pip install 'loss-service[postgres]'``), or a newer release has
  migrated the database. Restarting alone cannot fix it (systemd: ``RestartPreventExitStatus``).

The store (``stores.postgres``) raises the same ``PostgresDatabaseError`` when it opens.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

from service.jobs.stores.postgres_schema import NewerSchema, migrate
from service.settings import without_password

if TYPE_CHECKING:
    import psycopg

EXIT_CONFIG = 78  # EX_CONFIG: as service.jobs.database.EXIT_DATABASE
EXIT_TEMPFAIL = 75  # EX_TEMPFAIL

CONNECT_TIMEOUT_S = 10  # unless the URL says otherwise (connect_timeout=)
INSTALL = "pip install 'loss-service[postgres]'"

# Connection errors carry no SQLSTATE: these words in libpq's message mean a person must act.
_NEEDS_A_PERSON = (
    "authentication failed",
    "no pg_hba.conf entry",
    "does not exist",
    "permission denied",
    "not permitted",
    "invalid",
    'missing "="',
    "unsupported",
    "does not support ssl",
    "certificate",
)
# SQLSTATE classes of errors that pass: connection, insufficient resources, operator
# intervention (shutting down, starting up), system errors.
_TRANSIENT_CLASSES = ("08", "53", "57", "58")


class PostgresDatabaseError(Exception):
    """The PostgreSQL job database cannot be used; ``line`` says why, ``exit_status`` how
    a supervisor should take it."""

    def __init__(self, line: str, exit_status: int) -> None:
        super().__init__(line)
        self.line = line
        self.exit_status = exit_status

    @classmethod
    def missing_driver(cls, url: str) -> PostgresDatabaseError:
        return cls(
            f"loss-service: LOSS_SERVICE_DATABASE_URL is a PostgreSQL database "
            f"({without_password(url)}) but the PostgreSQL driver is not installed: {INSTALL}",
            EXIT_CONFIG,
        )

    @classmethod
    def newer_schema(cls, url: str, error: NewerSchema) -> PostgresDatabaseError:
        return cls(
            f"loss-service: the job database {without_password(url)} was migrated by a newer "
            f"release of loss-service (schema migrations {error} are unknown here); run that "
            "release or a later one, or set LOSS_SERVICE_DATABASE_URL to another database",
            EXIT_CONFIG,
        )

    @classmethod
    def classify(cls, url: str, error: Exception) -> PostgresDatabaseError:
        import psycopg

        where = without_password(url)
        reason = _one_line(str(error), url)
        if isinstance(error, psycopg.OperationalError) and _transient(error):
            return cls(
                f"loss-service: cannot connect to the job database {where} ({reason}); "
                "retry when it is up (exit status 75: temporary)",
                EXIT_TEMPFAIL,
            )
        if "authentication failed" in reason.lower() or "pg_hba.conf" in reason:
            return cls(
                f"loss-service: the job database {where} refused the connection ({reason}); "
                "fix the user and password in LOSS_SERVICE_DATABASE_URL",
                EXIT_CONFIG,
            )
        return cls(
            f"loss-service: cannot use the job database {where} ({reason}); fix "
            "LOSS_SERVICE_DATABASE_URL, or the database and the rights of its user",
            EXIT_CONFIG,
        )


def _transient(error: psycopg.Error) -> bool:
    if error.sqlstate is not None:
        return error.sqlstate[:2] in _TRANSIENT_CLASSES
    message = str(error).lower()
    return not any(words in message for words in _NEEDS_A_PERSON)


def _one_line(message: str, url: str) -> str:
    message = message.removeprefix("connection failed: ")
    password = _password(url)
    if password:
        message = message.replace(password, "…")
    return " ".join(message.split()) or "no reason given"


def _password(url: str) -> str | None:
    try:
        from psycopg.conninfo import conninfo_to_dict

        value = conninfo_to_dict(url).get("password")
    except Exception:
        return None
    return str(value) if value else None


def connect(url: str, **options: Any) -> psycopg.Connection[Any]:
    """A connection (``options``: psycopg's), with a connect timeout unless the URL sets one;
    ``PostgresDatabaseError`` when it fails."""
    try:
        import psycopg
        from psycopg.conninfo import conninfo_to_dict
    except ImportError as error:
        raise PostgresDatabaseError.missing_driver(url) from error
    try:
        if "connect_timeout" not in conninfo_to_dict(url):
            options.setdefault("connect_timeout", CONNECT_TIMEOUT_S)
        return psycopg.connect(url, **options)
    except psycopg.Error as error:
        raise PostgresDatabaseError.classify(url, error) from None


def open_database(url: str, upto: int | None = None) -> None:
    """Connect and bring the schema up to date (``upto``: stop at that migration, for tests
    of upgrades); ``PostgresDatabaseError`` when it cannot."""
    connection = connect(url, autocommit=True)
    import psycopg  # connected: the driver is there

    with connection:
        try:
            migrate(connection, upto)
        except NewerSchema as error:
            raise PostgresDatabaseError.newer_schema(url, error) from None
        except psycopg.Error as error:
            raise PostgresDatabaseError.classify(url, error) from None


def check_postgres_database_or_exit(url: str) -> None:
    """``open_database``, or print its one line to stderr and exit with its status (75 or
    78)."""
    try:
        open_database(url)
    except PostgresDatabaseError as error:
        print(error.line, file=sys.stderr, flush=True)
        raise SystemExit(error.exit_status) from None
