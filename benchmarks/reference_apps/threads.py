"""Torch threads of a reference server: the same share of the cores the service takes."""

from __future__ import annotations

import os

import torch


def pin_torch_threads() -> None:
    workers = int(os.environ.get("BENCH_WORKERS", "1"))
    torch.set_num_threads(max(1, (os.cpu_count() or 1) // workers))
