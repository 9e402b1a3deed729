"""A real Ray cluster for tests: ``ray start --head --block`` (and worker nodes) on 127.0.0.2.

Every node binds 127.0.0.2 (Ray replaces 127.0.0.1 with the host's address) and a free port for
each listener Ray would otherwise put on a fixed one (dashboard, dashboard agent, Ray client), so
that two clusters, or a cluster and a developer's own, never collide. The temporary folder is
short: Ray's socket paths live in it and must stay under 107 characters.

Stopped by PID: SIGTERM to each ``--block`` process (which stops its node's processes), then
SIGKILL to whatever of the cluster outlived it: every descendant seen while it ran, and any
process whose command line names the cluster's temporary folder.
"""

from __future__ import annotations

import contextlib
import importlib.util
import ipaddress
import os
import re
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import IO, Self

from tests.support.live import ROOT, free_port

NODE_IP = "127.0.0.2"
READY_LINE = "Ray runtime started"
START_TIMEOUT_S = 90.0
STOP_TIMEOUT_S = 20.0
_SS_PEER = re.compile(r"^\S+\s+\d+\s+\d+\s+(\S+)\s+(\S+)\s+users:\((.*)\)\s*$")
_SS_PID = re.compile(r"pid=(\d+)")


def ray_available() -> bool:
    return importlib.util.find_spec("ray") is not None


