"""The ``Allow`` header of a 405: every method of every route on the path, not only those of
the first route that matched it (Starlette's answer names one route's methods)."""

from __future__ import annotations

from collections.abc import Iterable

from starlette.routing import BaseRoute, Match
from starlette.types import Scope

ORDER = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def allowed_methods(routes: Iterable[BaseRoute], scope: Scope) -> list[str]:
    methods: set[str] = set()
    for route in routes:
        match, _ = route.matches(scope)
        if match in (Match.FULL, Match.PARTIAL):
            methods.update(getattr(route, "methods", None) or ())
    return sorted(methods, key=lambda m: (ORDER.index(m) if m in ORDER else len(ORDER), m))
