"""Errors the service raises anywhere below HTTP; the HTTP layer renders them as RFC 9457 problems.

Lower layers (tensor encoding, the loss catalogue, computation, jobs) raise these and never
import anything from HTTP, so data and dependencies flow one way.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Self

Loc = tuple[str | int, ...]

PROBLEM_TYPE_BASE = "https://loss-service.dev/problems/"


@dataclass(frozen=True)
class FieldError:
    """One thing wrong with one field: where (``loc``, as in pydantic) and what (``msg``)."""

    loc: Loc
    msg: str
    type: str = "value_error"

    def as_dict(self) -> dict[str, object]:
        return {"loc": list(self.loc), "msg": self.msg, "type": self.type}


class ServiceError(Exception):
    """An error with an HTTP status, a short title and a detail sentence for the client."""

    status = 500
    title = "Internal error"
    slug = "internal"

    def __init__(
        self,
        detail: str,
        errors: Sequence[FieldError] = (),
        *,
        headers: dict[str, str] | None = None,
        extra: dict[str, object] | None = None,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = tuple(errors)
        self.headers = headers or {}
        self.extra = extra or {}

    @property
    def type_uri(self) -> str:
        return PROBLEM_TYPE_BASE + self.slug

    @classmethod
    def at(cls, loc: Loc, msg: str, type_: str = "value_error") -> Self:
        """The error for one field: ``detail`` reads "where: what"."""
        where = ".".join(str(part) for part in loc)
        return cls(f"{where}: {msg}" if where else msg, (FieldError(loc, msg, type_),))


class InvalidInput(ServiceError):
    """The request is well-formed JSON but something in it cannot be computed with."""

    status, title, slug = 422, "Invalid input", "invalid-input"


class MalformedBody(ServiceError):
    """The body is not JSON, or not a JSON object."""

    status, title, slug = 422, "Malformed request body", "malformed-body"


class NotFound(ServiceError):
    """No such resource (loss, job, ...)."""

    status, title, slug = 404, "Not found", "not-found"


class Conflict(ServiceError):
    """The resource is not in a state that allows this operation."""

    status, title, slug = 409, "Conflict", "conflict"


class PayloadTooLarge(ServiceError):
    """The body or its tensors exceed a configured limit."""

    status, title, slug = 413, "Payload too large", "payload-too-large"


class TooManyRequests(ServiceError):
    """A queue or concurrency limit is full; try again later."""

    status, title, slug = 429, "Too many requests", "too-many-requests"


class Unauthorized(ServiceError):
    """A valid API key is required."""

    status, title, slug = 401, "Unauthorized", "unauthorized"


class ComputeTimeout(ServiceError):
    """The computation took longer than the configured limit."""

    status, title, slug = 503, "Compute time limit exceeded", "compute-timeout"


class DeviceUnavailable(ServiceError):
    """The requested device does not exist on this host."""

    status, title, slug = 422, "Device unavailable", "device-unavailable"


class ServiceBusy(ServiceError):
    """Every compute worker is busy and the queue in front of them is full."""

    status, title, slug = 503, "Service busy", "busy"
