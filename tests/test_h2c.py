"""Requests that ask to upgrade to h2c (Java's HTTP client, curl --http2) keep their bodies
against the service as ``python -m service`` runs it (httptools would drop them)."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest

from tests.support.live import Server, live_server
from tests.test_examples import INPUT, TARGET, mse_reference

pytestmark = pytest.mark.slow
BODY = json.dumps({"input": INPUT, "target": TARGET, "grad": ["input"]}).encode()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with live_server(tmp_path_factory.mktemp("h2c")) as running:
        yield running


def head(server: Server, upgrade: str = "h2c", length: int = len(BODY)) -> bytes:
    host = urlsplit(server.url).netloc
    return (
        f"POST /v1/losses/mse_loss HTTP/1.1\r\nHost: {host}\r\n"
        "Connection: Upgrade, HTTP2-Settings\r\n"
        "HTTP2-Settings: AAEAAEAAAAIAAAAAAAMAAAAAZAAEAP__\r\n"
        f"Upgrade: {upgrade}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {length}\r\n\r\n"
    ).encode()


def read_answer(sock: socket.socket) -> dict[str, object]:
    received = b""
    while True:
        data = sock.recv(65536)
        assert data, f"connection closed after {received!r}"
        received += data
        response_head, _, body = received.partition(b"\r\n\r\n")
        if not _:
            continue
        assert response_head.startswith(b"HTTP/1.1 200"), received
        lines = response_head.lower().split(b"\r\n")
        length = next(int(h.split(b":")[1]) for h in lines if h.startswith(b"content-length"))
        if len(body) >= length:
            answer: dict[str, object] = json.loads(body[:length])
            return answer


def exchange(server: Server, *rounds: list[bytes]) -> list[dict[str, object]]:
    """On one connection, for each round: send its chunks one by one, then read one answer."""
    address = urlsplit(server.url)
    answers = []
    with socket.create_connection((address.hostname, address.port), timeout=30) as sock:
        for chunks in rounds:
            for chunk in chunks:
                sock.sendall(chunk)
                time.sleep(0.05)  # separate reads on the server
            answers.append(read_answer(sock))
    return answers


def test_an_h2c_upgrade_request_keeps_its_body(server: Server) -> None:
    loss, grad = mse_reference()
    (answer,) = exchange(server, [head(server) + BODY])
    assert answer["loss"] == loss and answer["grad"] == {"input": grad}


def test_a_head_split_over_reads_and_a_second_request_on_the_connection(server: Server) -> None:
    whole = head(server, upgrade="H2C") + BODY
    first, second = exchange(server, [whole[:40], whole[40:90], whole[90:]], [whole])
    assert first == second and first["loss"] == mse_reference()[0]
