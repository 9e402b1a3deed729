"""``python -m service --workers N``: every worker takes its share of the cores for torch."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

from service import __main__ as entry
from service import server
from service.settings import get_settings


@pytest.fixture
def uvicorn_calls(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[dict[str, Any]]]:
    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(
        server, "run_config", lambda config: calls.append({"workers": config.workers})
    )
    # main() writes the variable for the worker processes; monkeypatch puts it back after.
    monkeypatch.setenv(entry.WORKERS_VARIABLE, "1")
    yield calls
    get_settings.cache_clear()


@pytest.mark.parametrize("workers", [1, 2, 3])
def test_workers_flag_reaches_the_settings_every_worker_reads(
    uvicorn_calls: list[dict[str, Any]], workers: int
) -> None:
    entry.main(["--workers", str(workers)])
    assert uvicorn_calls[0]["workers"] == workers
    assert os.environ[entry.WORKERS_VARIABLE] == str(workers)
    settings = get_settings()
    assert settings.workers == workers
    assert settings.effective_torch_threads() == max(1, (os.cpu_count() or 1) // workers)


def test_without_the_flag_the_environment_decides(
    uvicorn_calls: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(entry.WORKERS_VARIABLE, "2")
    get_settings.cache_clear()
    entry.main([])
    assert uvicorn_calls[0]["workers"] == 2
    assert get_settings().workers == 2
