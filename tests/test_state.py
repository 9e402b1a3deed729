"""The service's state lives in one folder that does not depend on the current folder."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from service.settings import Settings
from service.state import user_data_dir

ROOT = Path(__file__).resolve().parents[1]


def test_user_data_folder_of_each_platform(tmp_path: Path) -> None:
    home = tmp_path / "home"
    linux = user_data_dir({}, "linux", home)
    assert linux == home / ".local" / "share" / "loss-service"
    assert user_data_dir({"XDG_DATA_HOME": "/xdg"}, "linux", home) == Path("/xdg/loss-service")
    # A relative XDG_DATA_HOME is invalid (XDG Base Directory specification): ignored.
    assert user_data_dir({"XDG_DATA_HOME": "rel"}, "linux", home) == linux
    mac = home / "Library" / "Application Support" / "loss-service"
    assert user_data_dir({}, "darwin", home) == mac
    windows = user_data_dir({"LOCALAPPDATA": "C:/Users/u/AppData/Local"}, "win32", home)
    assert windows == Path("C:/Users/u/AppData/Local/loss-service")


def test_every_part_derives_from_the_state_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("LOSS_SERVICE_STATE_DIR")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    default = Settings()
    assert default.state_dir == tmp_path / "xdg" / "loss-service"
    assert default.db_path == default.state_dir / "jobs.sqlite3"
    assert default.models_dir == default.state_dir / "models"
    assert default.data_dir == default.state_dir / "data"
    monkeypatch.setenv("LOSS_SERVICE_STATE_DIR", str(tmp_path / "s"))
    monkeypatch.setenv("LOSS_SERVICE_DATA_DIR", "/usr/share/datasets")
    moved = Settings()
    assert moved.db_path == tmp_path / "s" / "jobs.sqlite3"
    assert moved.data_dir == Path("/usr/share/datasets")  # each part can still move alone
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LOSS_SERVICE_STATE_DIR", "relative")
    # Relative to the folder the service starts in, fixed at start.
    assert Settings().models_dir == tmp_path / "relative" / "models"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.slow
def test_started_from_any_folder_the_state_is_in_the_user_data_folder(tmp_path: Path) -> None:
    home, work = tmp_path / "home", tmp_path / "work"
    home.mkdir()
    (work / "var").mkdir(parents=True)
    (work / "var" / "jobs.sqlite3").write_bytes(b"")  # where an earlier version kept it
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOSS_SERVICE_")}
    env.pop("XDG_DATA_HOME", None)
    env.update(HOME=str(home), PYTHONPATH=str(ROOT), LOSS_SERVICE_ACCESS_LOG="false")
    process = subprocess.Popen(
        [sys.executable, "-m", "service", "--port", str(port)],
        cwd=work,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert process.poll() is None and time.monotonic() < deadline, "no server"
            time.sleep(0.1)
    finally:
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=60)
    state = home / ".local" / "share" / "loss-service"
    assert (state / "jobs.sqlite3").is_file()
    assert sorted(p.name for p in work.rglob("*")) == ["jobs.sqlite3", "var"]  # nothing new
    records = [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]
    (start,) = [r for r in records if r["message"].startswith("state: ")]
    assert start["message"] == (
        f"state: database {state / 'jobs.sqlite3'}, models {state / 'models'}, "
        f"data {state / 'data'}"
    )
    assert (start["database"], start["models"], start["data"]) == (
        str(state / "jobs.sqlite3"),
        str(state / "models"),
        str(state / "data"),
    )
    (hint,) = [r for r in records if r["level"] == "warning" and "earlier version" in r["message"]]
    assert str(work / "var" / "jobs.sqlite3") in hint["message"]
