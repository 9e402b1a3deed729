"""The job manager's life inside the app's: started before the first request, stopped last."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from service.jobs.database import JobDatabaseError
from service.jobs.manager import JobManager
from service.settings import Settings

log = logging.getLogger(__name__)


@asynccontextmanager
async def jobs_lifespan(app: FastAPI, settings: Settings) -> AsyncIterator[JobManager]:
    """Start the job manager (recovering records of a previous run) and stop it at exit."""
    try:
        manager = JobManager(settings)
    except JobDatabaseError as error:
        log.error("%s", error.line)  # one line naming the file, then the start fails
        raise
    app.state.job_manager = manager
    await manager.start()
    try:
        yield manager
    finally:
        await manager.stop()
