"""Connection hygiene in the embedded server: what uvicorn does not do by itself.

uvicorn (httptools) closes idle keep-alive connections, but has no deadline for a request's
head or body and no cap on connections, so slow clients holding sockets open can use up every
open file and take the server offline. ``GuardedHttpToolsProtocol`` adds, per worker process:

- a head deadline (``header_timeout_s``): from the connection's start, or the end of the
  previous answer, to the end of the request's headers; the connection is closed beyond;
- a body deadline (``body_timeout_s``): the longest pause while the body arrives (not counting
  time the server itself stopped reading because the application had not taken the data);
- a cap on connections (``max_connections``) and on connections per client address
  (``max_connections_per_client``): a new connection over a cap takes the place of the oldest
  connection that is waiting for a request (idle or still sending its head), so slow clients
  cannot lock others out; when none is waiting, the new connection is answered 503 (or 429 for
  one client's cap) and closed;
- a cap on requests per keep-alive connection (``keep_alive_max_requests``).
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass
from typing import Any

from uvicorn.config import Config
from uvicorn.server import ServerState

from service.http.h2c import H2cTolerantHttpToolsProtocol

log = logging.getLogger("service.connections")


@dataclass(frozen=True)
class ConnectionLimits:
    header_timeout_s: float = 10.0
    body_timeout_s: float = 30.0
    max_connections: int = 1000
    max_connections_per_client: int = 0  # 0: no cap
    keep_alive_max_requests: int = 1000


def _refusal(status: int, reason: str, detail: str) -> bytes:
    body = json.dumps(
        {"type": "about:blank", "title": reason, "status": status, "detail": detail}
    ).encode()
    head = (
        f"HTTP/1.1 {status} {reason}\r\n"
        "content-type: application/problem+json\r\n"
        f"content-length: {len(body)}\r\n"
        "retry-after: 1\r\n"
        "connection: close\r\n\r\n"
    ).encode()
    return head + body


BUSY = _refusal(
    503,
    "Service Unavailable",
    "the server has as many connections as it takes (LOSS_SERVICE_MAX_CONNECTIONS), all busy",
)
TOO_MANY_FROM_CLIENT = _refusal(
    429,
    "Too Many Requests",
    "this client has as many open connections as it may have "
    "(LOSS_SERVICE_MAX_CONNECTIONS_PER_CLIENT), all busy",
)


class ConnectionGuard:
    """The connections of one worker process, which of them wait for a request, per client."""

    def __init__(self, limits: ConnectionLimits) -> None:
        self.limits = limits
        self.open: dict[GuardedHttpToolsProtocol, None] = {}
        # Connections waiting for a request (idle, or sending a head), oldest first.
        self.waiting: dict[GuardedHttpToolsProtocol, None] = {}
        self.per_client: dict[str, dict[GuardedHttpToolsProtocol, None]] = {}
        self.waiting_per_client: dict[str, dict[GuardedHttpToolsProtocol, None]] = {}
        self.evicted = 0
        self.refused = 0
        self.timed_out = 0

    def admit(self, connection: GuardedHttpToolsProtocol) -> bytes | None:
        """Register a new connection; or the answer that refuses it."""
        host = connection.client_host
        cap = self.limits.max_connections_per_client
        mine = self.per_client.get(host, {})
        if cap and len(mine) >= cap and not self._evict(self.waiting_per_client.get(host, {})):
            self.refused += 1
            return TOO_MANY_FROM_CLIENT
        if len(self.open) >= self.limits.max_connections and not self._evict(self.waiting):
            self.refused += 1
            return BUSY
        self.open[connection] = None
        self.per_client.setdefault(host, {})[connection] = None
        return None

    def _evict(self, waiting: dict[GuardedHttpToolsProtocol, None]) -> bool:
        victim = next(iter(waiting), None)
        if victim is None:
            return False
        self.evicted += 1
        victim.close("evicted to make room")
        return True

    def set_waiting(self, connection: GuardedHttpToolsProtocol, waiting: bool) -> None:
        host = connection.client_host
        if waiting and connection in self.open:
            self.waiting.pop(connection, None)
            self.waiting[connection] = None  # now the newest
            self.waiting_per_client.setdefault(host, {})[connection] = None
        else:
            self.waiting.pop(connection, None)
            self._discard(self.waiting_per_client, host, connection)

    def forget(self, connection: GuardedHttpToolsProtocol) -> None:
        host = connection.client_host
        self.open.pop(connection, None)
        self.waiting.pop(connection, None)
        self._discard(self.per_client, host, connection)
        self._discard(self.waiting_per_client, host, connection)

    @staticmethod
    def _discard(
        table: dict[str, dict[GuardedHttpToolsProtocol, None]],
        host: str,
        connection: GuardedHttpToolsProtocol,
    ) -> None:
        group = table.get(host)
        if group is not None:
            group.pop(connection, None)
            if not group:
                del table[host]


def guard_of(config: Config) -> ConnectionGuard:
    """The process's guard, made on first use from the limits the config carries."""
    guard: ConnectionGuard | None = getattr(config, "connection_guard", None)
    if guard is None:
        limits = getattr(config, "connection_limits", None) or ConnectionLimits()
        guard = ConnectionGuard(limits)
        config.connection_guard = guard  # type: ignore[attr-defined]
    return guard


