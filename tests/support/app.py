"""One app per test module: the property and fuzz tests send thousands of requests."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from typing import Any

import pytest

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    from fastapi.testclient import TestClient

from service.app import create_app
from service.settings import Settings


def module_client(
    tmp_path_factory: pytest.TempPathFactory, **overrides: Any
) -> Iterator[TestClient]:
    """A started app (lifespan run) with its own data folders, for a module-scoped fixture."""
    root = tmp_path_factory.mktemp("app")
    settings = Settings(
        data_dir=root / "data",
        db_path=root / "var" / "jobs.sqlite3",
        models_dir=root / "var" / "models",
        # Thousands of requests from one client; no job is trained, so no spare training
        # process importing torch beside the requests.
        **{"rate_limit_per_s": 0, "job_warm_workers": 0, **overrides},
    )
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        yield client
