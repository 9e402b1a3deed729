"""``python -m service``: run the service with uvicorn."""

from __future__ import annotations

import argparse
import os

import uvicorn

from service.jobs.database import check_job_database_or_exit
from service.observability.multiprocess import reset_multiprocess_dir
from service.settings import get_settings, get_settings_or_exit

WORKERS_VARIABLE = "LOSS_SERVICE_WORKERS"


def main(argv: list[str] | None = None) -> None:
    settings = get_settings_or_exit()
    parser = argparse.ArgumentParser(prog="python -m service", description=__doc__)
    parser.add_argument("--host", default=settings.host, help=f"default: {settings.host}")
    parser.add_argument("--port", type=int, default=settings.port, help=f"default: {settings.port}")
    parser.add_argument(
        "--workers", type=int, default=settings.workers, help=f"default: {settings.workers}"
    )
    args = parser.parse_args(argv)
    # Each worker process reads its settings from the environment; the torch threads it takes
    # (cores / workers) must count the workers asked for here, not the default of one.
    os.environ[WORKERS_VARIABLE] = str(args.workers)
    get_settings.cache_clear()  # a single worker runs in this process, with these settings
    reset_multiprocess_dir()
    check_job_database_or_exit(settings.db_path)  # one line and exit 78 when unusable
    uvicorn.run(
        "service.main:app",
        host=args.host,
        port=args.port,
        workers=args.workers,
        log_level=settings.log_level,
        loop="auto",
        http="auto",
        timeout_graceful_shutdown=settings.shutdown_timeout_s,
    )


if __name__ == "__main__":
    main()
