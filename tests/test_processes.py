"""Process hygiene: children end with their parent, whatever ended it (SIGKILL included); a
``--workers 2`` server killed with SIGKILL leaves no process behind and its port free for the
next start; the open-file soft limit is raised to the hard limit."""

from __future__ import annotations

import os
import resource
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from tests.support.live import ROOT, Server, free_port, wait_ready

GONE_WITHIN_S = 15.0  # a generous bound on a loaded machine; the watchdog polls every 0.5 s


def alive(pid: int) -> bool:
    """Running, and not a zombie waiting to be reaped."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state not in ("Z", "X")


def children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        text = (task / "children").read_text().split()
        found.extend(int(child) for child in text)
    return found


def wait_gone(pids: list[int], timeout_s: float) -> list[int]:
    deadline = time.monotonic() + timeout_s
    left = [p for p in pids if alive(p)]
    while left and time.monotonic() < deadline:
        time.sleep(0.1)
        left = [p for p in left if alive(p)]
    return left


CHILD = textwrap.dedent(
    """
    import subprocess, sys, time
    grandchild = subprocess.Popen([sys.executable, "-c", {code!r}])
    print(grandchild.pid, flush=True)
    time.sleep(600)
    """
)
GRANDCHILD = textwrap.dedent(
    """
    import time
    from service.processes import die_with_parent
    die_with_parent(death_signal={death_signal})
    time.sleep(600)
    """
)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
@pytest.mark.parametrize("death_signal", [True, False], ids=["prctl", "watchdog"])
def test_a_child_ends_when_its_parent_is_killed(death_signal: bool) -> None:
    code = GRANDCHILD.format(death_signal=death_signal)
    parent = subprocess.Popen(
        [sys.executable, "-c", CHILD.format(code=code)],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        assert parent.stdout is not None
        grandchild = int(parent.stdout.readline())
        time.sleep(1.5)  # the grandchild has armed its watch
        assert alive(grandchild)
    finally:
        parent.kill()
        parent.wait()
    assert wait_gone([grandchild], GONE_WITHIN_S) == []


def test_the_open_file_soft_limit_is_raised_to_the_hard_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    low = min(256, soft)
    code = (
        "import resource; from service.processes import raise_open_file_limit; "
        "print(raise_open_file_limit(), resource.getrlimit(resource.RLIMIT_NOFILE)[0])"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (low, hard)),
    ).stdout.split()
    expected = hard if hard != resource.RLIM_INFINITY else int(out[1])
    assert [int(v) for v in out] == [expected, expected]


def port_is_free(port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
        try:
            sock.bind(("127.0.0.1", port))
            sock.listen()
        except OSError:
            return False
    return True


def start(home: Path, port: int, workers: int) -> Server:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("LOSS_SERVICE_")},
        "PYTHONPATH": str(ROOT),
        "LOSS_SERVICE_DB_PATH": str(home / "var" / "jobs.sqlite3"),
        "LOSS_SERVICE_MODELS_DIR": str(home / "var" / "models"),
        "LOSS_SERVICE_DATA_DIR": str(home / "data"),
    }
    home.mkdir(parents=True, exist_ok=True)
    log = home / "server.log"
    command = [sys.executable, "-m", "service", "--workers", str(workers), "--port", str(port)]
    with log.open("wb") as out:
        process = subprocess.Popen(
            command, cwd=home, env=env, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
    return Server(f"http://127.0.0.1:{port}", process, log, home)


def stop(server: Server, others: list[int]) -> None:
    if server.process.poll() is None:
        server.process.send_signal(signal.SIGTERM)
        try:
            server.process.wait(60)
        except subprocess.TimeoutExpired:
            server.process.kill()
            server.process.wait()
    for pid in others:
        if alive(pid):
            os.kill(pid, signal.SIGKILL)


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_sigkill_of_a_two_worker_server_leaves_nothing_behind(tmp_path: Path) -> None:
    port = free_port()
    server = start(tmp_path / "first", port, workers=2)
    family: list[int] = []
    try:
        wait_ready(server, timeout=180)
        family = children(server.process.pid)  # two workers and multiprocessing's tracker
        assert len(family) >= 2
        server.process.kill()
        server.process.wait()
        assert wait_gone(family, GONE_WITHIN_S) == [], server.log_lines()[-20:]
    finally:
        stop(server, family)
    assert port_is_free(port)
    again = start(tmp_path / "again", port, workers=1)
    try:
        wait_ready(again, timeout=180)  # a new server starts on the same port
    finally:
        stop(again, [])