class GuardedHttpToolsProtocol(H2cTolerantHttpToolsProtocol):
    """uvicorn's httptools protocol with the deadlines and caps above."""

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self.guard = guard_of(config)
        self.limits = self.guard.limits
        self.client_host = ""
        self.requests_seen = 0
        self.deadline: asyncio.TimerHandle | None = None

    # Connection life

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self.client_host = self.client[0] if self.client else ""
        refusal = self.guard.admit(self)
        if refusal is not None:
            transport.write(refusal)
            transport.close()
            return
        self._await_head()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_deadline()
        self.guard.forget(self)
        super().connection_lost(exc)

    def close(self, reason: str) -> None:
        self._cancel_deadline()
        self.guard.forget(self)
        if self.transport is not None and not self.transport.is_closing():
            log.debug("closing connection from %s: %s", self.client_host, reason)
            self.transport.close()

    # Request life: waiting for a head, then reading a body, then answering

    def on_headers_complete(self) -> None:
        self._cancel_deadline()
        self.guard.set_waiting(self, False)
        super().on_headers_complete()
        self.requests_seen += 1
        if self.cycle is not None and self.requests_seen >= self.limits.keep_alive_max_requests:
            self.cycle.keep_alive = False
        self._arm(self.limits.body_timeout_s, self._body_timed_out)

    def on_body(self, body: bytes) -> None:
        super().on_body(body)
        self._arm(self.limits.body_timeout_s, self._body_timed_out)

    def on_message_complete(self) -> None:
        self._cancel_deadline()
        super().on_message_complete()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing() and not self.pipeline:
            self._await_head()

    # Deadlines

    def _await_head(self) -> None:
        self.guard.set_waiting(self, True)
        self._arm(self.limits.header_timeout_s, self._head_timed_out)

    def _arm(self, seconds: float, handler: Any) -> None:
        self._cancel_deadline()
        self.deadline = self.loop.call_later(seconds, handler)

    def _cancel_deadline(self) -> None:
        if self.deadline is not None:
            self.deadline.cancel()
            self.deadline = None

    def _head_timed_out(self) -> None:
        self.deadline = None
        self.guard.timed_out += 1
        self.close("no complete request head in time (LOSS_SERVICE_HEADER_TIMEOUT_S)")

    def _body_timed_out(self) -> None:
        self.deadline = None
        if self.flow is not None and self.flow.read_paused:
            # The server stopped reading (the application has not taken the data yet): the
            # client is not the slow one.
            self._arm(self.limits.body_timeout_s, self._body_timed_out)
            return
        self.guard.timed_out += 1
        self.close("request body stalled (LOSS_SERVICE_BODY_TIMEOUT_S)")
