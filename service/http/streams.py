"""A cap on open event streams (``text/event-stream`` answers), in total and per client
(``LOSS_SERVICE_MAX_EVENT_STREAMS``, ``..._PER_CLIENT``). Keyed on the answer's media type, so it
holds for every streaming route; a stream over the cap is answered 429 before any of it is sent.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.errors import TooManyRequests
from service.http.clients import ClientKeys
from service.http.problems import render

EVENT_STREAM = b"text/event-stream"
RETRY_AFTER_S = 5


class StreamRefused(Exception):
    """Raised from ``send`` to stop the application's stream before its first byte."""

    def __init__(self, error: TooManyRequests) -> None:
        super().__init__(error.detail)
        self.error = error


def is_event_stream(message: Message) -> bool:
    for name, value in message.get("headers", ()):
        if name.lower() == b"content-type":
            return bytes(value).split(b";", 1)[0].strip().lower() == EVENT_STREAM
    return False


class EventStreamCap:
    """Pure ASGI middleware counting the event streams open in this worker process."""

    def __init__(self, app: ASGIApp, total: int, per_client: int, api_keys: list[str]) -> None:
        self.app = app
        self.total = total
        self.per_client_cap = per_client
        self.clients = ClientKeys(api_keys)
        self.open = 0
        self.per_client: dict[str, int] = {}

    def _refusal(self, client: str) -> TooManyRequests | None:
        if self.per_client.get(client, 0) >= self.per_client_cap:
            detail = (
                f"this client already follows {self.per_client_cap} event streams "
                "(LOSS_SERVICE_MAX_EVENT_STREAMS_PER_CLIENT); close one first"
            )
        elif self.open >= self.total:
            detail = (
                f"the server already sends {self.total} event streams "
                "(LOSS_SERVICE_MAX_EVENT_STREAMS); retry later"
            )
        else:
            return None
        return TooManyRequests(detail, headers={"Retry-After": str(RETRY_AFTER_S)})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        holder: str | None = None

        async def counted_send(message: Message) -> None:
            nonlocal holder
            if message["type"] == "http.response.start" and is_event_stream(message):
                client = self.clients.of(scope)
                refusal = self._refusal(client)
                if refusal is not None:
                    raise StreamRefused(refusal)
                holder = client
                self.open += 1
                self.per_client[client] = self.per_client.get(client, 0) + 1
            await send(message)

        try:
            await self.app(scope, receive, counted_send)
        except StreamRefused as refused:
            await render(refused.error, scope.get("path"))(scope, receive, send)
        finally:
            if holder is not None:
                self.open -= 1
                left = self.per_client[holder] - 1
                if left:
                    self.per_client[holder] = left
                else:
                    del self.per_client[holder]
