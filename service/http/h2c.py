"""uvicorn's fast httptools protocol, minus a known bug with ``Upgrade: h2c``; the guarded
protocol the server runs (``service.http.connections``) builds on it.

Java's built-in HTTP client (and so every client generated for it, and curl with ``--http2``)
asks to upgrade plain-HTTP requests to HTTP/2 with ``Upgrade: h2c``. httptools then tells
llhttp to skip the body of any request that asks to upgrade, and uvicorn, which does not
upgrade to h2c, answers the request as if its body were empty: a JSON body becomes a 422.
The h11 parser does not have the bug, but parses every request in Python, which costs speed.

``H2cTolerantHttpToolsProtocol`` keeps httptools and, before the parser sees a request's
head, renames an ``Upgrade`` header that asks only for h2c to ``X-Ignored-Upgrade``, which is
what RFC 9113 allows a server that does not upgrade to do: ignore the request to. The
WebSocket upgrade is left alone. A head split over several reads is held (up to
``MAX_HEAD_BYTES``) until it is whole; a request pipelined behind another in the same read
is passed on as it is.
"""

from __future__ import annotations

import re
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

MAX_HEAD_BYTES = 64 * 1024
_H2C_UPGRADE = re.compile(rb"\r\nupgrade:[ \t]*h2c[ \t]*(?=\r\n)", re.IGNORECASE)
_RENAMED = b"\r\nx-ignored-upgrade: h2c"


class H2cTolerantHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol that ignores ``Upgrade: h2c`` instead of losing the body."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._at_message_start = True
        self._held = b""

    def data_received(self, data: bytes) -> None:
        if self._at_message_start:
            data = self._held + data
            end = data.find(b"\r\n\r\n")
            if end < 0 and len(data) < MAX_HEAD_BYTES:
                self._held = data  # the head is not whole yet
                return
            self._held = b""
            self._at_message_start = False
            head = data[: end + 2]
            # The substring test keeps the common request at well under a microsecond.
            if end >= 0 and (b"pgrade" in head or b"PGRADE" in head):
                head, renamed = _H2C_UPGRADE.subn(_RENAMED, head, count=1)
                if renamed:
                    data = head + data[end + 2 :]
        super().data_received(data)

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._at_message_start = True

    def connection_lost(self, exc: Exception | None) -> None:
        self._held = b""
        super().connection_lost(exc)
