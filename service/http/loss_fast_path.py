"""``POST /v1/losses/{name}`` straight from the middleware stack, past FastAPI's router.

A loss request is the service's hottest path, and for small tensors FastAPI's own work
dominates it: the router tries the routes one by one and solves the dependencies of each
candidate. Here the loss is found by one dictionary lookup and handed to the very handler the
FastAPI route uses (``compute_loss``), so behaviour and the OpenAPI document are the same.
The middlewares outside this one (request ids, metrics, body limit, API keys) still apply.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Receive, Scope, Send

from service.errors import ServiceError
from service.http.problems import render
from service.http.routes.losses import compute_loss, loss_routes
from service.losses.registry import catalogue, resolve

PREFIX = "/v1/losses/"


class LossFastPath:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        routes = {r.path: r for r in loss_routes() if "POST" in (r.methods or ())}
        # The route each name is served by, for the metrics' route label: a loss's own
        # endpoint, or the by-name endpoint for aliases.
        self.by_name: dict[str, BaseRoute] = {
            name: routes[f"{PREFIX}{name}"] for name in catalogue()
        }
        self.by_alias = routes[PREFIX + "{name}"]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if (
            scope["type"] != "http"
            or scope["method"] != "POST"
            or not path.startswith(PREFIX)
            or "/" in path[len(PREFIX) :]
            or len(path) == len(PREFIX)
        ):
            await self.app(scope, receive, send)
            return
        name = path[len(PREFIX) :]
        scope["route"] = self.by_name.get(name, self.by_alias)
        request = Request(scope, receive)
        try:
            response = await compute_loss(request, resolve(name))
        except ServiceError as error:
            response = render(error, path)
        await response(scope, receive, send)
