"""Connection hygiene of a live server (``python -m service``): slow clients cannot take it
offline. A flood of sockets that send their request heads slowly, more than the connection
cap, leaves ``/healthz`` answering; slow heads and stalled bodies are closed after their
deadlines; one client's connections are capped; keep-alive connections end after their quota
of requests; event streams are capped per client."""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.support.live import Server, live_server

pytestmark = pytest.mark.slow

HEADER_TIMEOUT_S = 2.0
BODY_TIMEOUT_S = 2.0
MAX_CONNECTIONS = 40
PER_CLIENT = 12
KEEP_ALIVE_MAX = 3
STREAMS_PER_CLIENT = 2
FLOOD = 3 * MAX_CONNECTIONS  # well within this process's own open-file limit
# A generous bound on a loaded 2-core machine: the point is "answers", not a speed figure.
ANSWER_WITHIN_S = 10.0
# Long enough to stream for the whole test, within LOSS_SERVICE_MAX_JOB_STEPS.
LONG_JOB = {"epochs": 1000, "batch_size": 64, "train_samples": 512, "seed": 3}
ATTACKER = "127.0.0.2"  # another loopback address: another client


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    settings = {
        "header_timeout_s": str(HEADER_TIMEOUT_S),
        "body_timeout_s": str(BODY_TIMEOUT_S),
        "max_connections": str(MAX_CONNECTIONS),
        "max_connections_per_client": str(PER_CLIENT),
        "keep_alive_max_requests": str(KEEP_ALIVE_MAX),
        "max_event_streams_per_client": str(STREAMS_PER_CLIENT),
        "rate_limit_per_s": "0",
    }
    with live_server(tmp_path_factory.mktemp("connections"), **settings) as running:
        yield running


def address(server: Server) -> tuple[str, int]:
    host, port = server.url.removeprefix("http://").split(":")
    return host, int(port)


def connect(server: Server, source: str = "127.0.0.1") -> socket.socket:
    sock = socket.create_connection(address(server), timeout=10, source_address=(source, 0))
    return sock


def is_closed(sock: socket.socket, wait_s: float = 0.0) -> bool:
    """The server closed (or reset) the connection; what it sent before is read and dropped."""
    sock.settimeout(wait_s if wait_s > 0 else 0.001)
    try:
        while True:
            data = sock.recv(65536)
            if not data:
                return True
    except (TimeoutError, BlockingIOError):
        return False
    except OSError:
        return True


def wait_closed(sockets: list[socket.socket], timeout_s: float) -> list[socket.socket]:
    """The sockets still open after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    open_ = list(sockets)
    while open_ and time.monotonic() < deadline:
        open_ = [s for s in open_ if not is_closed(s, 0.05)]
    return open_


def healthz(server: Server) -> float:
    started = time.perf_counter()
    response = httpx.get(f"{server.url}/healthz", timeout=ANSWER_WITHIN_S)
    assert response.status_code == 200
    return time.perf_counter() - started


def test_a_slow_header_flood_leaves_healthz_answering(server: Server) -> None:
    sockets: list[socket.socket] = []
    try:
        for i in range(FLOOD):
            with contextlib.suppress(OSError):
                sock = connect(server, ATTACKER if i % 2 else "127.0.0.3")
                sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
                sockets.append(sock)
        # Slowly, a header line at a time, as a slow-header client does.
        for _ in range(2):
            for sock in sockets:
                with contextlib.suppress(OSError):
                    sock.sendall(b"X-Slow: 1\r\n")
            assert healthz(server) < ANSWER_WITHIN_S
        # Beyond the cap, the oldest waiting connections made room for the new ones.
        still_open = [s for s in sockets if not is_closed(s)]
        assert len(still_open) <= MAX_CONNECTIONS
        # Every slow head is closed after the head deadline, however it keeps sending.
        assert wait_closed(still_open, HEADER_TIMEOUT_S + 10) == []
        assert healthz(server) < ANSWER_WITHIN_S
    finally:
        for sock in sockets:
            sock.close()


def test_a_stalled_body_is_closed_after_the_body_deadline(server: Server) -> None:
    with connect(server) as sock:
        sock.sendall(
            b"POST /v1/losses/mse_loss HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b'Content-Length: 100\r\n\r\n{"input": '
        )
        started = time.monotonic()
        assert wait_closed([sock], BODY_TIMEOUT_S + 10) == []
        assert time.monotonic() - started >= BODY_TIMEOUT_S * 0.9


def test_one_client_holds_at_most_its_share_of_connections(server: Server) -> None:
    sockets = [connect(server, ATTACKER) for _ in range(3 * PER_CLIENT)]
    try:
        time.sleep(0.5)
        still_open = [s for s in sockets if not is_closed(s)]
        assert len(still_open) <= PER_CLIENT
        # The same client still gets an answer: its oldest waiting connection made room.
        with connect(server, ATTACKER) as sock:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            sock.settimeout(ANSWER_WITHIN_S)
            assert sock.recv(65536).startswith(b"HTTP/1.1 200")
    finally:
        for sock in sockets:
            sock.close()


def test_a_keep_alive_connection_ends_after_its_quota_of_requests(server: Server) -> None:
    with httpx.Client(base_url=server.url, timeout=ANSWER_WITHIN_S) as client:
        answers = [client.get("/healthz") for _ in range(KEEP_ALIVE_MAX)]
    assert [a.headers.get("connection") for a in answers][-1] == "close"
    assert all(a.headers.get("connection") != "close" for a in answers[:-1])


def test_event_streams_are_capped_per_client(server: Server) -> None:
    job = httpx.post(f"{server.url}/v1/jobs/mnist", json=LONG_JOB, timeout=30).json()
    url = f"{server.url}/v1/jobs/{job['id']}/events"
    with contextlib.ExitStack() as stack:
        client = stack.enter_context(httpx.Client(timeout=30))
        streams = [
            stack.enter_context(client.stream("GET", url)) for _ in range(STREAMS_PER_CLIENT)
        ]
        assert [s.status_code for s in streams] == [200] * STREAMS_PER_CLIENT
        refused = client.get(url)
        assert refused.status_code == 429
        assert int(refused.headers["retry-after"]) >= 1
        assert refused.headers["content-type"].startswith("application/problem+json")
        assert "LOSS_SERVICE_MAX_EVENT_STREAMS_PER_CLIENT" in refused.json()["detail"]
        # Another client is not refused.
        other = httpx.Client(timeout=30, transport=httpx.HTTPTransport(local_address=ATTACKER))
        with other, other.stream("GET", url) as stream:
            assert stream.status_code == 200
    # Closed streams give their places back.
    with httpx.Client(timeout=30) as client, client.stream("GET", url) as stream:
        assert stream.status_code == 200
    httpx.delete(f"{server.url}/v1/jobs/{job['id']}", timeout=30)
