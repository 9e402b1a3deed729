"""The ``Allow`` header of a 405: every method some route takes on the path, not only those of
the first route that matched it (Starlette's answer names one route's methods)."""

from __future__ import annotations

from collections.abc import Sequence

from starlette.routing import BaseRoute, Match
from starlette.types import Scope

METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def allowed_methods(routes: Sequence[BaseRoute], scope: Scope) -> list[str]:
    """The methods for which a route fully matches the request's path (asked of the routes
    themselves, so that included routers answer for their own routes)."""
    allowed = []
    for method in METHODS:
        probe = {**scope, "method": method}
        if any(route.matches(probe)[0] == Match.FULL for route in routes):
            allowed.append(method)
    return allowed
