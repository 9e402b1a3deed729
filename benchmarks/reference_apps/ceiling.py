"""The framework ceiling: a bare FastAPI endpoint that reads the body and answers a constant."""

from __future__ import annotations

from fastapi import FastAPI, Request
from starlette.responses import Response

app = FastAPI()
ANSWER = b'{"loss":0.0}'


@app.get("/healthz")
async def healthz() -> Response:
    return Response(b"{}", media_type="application/json")


@app.post("/v1/losses/{name}")
async def compute(request: Request, name: str) -> Response:
    await request.body()
    return Response(ANSWER, media_type="application/json")


@app.post("/v2/models/{name}/infer")
async def echo(request: Request, name: str) -> Response:
    """HTTP alone for bench_oip.py: the body read, and as many bytes sent back."""
    return Response(await request.body(), media_type="application/octet-stream")
