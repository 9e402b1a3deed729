"""The straightforward implementation: what a first FastAPI + PyTorch version looks like.

Pydantic ``list[float]``-style fields, ``torch.tensor(list)``, ``.tolist()`` and a
``response_model``; a plain ``def`` endpoint, as FastAPI advises for blocking work.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from fastapi import FastAPI
from pydantic import BaseModel

from benchmarks.reference_apps.threads import pin_torch_threads

pin_torch_threads()

Tensor = float | list[float] | list[list[float]]


class LossRequest(BaseModel):
    input: Tensor
    target: list[int] | Tensor
    grad: bool = False
    params: dict[str, Any] = {}


class LossResponse(BaseModel):
    loss: float
    grad: dict[str, Tensor]
    dtype: str
    device: str


app = FastAPI()


@app.get("/healthz")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@app.post("/v1/losses/{name}", response_model=LossResponse)
def compute(name: str, request: LossRequest) -> LossResponse:
    loss_fn = getattr(F, name)
    inputs = torch.tensor(request.input, dtype=torch.float32, requires_grad=request.grad)
    target = torch.tensor(request.target)
    if target.is_floating_point():
        target = target.to(torch.float32).requires_grad_(request.grad)
    loss = loss_fn(inputs, target, **request.params)
    grads: dict[str, Tensor] = {}
    if request.grad:
        loss.backward()
        for name, tensor in (("input", inputs), ("target", target)):
            if tensor.grad is not None:
                grads[name] = tensor.grad.tolist()
    return LossResponse(loss=loss.item(), grad=grads, dtype="float32", device="cpu")
