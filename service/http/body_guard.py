"""Unknown keys of a JSON body answered before FastAPI validates it, for routes that declare
their body as one pydantic model which forbids extra fields (the jobs routes).

Pydantic reports each unknown key as one error, and FastAPI turns every one of them into a
Python dict before an error handler sees the first: a body of a million unknown keys took a
minute of the event loop. Here the body is parsed with orjson (in a worker thread when it is
large) and its first unknown keys are answered 422, counted and capped like every problem
(``reject_unknown_keys``); a body of more members than ``max_json_members`` is a 413
before it is parsed. Any other body is passed on unchanged.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import anyio.to_thread
from fastapi.routing import APIRoute
from pydantic import BaseModel
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.errors import ServiceError
from service.http.limits import check_json_members
from service.http.problems import reject_unknown_keys, render
from service.tensors.wirejson import loads

INLINE_PARSE_BYTES = 64 * 1024


@dataclass(frozen=True)
class _Guarded:
    route: APIRoute
    known: frozenset[str]


def _guarded(routes: Iterable[BaseRoute]) -> list[_Guarded]:
    found = []
    for route in routes:
        if not isinstance(route, APIRoute) or route.body_field is None:
            continue
        info = route.body_field.field_info
        model = info.annotation
        if getattr(info, "embed", False) or not (
            isinstance(model, type) and issubclass(model, BaseModel)
        ):
            continue
        if model.model_config.get("extra") != "forbid":
            continue
        names = set(model.model_fields)
        names |= {f.alias for f in model.model_fields.values() if f.alias}
        found.append(_Guarded(route, frozenset(names)))
    return found


class BodyKeyGuard:
    def __init__(self, app: ASGIApp, routes: Iterable[BaseRoute], max_members: int) -> None:
        self.app = app
        self.guarded = _guarded(routes)
        self.max_members = max_members

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in ("POST", "PUT", "PATCH"):
            await self.app(scope, receive, send)
            return
        target = next((g for g in self.guarded if g.route.matches(scope)[0] is Match.FULL), None)
        if target is None:
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        while True:
            message = await receive()
            if message["type"] != "http.request":
                await self.app(scope, _replay([], message, receive), send)
                return
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        try:
            check_json_members(body, self.max_members)
            await self._check(body, target)
        except ServiceError as error:
            await render(error, scope.get("path"))(scope, receive, send)
            return
        await self.app(scope, _replay([body], None, receive), send)

    @staticmethod
    async def _check(body: bytes, target: _Guarded) -> None:
        def check() -> None:
            try:
                document: Any = loads(body)
            except ValueError:
                return  # not JSON: FastAPI answers that
            if isinstance(document, dict):
                reject_unknown_keys(document, target.known, ("body",))

        if len(body) < INLINE_PARSE_BYTES:
            check()
        else:
            await anyio.to_thread.run_sync(check)


def _replay(bodies: list[bytes], pending: Message | None, receive: Receive) -> Receive:
    """A receive that gives the body already read, then what the client sends next."""
    queue: list[Message] = [{"type": "http.request", "body": b, "more_body": False} for b in bodies]
    if pending is not None:
        queue.append(pending)

    async def replayed() -> Message:
        if queue:
            return queue.pop(0)
        return await receive()

    return replayed
