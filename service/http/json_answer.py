"""The shape every JSON-computing route shares: read the body, parse it, answer, print."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import nullcontext
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from service.http.context import LARGE_BODY_BYTES, context
from service.http.limits import check_json_members
from service.settings import Settings
from service.tensors.wirejson import dumps, gc_paused, loads

Answer = Callable[[Any, Settings], Any]


async def answer_json(request: Request, answer: Answer) -> Response:
    """``answer(parsed body, settings)`` as a JSON response; computed on the event loop when
    the body is small, in a bounded, timed worker thread when it is large."""
    ctx = context(request)
    body = await request.body()
    check_json_members(body, ctx.settings.max_json_members)

    def work() -> bytes:
        with gc_paused() if len(body) > LARGE_BODY_BYTES else nullcontext():
            return dumps(answer(loads(body), ctx.settings))

    return Response(await ctx.offloader.run(work, len(body)), media_type="application/json")
