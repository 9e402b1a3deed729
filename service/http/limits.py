"""Request body limits: size, enforced while the body streams in, and JSON object members,
counted before the body is parsed (413 past either)."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.errors import PayloadTooLarge
from service.http.problems import render


class BodySizeLimit:
    """Pure ASGI middleware: rejects a body over ``max_bytes`` by its Content-Length before
    reading it, and a chunked one as soon as it grows past the limit."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    def _error(self) -> PayloadTooLarge:
        return PayloadTooLarge(
            f"the request body is larger than {self.max_bytes} bytes "
            "(LOSS_SERVICE_MAX_BODY_BYTES); send fewer elements per request or base64 tensors"
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope["headers"]:
            if name == b"content-length":
                try:
                    too_large = int(value) > self.max_bytes
                except ValueError:
                    too_large = False
                if too_large:
                    await render(self._error(), scope.get("path"))(scope, receive, send)
                    return
                break
        received = 0

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise self._error()
            return message

        await self.app(scope, counting_receive, send)


def check_json_members(body: bytes, limit: int) -> None:
    """A 413 when ``body`` may hold more than ``limit`` JSON object members.

    Parsing holds the interpreter lock throughout, so a body of a million keys would stop
    every other request for seconds, whichever thread parses it. Every member needs a colon,
    and tensors (numbers, base64) have none, so the count of colons, taken at memory speed,
    is an upper bound of the members that legitimate bodies stay far below.
    """
    if len(body) <= limit:
        return
    colons = body.count(b":")
    if colons > limit:
        raise PayloadTooLarge(
            f"the body holds up to {colons} JSON object members (counted by their colons), "
            f"more than the {limit} a request may hold (LOSS_SERVICE_MAX_JSON_MEMBERS)"
        )
