"""The ``loss-service`` command: help, version, and every flag validated like its variable."""

from __future__ import annotations

import os
import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path

import pytest

from service import __main__ as entry
from service.cli import package_version
from service.settings import Settings, variable_name

ROOT = Path(__file__).resolve().parents[1]


def run(
    *args: str, env: dict[str, str] | None = None, cwd: Path = ROOT
) -> subprocess.CompletedProcess[str]:
    """``python -m service ARGS`` (what the ``loss-service`` script runs), without the
    caller's LOSS_SERVICE_* variables unless given."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("LOSS_SERVICE_")}
    return subprocess.run(
        [sys.executable, "-m", "service", *args],
        env={**clean, "PYTHONPATH": str(ROOT), "COLUMNS": "100", **(env or {})},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_console_script_is_this_entry_point() -> None:
    (script,) = entry_points(group="console_scripts", name="loss-service")
    assert script.value == "service.__main__:main"
    assert script.load() is entry.main


def test_help_names_the_command_and_lists_every_setting() -> None:
    done = run("--help")
    assert done.returncode == 0, done.stderr
    text = done.stdout
    assert text.startswith("usage: loss-service ")
    assert "python -m service" in text  # named as the equivalent
    for name in Settings.model_fields:
        assert variable_name(name) in text
    for flag in ("--host", "--port", "--workers", "--state-dir", "--log-level", "--log-format"):
        assert flag in text
    assert "(default: 8000)" in text and "datasets" in text and "exit status:" in text
    assert "``" not in text and "`" not in text  # plain text, no markup


def test_version_is_the_package_version() -> None:
    done = run("--version")
    assert done.returncode == 0
    assert done.stdout == f"loss-service {package_version()}\n"


@pytest.mark.parametrize(
    ("args", "env", "line"),
    [
        (["--port", "83686"], {}, "--port='83686': Input should be less than or equal to 65535"),
        (["--workers", "0"], {}, "--workers='0': Input should be greater than or equal to 1"),
        (["--port", "eighty"], {}, "--port='eighty': Input should be a valid integer"),
        (["--log-format", "xml"], {}, "--log-format='xml': Input should be 'json' or 'text'"),
        (
            [],
            {"LOSS_SERVICE_WORKERS": "0"},
            "LOSS_SERVICE_WORKERS='0': Input should be greater than or equal to 1",
        ),
    ],
)
def test_a_bad_value_stops_with_one_line_and_status_1(
    args: list[str], env: dict[str, str], line: str, tmp_path: Path
) -> None:
    done = run(*args, env={"LOSS_SERVICE_STATE_DIR": str(tmp_path), **env})
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 2 and lines[0].startswith("invalid configuration (")
    assert lines[1].strip().startswith(line)
    assert not list(tmp_path.iterdir())  # nothing started, nothing written


def test_flag_and_variable_errors_are_reported_together(tmp_path: Path) -> None:
    done = run(
        "--workers", "0", env={"LOSS_SERVICE_LOG_FORMAT": "yaml", "LOSS_SERVICE_STATE_DIR": "x"}
    )
    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        "invalid configuration (command-line flags and environment variables):",
        "  --workers='0': Input should be greater than or equal to 1",
        "  LOSS_SERVICE_LOG_FORMAT='yaml': Input should be 'json' or 'text'",
    ]


def test_an_unknown_flag_is_a_usage_error() -> None:
    done = run("--prot=9000")
    assert done.returncode == 2
    assert "loss-service: error: unrecognized arguments: --prot=9000" in done.stderr


def test_flags_win_over_variables_and_reach_the_server(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """What ``serve`` receives, and what worker processes will read from the environment."""
    served: list[Settings] = []
    monkeypatch.setattr(entry, "serve", served.append)
    # The command writes its flags to the environment; monkeypatch puts it back after.
    for name, value in {"port": "9000", "state_dir": str(tmp_path), "log_level": "info"}.items():
        monkeypatch.setenv(variable_name(name), value)
    entry.main(["--port", "9001", "--state-dir", str(tmp_path / "s"), "--log-level", "WARNING"])
    (settings,) = served
    assert (settings.port, settings.state_dir, settings.log_level) == (
        9001,
        tmp_path / "s",
        "warning",
    )
    assert settings.db_path == tmp_path / "s" / "jobs.sqlite3"
    assert os.environ["LOSS_SERVICE_PORT"] == "9001"
    assert os.environ["LOSS_SERVICE_STATE_DIR"] == str(tmp_path / "s")
    assert Settings().port == 9001  # a uvicorn worker process reads the same


def test_the_ray_executor_without_ray_stops_with_one_line_and_status_78(tmp_path: Path) -> None:
    """As when the extra is not installed: ``import ray`` fails (here it is made to)."""
    hidden = tmp_path / "hide"
    hidden.mkdir()
    (hidden / "sitecustomize.py").write_text("import sys\nsys.modules['ray'] = None\n")
    done = run(
        "--port",
        "1",
        env={
            "LOSS_SERVICE_STATE_DIR": str(tmp_path / "state"),
            "LOSS_SERVICE_JOBS_EXECUTOR": "ray",
            "PYTHONPATH": f"{hidden}{os.pathsep}{ROOT}",
        },
    )
    assert done.returncode == 78
    assert done.stderr.splitlines() == [
        "loss-service: LOSS_SERVICE_JOBS_EXECUTOR=ray but Ray is not installed: "
        "pip install 'loss-service[ray]'"
    ]


def test_the_command_imports_no_metrics_before_it_sets_them_up() -> None:
    """``loss-service`` creates PROMETHEUS_MULTIPROC_DIR before serving: a module that makes
    metrics at import (or torch, seconds to import) must not be imported before that."""
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, service.__main__; "
            "print(sorted(m for m in ('prometheus_client', 'service.observability.metrics', "
            "'torch') if m in sys.modules))",
        ],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
