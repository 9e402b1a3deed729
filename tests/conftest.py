"""Shared fixtures: the real app behind httpx, with settings made for each test."""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    from fastapi.testclient import TestClient

from service.app import create_app
from service.settings import Settings, variable_name

STATE_VARIABLE = variable_name("state_dir")

# postgres_server (one real PostgreSQL per session) and postgres_url (a database per test)
pytest_plugins = ("tests.support.postgres",)


@pytest.fixture(scope="session", autouse=True)
def state_outside_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """No test (nor server or job process a test starts) writes to the user data folder."""
    saved = os.environ.get(STATE_VARIABLE)
    os.environ[STATE_VARIABLE] = str(tmp_path_factory.mktemp("state"))
    yield
    if saved is None:
        del os.environ[STATE_VARIABLE]
    else:
        os.environ[STATE_VARIABLE] = saved


@pytest.fixture
def make_settings(tmp_path: Path) -> Callable[..., Settings]:
    """Settings for a test: the defaults, with its own data and database under tmp_path."""

    def make(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "state_dir": tmp_path / "state",
            "data_dir": tmp_path / "data",
            "db_path": tmp_path / "var" / "jobs.sqlite3",
            "models_dir": tmp_path / "var" / "models",
            # One test client is one client: tests of the rate limit turn it on.
            "rate_limit_per_s": 0,
        }
        values.update(overrides)
        return Settings(**values)

    return make


@pytest.fixture
def make_client(make_settings: Callable[..., Settings]) -> Iterator[Callable[..., TestClient]]:
    """A client of a fresh app (lifespan started) with the given setting overrides."""
    clients: list[TestClient] = []

    def make(**overrides: Any) -> TestClient:
        client = TestClient(create_app(make_settings(**overrides)), raise_server_exceptions=False)
        client.__enter__()
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.__exit__(None, None, None)


@pytest.fixture
def client(make_client: Callable[..., TestClient]) -> TestClient:
    return make_client()
