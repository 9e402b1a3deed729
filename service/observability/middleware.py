"""Pure ASGI middleware around every HTTP request: takes or makes its ``X-Request-ID``, returns
it, counts and times the request by route template, and writes the access log line."""

from __future__ import annotations

import logging
import os
import re
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.observability import metrics
from service.observability.logs import request_id

REQUEST_ID_HEADER = b"x-request-id"
# A caller's id is echoed into headers and logs: accept only short, plain tokens.
_ACCEPTABLE_ID = re.compile(rb"[A-Za-z0-9._:/+=-]{1,128}")

access_log = logging.getLogger("service.access")


def new_request_id() -> str:
    return os.urandom(16).hex()


def incoming_request_id(scope: Scope) -> str | None:
    for name, value in scope["headers"]:
        if name == REQUEST_ID_HEADER:
            return value.decode("ascii") if _ACCEPTABLE_ID.fullmatch(value) else None
    return None


class RequestObservability:
    def __init__(self, app: ASGIApp, *, log_requests: bool = True) -> None:
        self.app = app
        self.log_requests = log_requests

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = incoming_request_id(scope) or new_request_id()
        token = request_id.set(rid)
        id_header = (REQUEST_ID_HEADER, rid.encode("ascii"))
        status = 500  # what the server answers when the app raises before responding

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), id_header]
            await send(message)

        started = time.perf_counter()
        metrics.HTTP_IN_PROGRESS.inc()
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            seconds = time.perf_counter() - started
            metrics.HTTP_IN_PROGRESS.dec()
            # The router stores the matched route in the (shared) scope on its way down.
            route = getattr(scope.get("route"), "path", None) or metrics.UNMATCHED_ROUTE
            method = scope["method"]
            metrics.record_request(method, route, status, seconds)
            if self.log_requests:
                access_log.info(
                    "%s %s %d",
                    method,
                    scope["path"],
                    status,
                    extra={
                        "method": method,
                        "path": scope["path"],
                        "route": route,
                        "status": status,
                        "duration_ms": round(seconds * 1000, 3),
                        "client": (scope.get("client") or ("", 0))[0],
                    },
                )
            request_id.reset(token)
