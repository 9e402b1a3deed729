"""``loss-service`` and ``python -m service``: the command line (``service.cli``); ``serve``
starts the server (``service.server``) with settings the command line has validated."""

from __future__ import annotations

from collections.abc import Sequence

from service import cli, server
from service.jobs.database import check_job_database_or_exit
from service.jobs.executors import check_executor_or_exit
from service.jobs.stores.postgres_check import check_postgres_database_or_exit
from service.server import WORKERS_VARIABLE
from service.settings import Settings

__all__ = ["WORKERS_VARIABLE", "main", "serve"]


def serve(settings: Settings) -> None:
    """Run the server; its worker processes read the same settings from the environment, where
    the command line has written the flags it was given."""
    if settings.database_url:  # one line and exit 75 (try later) or 78 when unusable
        check_postgres_database_or_exit(settings.database_url)
    else:
        check_job_database_or_exit(settings.db_path)  # one line and exit 78 when unusable
    check_executor_or_exit(settings)  # the ray executor without Ray: one line and exit 78
    server.serve(settings, settings.host, settings.port, settings.workers)


def main(argv: Sequence[str] | None = None) -> None:
    cli.main(argv, serve)


if __name__ == "__main__":
    main()
