"""A token bucket per client on /v1 (``LOSS_SERVICE_RATE_LIMIT_PER_S``, ``..._BURST``): over
it, ``429`` with ``Retry-After``. Health, readiness, metrics, ``/v1/info`` and the docs are not
limited."""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

from service.errors import TooManyRequests
from service.http.clients import ClientKeys
from service.http.problems import render
from service.http.schemas import Problem

LIMITED_PREFIX = "/v1/"
UNLIMITED_PATHS = frozenset({"/v1/info"})
# Declared on every limited router, for the OpenAPI document.
RATE_LIMITED: dict[int | str, dict[str, Any]] = {
    429: {
        "model": Problem,
        "description": "Too many requests from this client (or, on routes that say so, a full "
        "queue); retry after the seconds in `Retry-After`.",
        "headers": {
            "Retry-After": {
                "description": "Seconds to wait before retrying.",
                "schema": {"type": "integer"},
            }
        },
    }
}
# Buckets remembered at most; the least recently seen is forgotten first (it comes back full).
MAX_TRACKED_CLIENTS = 100_000


class TokenBuckets:
    def __init__(self, rate_per_s: float, burst: int) -> None:
        self.rate = rate_per_s
        self.burst = float(burst)
        self.buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def take(self, client: str, now: float | None = None) -> float:
        """Take one token; 0.0 when granted, else the seconds until one is there."""
        now = time.monotonic() if now is None else now
        tokens, then = self.buckets.pop(client, (self.burst, now))
        tokens = min(self.burst, tokens + (now - then) * self.rate)
        wait = 0.0
        if tokens >= 1.0:
            tokens -= 1.0
        else:
            wait = (1.0 - tokens) / self.rate
        self.buckets[client] = (tokens, now)
        if len(self.buckets) > MAX_TRACKED_CLIENTS:
            self.buckets.popitem(last=False)
        return wait


class RateLimit:
    """Pure ASGI middleware: the bucket of the request's client pays for each /v1 request."""

    def __init__(self, app: ASGIApp, rate_per_s: float, burst: int, api_keys: list[str]) -> None:
        self.app = app
        self.buckets = TokenBuckets(rate_per_s, burst)
        self.clients = ClientKeys(api_keys)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        limited = path.startswith(LIMITED_PREFIX) and path not in UNLIMITED_PATHS
        if scope["type"] == "http" and limited:
            wait = self.buckets.take(self.clients.of(scope))
            if wait > 0:
                seconds = max(1, math.ceil(wait))
                error = TooManyRequests(
                    f"this client sends more than {self.buckets.rate:g} requests per second "
                    f"(burst {self.buckets.burst:g}, LOSS_SERVICE_RATE_LIMIT_PER_S); "
                    f"retry in {seconds} s",
                    headers={"Retry-After": str(seconds)},
                )
                await render(error, path)(scope, receive, send)
                return
        await self.app(scope, receive, send)
