"""Helpers of the jobs tests: a data folder holding the real-MNIST fixture, waiting on jobs,
and a local HTTP server for download tests (nothing here needs the internet)."""

from __future__ import annotations

import http.server
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "mnist"


def copy_fixture(data_dir: Path, dataset: str = "mnist") -> Path:
    target = data_dir / dataset
    target.mkdir(parents=True, exist_ok=True)
    for path in FIXTURE.glob("*.gz"):
        shutil.copy(path, target / path.name)
    return target


@pytest.fixture
def jobs_client(make_client: Callable[..., Any], tmp_path: Path) -> Callable[..., Any]:
    """``make_client`` with the MNIST fixture in the data folder."""
    copy_fixture(tmp_path / "data")

    def make(**overrides: Any) -> Any:
        overrides.setdefault("job_progress_interval_s", 0.05)
        return make_client(**overrides)

    return make


def wait_for_job(
    client: Any, job_id: str, statuses: set[str], timeout: float = 60.0
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        job: dict[str, Any] = client.get(f"/v1/jobs/{job_id}").json()
        if job["status"] in statuses:
            return job
        if time.monotonic() > deadline:
            raise AssertionError(f"job still {job['status']} after {timeout}s: {job}")
        time.sleep(0.05)


def wait_until(predicate: Callable[[], bool], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.05)


class FileServer:
    """Serves ``files`` (name -> bytes) on 127.0.0.1; counts the requests."""

    def __init__(self, files: dict[str, bytes]) -> None:
        self.files = files
        self.requests: list[str] = []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.requests.append(self.path)
                body = server.files.get(self.path.rsplit("/", 1)[-1])
                if body is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/files/"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def serve_files() -> Iterator[Callable[[dict[str, bytes]], FileServer]]:
    servers: list[FileServer] = []

    def start(files: dict[str, bytes]) -> FileServer:
        server = FileServer(files)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.close()
