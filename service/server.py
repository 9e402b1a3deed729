"""Starting the embedded server: uvicorn with the service's connection limits.

``serve(settings, host, port, workers)`` raises the open-file limit, fits the connection cap
under it, and runs uvicorn with the guarded protocol (``service.http.connections``). Every worker
process ends with the process that supervises it (``service.processes.die_with_parent``).
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import sys

import uvicorn
from uvicorn.config import STARTUP_FAILURE
from uvicorn.supervisors.multiprocess import Multiprocess

from service.http.connections import ConnectionLimits, GuardedHttpToolsProtocol, guard_of
from service.observability.multiprocess import reset_multiprocess_dir
from service.processes import connection_cap, die_with_parent, raise_open_file_limit
from service.settings import Settings, get_settings

log = logging.getLogger("service.server")

APP = "service.main:app"
WORKERS_VARIABLE = "LOSS_SERVICE_WORKERS"


class ServiceConfig(uvicorn.Config):
    """uvicorn's config, carrying the connection limits to every worker process.

    In a worker process started by uvicorn's supervisor, ``configure_logging()`` is the first
    thing that runs (before the application is imported and before uvicorn takes over SIGTERM):
    it ties the worker's life to the supervisor's there.
    """

    connection_limits: ConnectionLimits

    def configure_logging(self) -> None:
        parent = multiprocessing.parent_process()
        if parent is not None and parent.pid is not None:
            die_with_parent(parent.pid)
        super().configure_logging()

    def load(self) -> None:
        super().load()
        guard_of(self)


def connection_limits(settings: Settings, open_files: int) -> ConnectionLimits:
    cap = connection_cap(settings.max_connections, open_files)
    if cap < settings.max_connections:
        log.warning(
            "LOSS_SERVICE_MAX_CONNECTIONS=%d does not fit the open-file limit %d: %d connections",
            settings.max_connections,
            open_files,
            cap,
        )
    return ConnectionLimits(
        header_timeout_s=settings.header_timeout_s,
        body_timeout_s=settings.body_timeout_s,
        max_connections=cap,
        max_connections_per_client=settings.max_connections_per_client,
        keep_alive_max_requests=settings.keep_alive_max_requests,
    )


def build_config(settings: Settings, host: str, port: int, workers: int) -> ServiceConfig:
    open_files = raise_open_file_limit()
    config = ServiceConfig(
        APP,
        host=host,
        port=port,
        workers=workers,
        log_level=settings.log_level,
        loop="auto",
        http=GuardedHttpToolsProtocol,
        ws="none",
        timeout_keep_alive=settings.keep_alive_timeout_s,
        timeout_graceful_shutdown=settings.shutdown_timeout_s,
    )
    config.connection_limits = connection_limits(settings, open_files)
    return config


def serve(settings: Settings, host: str, port: int, workers: int) -> None:
    """Run the service until it is stopped (SIGINT/SIGTERM)."""
    # Each worker process reads its settings from the environment; the torch threads it takes
    # (cores / workers) must count the workers asked for here, not the default of one.
    os.environ[WORKERS_VARIABLE] = str(workers)
    get_settings.cache_clear()  # a single worker runs in this process, with these settings
    reset_multiprocess_dir()
    run_config(build_config(settings, host, port, workers))


def run_config(config: ServiceConfig) -> None:
    """What ``uvicorn.run`` does with a ready config: one server, or a supervisor of workers."""
    server = uvicorn.Server(config)
    try:
        if config.workers > 1:
            Multiprocess(config, sockets=[config.bind_socket()]).run()
        else:
            server.run()
    except KeyboardInterrupt:
        pass
    if config.workers == 1 and not server.started:
        sys.exit(STARTUP_FAILURE)
