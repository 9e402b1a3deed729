"""JSON logs and request ids: ``X-Request-ID`` taken or made, returned, and on every log line
written while the request is served."""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Callable
from typing import Any

import pytest
from fastapi import FastAPI

from service.observability.logs import (
    JsonFormatter,
    TextFormatter,
    configure_logging,
    stamp_request_ids,
)
from service.observability.middleware import RequestObservability

MSE = {"input": [1.5, 2.0, 3.2], "target": [1.0, 2.5, 2.8]}


def json_lines(caplog: pytest.LogCaptureFixture, logger: str) -> list[dict[str, Any]]:
    formatter = JsonFormatter()
    return [json.loads(formatter.format(r)) for r in caplog.records if r.name == logger]


def test_a_callers_request_id_is_returned_and_logged(
    client: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="service.access")
    response = client.post("/v1/losses/mse_loss", json=MSE, headers={"X-Request-ID": "order-42"})
    assert response.status_code == 200
    assert response.headers["x-request-id"] == "order-42"
    (line,) = json_lines(caplog, "service.access")
    assert line["request_id"] == "order-42"
    assert line["route"] == "/v1/losses/mse_loss"
    assert line["status"] == 200
    assert line["method"] == "POST"
    assert line["duration_ms"] > 0
    assert line["level"] == "info" and line["ts"].endswith("Z")


def test_a_request_without_an_id_gets_a_fresh_one_each_time(client: Any) -> None:
    ids = {client.get("/healthz").headers["x-request-id"] for _ in range(3)}
    assert len(ids) == 3
    assert all(re.fullmatch("[0-9a-f]{32}", i) for i in ids)


@pytest.mark.parametrize("unsafe", ["x" * 129, "has space", 'quote"d', "new\\nline"])
def test_an_unsafe_request_id_is_replaced(client: Any, unsafe: str) -> None:
    returned = client.get("/healthz", headers={"X-Request-ID": unsafe}).headers["x-request-id"]
    assert returned != unsafe
    assert re.fullmatch("[0-9a-f]{32}", returned)


def test_errors_and_rejected_bodies_carry_the_id_too(make_client: Callable[..., Any]) -> None:
    client = make_client(max_body_bytes=1024)
    unknown = client.post("/v1/losses/no_such_loss", json=MSE, headers={"X-Request-ID": "r-1"})
    assert unknown.status_code == 404 and unknown.headers["x-request-id"] == "r-1"
    large = client.post("/v1/losses/mse_loss", content=b"[" * 2000, headers={"X-Request-ID": "r-2"})
    assert large.status_code == 413 and large.headers["x-request-id"] == "r-2"


def test_log_lines_written_inside_a_request_carry_its_id(
    caplog: pytest.LogCaptureFixture,
) -> None:
    inner = FastAPI()

    @inner.get("/work")
    def work() -> dict[str, str]:
        logging.getLogger("service.test").warning("halfway", extra={"step": 3})
        return {"ok": "yes"}

    from fastapi.testclient import TestClient

    caplog.set_level(logging.INFO)
    stamp_request_ids()
    client = TestClient(RequestObservability(inner, log_requests=False))
    assert client.get("/work", headers={"X-Request-ID": "abc.123"}).status_code == 200
    (line,) = json_lines(caplog, "service.test")
    assert line == {
        "ts": line["ts"],
        "level": "warning",
        "logger": "service.test",
        "message": "halfway",
        "request_id": "abc.123",
        "step": 3,
    }
    assert not json_lines(caplog, "service.access")  # log_requests=False


def test_exceptions_are_one_json_line_with_the_traceback() -> None:
    try:
        raise ValueError("broken")
    except ValueError:
        record = logging.LogRecord("service.x", logging.ERROR, __file__, 1, "failed", None, None)
        import sys

        record.exc_info = sys.exc_info()
    text = JsonFormatter().format(record)
    assert "\n" not in text
    line = json.loads(text)
    assert line["message"] == "failed" and "ValueError: broken" in line["exception"]


def test_configure_logging_replaces_its_own_handler_and_speaks_text_on_request() -> None:
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    try:
        configure_logging("info", "json")
        configure_logging("warning", "text")
        ours = [h for h in root.handlers if isinstance(h.formatter, JsonFormatter | TextFormatter)]
        assert len(ours) == 1 and isinstance(ours[0].formatter, TextFormatter)
        assert root.level == logging.WARNING
        assert logging.getLogger("uvicorn.access").disabled
        stream = io.StringIO()
        handler = logging.StreamHandler(stream)
        handler.setFormatter(TextFormatter())
        record = logging.LogRecord("service.y", logging.WARNING, __file__, 1, "plain", None, None)
        record.request_id = "rid-9"
        handler.emit(record)
        assert stream.getvalue().rstrip().endswith("WARNING service.y plain request_id=rid-9")
    finally:
        for handler in root.handlers[:]:
            if handler not in saved[0]:
                root.removeHandler(handler)
        root.setLevel(saved[1])
