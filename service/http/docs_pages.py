"""Swagger UI at ``/docs`` and ReDoc at ``/redoc``, from the service's own files (the
``fastapi-offline`` package ships their JavaScript and CSS), so they render with no network:
FastAPI's own pages load them from a public CDN and are blank offline. ``GET /`` leads to
``/docs``."""

from __future__ import annotations

from pathlib import Path

import fastapi_offline
from fastapi import FastAPI
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.staticfiles import StaticFiles

ASSETS = Path(fastapi_offline.__file__).parent / "static"
ASSETS_URL = "/docs-assets"
DOCS_URL, REDOC_URL, OPENAPI_URL = "/docs", "/redoc", "/openapi.json"
OAUTH2_REDIRECT_URL = "/docs/oauth2-redirect"
# No validator badge: it would send the document to a public validator.
SWAGGER_PARAMETERS = {"validatorUrl": None, "deepLinking": True, "displayRequestDuration": True}
# The pages may load nothing from another host (ReDoc's footer links a logo on a CDN: the
# browser blocks it without a request, and the footer is hidden); inline scripts and styles
# are the pages' own, blob: workers are ReDoc's search.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; font-src 'self' data:; connect-src 'self'; worker-src 'self' blob:; "
    "frame-ancestors 'self'"
)
_HIDE_REDOC_ATTRIBUTION = b'a[href^="https://redocly.com"] { display: none; }\n    </style>'


def _own_files_only(page: HTMLResponse) -> HTMLResponse:
    page.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    return page


def _prefix(request: Request) -> str:
    return str(request.scope.get("root_path", "")).rstrip("/")


def install_docs(app: FastAPI) -> None:
    """Serve the pages; the app must be created with ``docs_url=None, redoc_url=None``."""
    app.mount(ASSETS_URL, StaticFiles(directory=ASSETS), name="docs-assets")

    @app.get(DOCS_URL, include_in_schema=False)
    def swagger_ui(request: Request) -> HTMLResponse:
        root = _prefix(request)
        page = get_swagger_ui_html(
            openapi_url=root + OPENAPI_URL,
            title=f"{app.title} - Swagger UI",
            swagger_js_url=f"{root}{ASSETS_URL}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{ASSETS_URL}/swagger-ui.css",
            swagger_favicon_url=f"{root}{ASSETS_URL}/favicon.png",
            oauth2_redirect_url=root + OAUTH2_REDIRECT_URL,
            swagger_ui_parameters=SWAGGER_PARAMETERS,
        )
        return _own_files_only(page)

    @app.get(OAUTH2_REDIRECT_URL, include_in_schema=False)
    def swagger_ui_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    @app.get(REDOC_URL, include_in_schema=False)
    def redoc(request: Request) -> HTMLResponse:
        root = _prefix(request)
        page = get_redoc_html(
            openapi_url=root + OPENAPI_URL,
            title=f"{app.title} - ReDoc",
            redoc_js_url=f"{root}{ASSETS_URL}/redoc.standalone.js",
            redoc_favicon_url=f"{root}{ASSETS_URL}/favicon.png",
            with_google_fonts=False,
        )
        body = bytes(page.body).replace(b"</style>", _HIDE_REDOC_ATTRIBUTION, 1)
        return _own_files_only(HTMLResponse(body))
