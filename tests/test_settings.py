"""Configuration from the environment: types, validation at start with a clear message, CORS."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from service.settings import Settings, describe_invalid_settings

ROOT = Path(__file__).resolve().parents[1]
ORIGIN = "https://notebook.example"


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> Callable[..., Settings]:
    def settings(**variables: str) -> Settings:
        for name, text in variables.items():
            monkeypatch.setenv(f"LOSS_SERVICE_{name.upper()}", text)
        return Settings()

    return settings


def test_operations_settings_are_read_from_the_environment(env: Callable[..., Settings]) -> None:
    s = env(
        log_format="text",
        access_log="false",
        cors_origins=f"{ORIGIN}, http://localhost:5173",
        shutdown_timeout_s="25",
        workers="3",
        port="9000",
    )
    assert s.log_format == "text" and s.access_log is False
    assert s.cors_origins == [ORIGIN, "http://localhost:5173"]
    assert (s.shutdown_timeout_s, s.workers, s.port) == (25, 3, 9000)


def test_cors_origins_accept_a_json_list(env: Callable[..., Settings]) -> None:
    assert env(cors_origins=f'["{ORIGIN}"]').cors_origins == [ORIGIN]
    assert env(cors_origins="").cors_origins == []


@pytest.mark.parametrize(
    ("name", "text", "complaint"),
    [
        ("port", "eighty", "valid integer"),
        ("port", "70000", "less than or equal to 65535"),
        ("log_format", "xml", "'json' or 'text'"),
        ("log_level", "loud", "must be one of"),
        ("shutdown_timeout_s", "0", "greater than or equal to 1"),
        ("access_log", "maybe", "valid boolean"),
    ],
)
def test_bad_values_are_rejected_naming_the_variable(
    env: Callable[..., Settings], name: str, text: str, complaint: str
) -> None:
    with pytest.raises(ValidationError) as raised:
        env(**{name: text})
    message = describe_invalid_settings(raised.value)
    assert f"LOSS_SERVICE_{name.upper()}={text!r}" in message
    assert complaint in message


def test_the_server_refuses_to_start_with_a_bad_value_and_says_why(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "LOSS_SERVICE_WORKERS": "0",
        "LOSS_SERVICE_LOG_FORMAT": "yaml",
    }
    done = subprocess.run(
        [sys.executable, "-m", "service", "--port", "1"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1
    assert "LOSS_SERVICE_WORKERS='0': Input should be greater than or equal to 1" in done.stderr
    assert "LOSS_SERVICE_LOG_FORMAT='yaml'" in done.stderr
    assert "Traceback" not in done.stderr


def test_no_cors_headers_unless_origins_are_configured(client: Any) -> None:
    response = client.get("/healthz", headers={"Origin": ORIGIN})
    assert "access-control-allow-origin" not in response.headers


def test_configured_origins_may_call_from_a_browser(make_client: Callable[..., Any]) -> None:
    client = make_client(cors_origins=[ORIGIN])
    preflight = client.options(
        "/v1/losses/mse_loss",
        headers={
            "Origin": ORIGIN,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type,x-request-id",
        },
    )
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == ORIGIN
    assert "POST" in preflight.headers["access-control-allow-methods"]
    answer = client.post(
        "/v1/losses/mse_loss",
        json={"input": [1.0], "target": [0.0]},
        headers={"Origin": ORIGIN},
    )
    assert answer.headers["access-control-allow-origin"] == ORIGIN
    assert "x-request-id" in answer.headers["access-control-expose-headers"].lower()
    other = client.post(
        "/v1/losses/mse_loss",
        json={"input": [1.0], "target": [0.0]},
        headers={"Origin": "https://elsewhere.example"},
    )
    assert "access-control-allow-origin" not in other.headers
