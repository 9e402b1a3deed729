"""``loss-service`` and ``python -m service``: the command line (``service.cli``); ``serve``
starts the server with settings the command line has validated."""

from __future__ import annotations

from collections.abc import Sequence

import uvicorn

from service import cli
from service.observability.multiprocess import reset_multiprocess_dir
from service.settings import Settings, variable_name

WORKERS_VARIABLE = variable_name("workers")


def serve(settings: Settings) -> None:
    """Run uvicorn; its worker processes read the same settings from the environment, where
    the command line has written the flags it was given."""
    reset_multiprocess_dir()
    uvicorn.run(
        "service.main:app",
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        log_level=settings.log_level,
        loop="auto",
        http="auto",
        timeout_graceful_shutdown=settings.shutdown_timeout_s,
    )


def main(argv: Sequence[str] | None = None) -> None:
    cli.main(argv, serve)


if __name__ == "__main__":
    main()