class RayCluster:
    """``with RayCluster(num_cpus=4, worker_nodes=1) as cluster:`` ... ``cluster.address``;
    give a driver (a process that calls ``ray.init``) ``cluster.driver_env``."""

    def __init__(
        self,
        num_cpus: int = 2,
        worker_nodes: int = 0,
        worker_cpus: int = 1,
        object_store_bytes: int = 100 * 1024 * 1024,
        env: dict[str, str] | None = None,
        auth_token: bool = False,
    ) -> None:
        self.num_cpus = num_cpus
        self.worker_nodes = worker_nodes
        self.worker_cpus = worker_cpus
        self.object_store_bytes = object_store_bytes
        self.port = free_port()
        self.address = f"{NODE_IP}:{self.port}"
        self.temp_dir = Path(tempfile.mkdtemp(prefix="ray-", dir="/tmp"))
        # Explicitly off (loopback only), else Ray turns token authentication on whenever
        # some other run left a ~/.ray/auth_token. With auth_token, a token of this cluster's
        # own: its drivers need driver_env in their environment before they import ray (Ray
        # reads RAY_AUTH_MODE at import).
        self.driver_env = (
            {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32)}
            if auth_token
            else {"RAY_AUTH_MODE": "disabled"}
        )
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("LOSS_SERVICE_", "RAY_"))},
            # Actors import the service from this checkout.
            "PYTHONPATH": str(ROOT),
            "RAY_USAGE_STATS_ENABLED": "0",
            # SIGTERM stops a node at once, instead of draining its actors for 30 s first.
            "RAY_GRACEFUL_SHUTDOWN_DRAIN_TIMEOUT_S": "0",
            **self.driver_env,
            **(env or {}),
        }
        self.nodes: list[subprocess.Popen[bytes]] = []
        self._logs: list[IO[bytes]] = []
        self._seen: set[int] = set()

    # Lifecycle

    def __enter__(self) -> Self:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> None:
        self._start_node(["--head", f"--port={self.port}", f"--num-cpus={self.num_cpus}"], "head")
        for index in range(self.worker_nodes):
            self._start_node(
                [f"--address={self.address}", f"--num-cpus={self.worker_cpus}"], f"worker{index}"
            )

    def _start_node(self, role: list[str], name: str) -> None:
        command = [
            "ray",
            "start",
            "--block",
            *role,
            f"--node-ip-address={NODE_IP}",
            "--disable-usage-stats",
            f"--object-store-memory={self.object_store_bytes}",
            f"--temp-dir={self.temp_dir}",
            f"--dashboard-agent-listen-port={free_port()}",
        ]
        if "--head" in role:
            command += ["--include-dashboard=false", f"--dashboard-port={free_port()}"]
            if importlib.util.find_spec("grpc") is not None:
                # Ray starts its client server on 10001 whenever it can (ray[client]).
                command.append(f"--ray-client-server-port={free_port()}")
        log_path = self.temp_dir / f"{name}.log"
        log = log_path.open("wb")
        self._logs.append(log)
        node = subprocess.Popen(
            command,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            cwd=self.temp_dir,
        )
        self.nodes.append(node)
        deadline = time.monotonic() + START_TIMEOUT_S
        while READY_LINE not in log_path.read_text(errors="replace"):
            if node.poll() is not None or time.monotonic() > deadline:
                tail = log_path.read_text(errors="replace")[-3000:]
                raise RuntimeError(f"ray node {name} did not start:\n{tail}")
            time.sleep(0.2)
        self.processes()  # remember the node's processes while they run

    def stop(self) -> None:
        self.processes()
        for node in reversed(self.nodes):  # worker nodes first, then the head
            if node.poll() is None:
                node.send_signal(signal.SIGTERM)
                try:
                    node.wait(STOP_TIMEOUT_S)
                except subprocess.TimeoutExpired:
                    node.kill()
                    node.wait()
        deadline = time.monotonic() + STOP_TIMEOUT_S
        while self.leftovers() and time.monotonic() < deadline:
            time.sleep(0.2)
        for pid in self.leftovers():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        for log in self._logs:
            log.close()
        if not self.leftovers():
            shutil.rmtree(self.temp_dir, ignore_errors=True)

    # Inspection

    def processes(self) -> set[int]:
        """PIDs of the cluster's live processes (the nodes' descendants: GCS, raylets, workers
        and actors); each one seen is remembered, so that ``stop`` can check it ended."""
        children: dict[int, list[int]] = {}
        for pid, parent in _parents().items():
            children.setdefault(parent, []).append(pid)
        found: set[int] = set()
        todo = [node.pid for node in self.nodes if node.poll() is None]
        while todo:
            pid = todo.pop()
            if pid not in found:
                found.add(pid)
                todo.extend(children.get(pid, []))
        found |= self._naming_temp_dir()
        self._seen |= found
        return found

    def leftovers(self) -> set[int]:
        """Processes of the cluster still alive (after ``stop``: none, or it failed)."""
        running = {pid for pid in self._seen if alive(pid)}
        return running | self._naming_temp_dir()

    def _naming_temp_dir(self) -> set[int]:
        marker = str(self.temp_dir).encode()
        found = set()
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                with contextlib.suppress(OSError):
                    if marker in (entry / "cmdline").read_bytes():
                        found.add(int(entry.name))
        return found

    def non_loopback_connections(self) -> list[str]:
        """``ss -tnp`` lines of the cluster's processes whose local or peer address is not on
        the loopback (empty: the cluster talks to this host only)."""
        pids = self.processes()
        out = subprocess.run(["ss", "-tnpH"], capture_output=True, text=True, check=True).stdout
        outside = []
        for line in out.splitlines():
            match = _SS_PEER.match(line)
            if match is None:
                continue
            owners = {int(pid) for pid in _SS_PID.findall(match.group(3))}
            if owners & pids and not all(_loopback(a) for a in match.group(1, 2)):
                outside.append(line)
        return outside


def _parents() -> dict[int, int]:
    parents = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                stat = (entry / "stat").read_text()
                # The command name, in parentheses, may hold spaces: split after it.
                parents[int(entry.name)] = int(stat.rpartition(")")[2].split()[1])
    return parents


def alive(pid: int) -> bool:
    """Whether process ``pid`` runs (a zombie does not)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except OSError:
        return False
    return state != "Z"


def _loopback(address: str) -> bool:
    host = address.rpartition(":")[0].strip("[]")
    if host.startswith("::ffff:"):
        host = host[len("::ffff:") :]
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return False
