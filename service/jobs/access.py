"""Who may see a job: with API keys configured, jobs belong to the key that created them.

The owner is stored as a hash of the key (never the key itself). A key sees, cancels, deletes,
downloads and predicts with its own jobs only; any other job answers 404, as if it did not
exist. Keys listed in ``LOSS_SERVICE_ADMIN_KEYS`` see every job. Without API keys there is no
owner: everyone sees every job (jobs created then have no owner, and only admin keys see them
once keys are configured).
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

from starlette.requests import Request

from service.errors import TooManyRequests
from service.jobs.stores import JobStore
from service.settings import Settings

_DOMAIN = b"loss-service job owner\0"


def owner_of_key(key: str) -> str:
    """The stored owner of jobs created with ``key``: a SHA-256 of it, hex."""
    return hashlib.sha256(_DOMAIN + key.encode()).hexdigest()


@dataclass(frozen=True)
class Caller:
    owner: str | None  # hash of the caller's key; None without API keys
    admin: bool

    def sees(self, owner: str | None) -> bool:
        return self.admin or owner == self.owner

    @property
    def scope(self) -> str | None:
        """The owner a listing is limited to (None: every job)."""
        return None if self.admin else self.owner


EVERYONE = Caller(owner=None, admin=True)


def bearer_key(request: Request) -> str:
    scheme, _, key = request.headers.get("authorization", "").partition(" ")
    return key.strip() if scheme.lower() == "bearer" else ""


def caller_of(request: Request, settings: Settings) -> Caller:
    """The caller of ``request`` (its key was already checked by the API-key gate)."""
    if not settings.api_keys:
        return EVERYONE
    key = bearer_key(request)
    given = key.encode()
    admin = any([hmac.compare_digest(given, k.encode()) for k in settings.admin_keys])
    return Caller(owner=owner_of_key(key), admin=admin)


def check_quota(store: JobStore, caller: Caller, settings: Settings) -> None:
    """429 when ``caller``'s key already has ``LOSS_SERVICE_MAX_JOBS_PER_KEY`` jobs queued or
    running (no limit without keys)."""
    limit = settings.max_jobs_per_key
    if caller.owner is None or not limit:
        return
    active = store.count("queued", caller.owner) + store.count("running", caller.owner)
    if active >= limit:
        raise TooManyRequests(
            f"this API key already has {active} jobs queued or running "
            f"(LOSS_SERVICE_MAX_JOBS_PER_KEY={limit}); try again when one has finished, "
            "or cancel one",
            headers={"Retry-After": "30"},
        )
