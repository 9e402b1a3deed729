"""The web page: a small app served from the package's own files (no network needed).

``GET /`` answers ``index.html``; its scripts and styles are under ``/ui/``. The page calls the
same public API as any client (with the API key typed into it, when the server asks for one).
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

STATIC = Path(__file__).parent / "static"


def install_web(app: FastAPI) -> None:
    app.mount("/ui", StaticFiles(directory=STATIC), name="ui")

    @app.get("/", include_in_schema=False)
    async def index() -> FileResponse:
        return FileResponse(STATIC / "index.html", media_type="text/html")
