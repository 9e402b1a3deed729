"""Optional API keys: with ``LOSS_SERVICE_API_KEYS`` set, every /v1 and /v2 path but
``/v1/info`` and the protocol's server metadata and health requires
``Authorization: Bearer <key>``; operations endpoints and the docs stay open."""

from __future__ import annotations

import hmac
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

from service.errors import Unauthorized
from service.http.problems import render
from service.http.schemas import Problem

OPEN_PATHS = frozenset({"/v1/info", "/v2", "/v2/health/live", "/v2/health/ready"})
SECURITY_SCHEME = "HTTPBearer"
SECURITY_SCHEMES = {
    SECURITY_SCHEME: {
        "type": "http",
        "scheme": "bearer",
        "description": "The service is configured with API keys (LOSS_SERVICE_API_KEYS): "
        "send one as 'Authorization: Bearer <key>'.",
    }
}

# Declared on every protected router, for the OpenAPI document.
UNAUTHORIZED: dict[int | str, dict[str, Any]] = {
    401: {"model": Problem, "description": "A valid API key is required."}
}


class ApiKeyGate:
    """Pure ASGI middleware that checks the key before anything else runs.

    Installed only when keys are configured, so a service without keys pays nothing.
    """

    def __init__(self, app: ASGIApp, keys: list[str]) -> None:
        self.app = app
        self.keys = [key.encode() for key in keys]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] == "http" and path.startswith(("/v1/", "/v2")) and path not in OPEN_PATHS:
            error = self._check(scope)
            if error is not None:
                await render(error, path)(scope, receive, send)
                return
        await self.app(scope, receive, send)

    def _check(self, scope: Scope) -> Unauthorized | None:
        header = next((v for k, v in scope["headers"] if k == b"authorization"), b"")
        scheme, _, given = header.partition(b" ")
        given = given.strip()
        if scheme.lower() != b"bearer" or not given:
            return _unauthorized("send the API key as 'Authorization: Bearer <key>'")
        # Compare with every key, in constant time, so timing does not tell how much matched.
        if not any([hmac.compare_digest(given, key) for key in self.keys]):
            return _unauthorized("the API key is not valid")
        return None


def _unauthorized(detail: str) -> Unauthorized:
    return Unauthorized(detail, headers={"WWW-Authenticate": "Bearer"})


def declare_security(document: dict[str, Any], keys_configured: bool) -> None:
    """The Bearer scheme on every operation a key can guard (those that document a 401):
    required with keys; optional without them (``[{}, bearer]``: no key needed, and clients
    generated from the document can still send one), and then no 401 (none is answered)."""
    for operations in document.get("paths", {}).values():
        for operation in operations.values():
            responses = operation.get("responses", {})
            if "401" not in responses:
                continue
            if keys_configured:
                operation["security"] = [{SECURITY_SCHEME: []}]
            else:
                responses.pop("401")
                operation["security"] = [{}, {SECURITY_SCHEME: []}]
    document.setdefault("components", {})["securitySchemes"] = SECURITY_SCHEMES
