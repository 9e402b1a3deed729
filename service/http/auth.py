"""Optional API keys: with ``LOSS_SERVICE_API_KEYS`` set, /v1 routers require a Bearer key."""

from __future__ import annotations

import hmac
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from service.errors import Unauthorized
from service.http.context import context
from service.http.schemas import Problem

bearer = HTTPBearer(
    auto_error=False,
    description="Required when the service is configured with API keys (LOSS_SERVICE_API_KEYS).",
)

UNAUTHORIZED: dict[int | str, dict[str, Any]] = {
    401: {
        "model": Problem,
        "description": "A valid API key is required.",
        "content": {"application/problem+json": {}},
    }
}


async def require_api_key(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
) -> None:
    keys = context(request).settings.api_keys
    if not keys:
        return
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise _unauthorized("send the API key as 'Authorization: Bearer <key>'")
    given = credentials.credentials.encode()
    # Compare with every key, in constant time, so timing does not tell how much matched.
    if not any([hmac.compare_digest(given, key.encode()) for key in keys]):
        raise _unauthorized("the API key is not valid")


def _unauthorized(detail: str) -> Unauthorized:
    return Unauthorized(detail, headers={"WWW-Authenticate": "Bearer"})


API_KEY = [Depends(require_api_key)]
