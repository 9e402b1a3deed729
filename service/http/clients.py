"""Who a request comes from, for per-client limits: its API key when keys are configured and
the request carries a valid one, else its address (as uvicorn sees it: behind a trusted proxy,
the address the proxy forwards)."""

from __future__ import annotations

import hashlib
import hmac

from starlette.types import Scope


class ClientKeys:
    def __init__(self, api_keys: list[str]) -> None:
        self.keys = [key.encode() for key in api_keys]

    def of(self, scope: Scope) -> str:
        if self.keys:
            header = next((v for k, v in scope["headers"] if k == b"authorization"), b"")
            scheme, _, given = header.partition(b" ")
            given = given.strip()
            # Constant time against every key, as the key check does.
            valid = any([hmac.compare_digest(given, key) for key in self.keys])
            if scheme.lower() == b"bearer" and given and valid:
                return "key:" + hashlib.sha256(given).hexdigest()[:16]
        client = scope.get("client")
        return "addr:" + (client[0] if client else "")
