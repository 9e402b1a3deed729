"""Per-app state the routes need, reached through ``request.app.state``."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request

from service.http.offload import Offloader
from service.settings import Settings

LARGE_BODY_BYTES = 1 << 20


@dataclass
class AppContext:
    settings: Settings
    offloader: Offloader


def context(request: Request) -> AppContext:
    ctx: AppContext = request.app.state.context
    return ctx
