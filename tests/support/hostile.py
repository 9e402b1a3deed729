"""Hostile request bodies and a live server to send them to (tests and benchmarks/hostile_load).

Each body reproduces one measured attack: a broadcast bomb (2N elements on the wire, N^2 for
torch), CTC's quadratic lattice, a million unknown keys.
"""

from __future__ import annotations

import base64
from pathlib import Path

import numpy as np
import orjson

ROOT = Path(__file__).resolve().parents[2]


def b64(array: np.ndarray) -> dict[str, object]:
    dtype = {"float32": "float32", "int64": "int64", "int32": "int32"}[str(array.dtype)]
    return {
        "shape": list(array.shape),
        "dtype": dtype,
        "base64": base64.b64encode(array.astype(array.dtype.newbyteorder("<")).tobytes()).decode(),
    }


def broadcast_bomb(n: int) -> bytes:
    """mse_loss of input [n, 1] and target [1, n]: torch would make n x n elements."""
    rng = np.random.default_rng(0)
    body = {
        "input": b64(rng.standard_normal((n, 1), dtype=np.float32)),
        "target": b64(rng.standard_normal((1, n), dtype=np.float32)),
    }
    return orjson.dumps(body)


def ctc_body(steps: int = 8000, target_length: int = 4000, classes: int = 5) -> bytes:
    """ctc_loss of one sequence of ``steps`` frames and a target of ``target_length`` labels:
    a lattice of steps x (2 target_length + 1) cells."""
    rng = np.random.default_rng(0)
    logits = rng.standard_normal((steps, 1, classes), dtype=np.float32)
    log_probs = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    targets = rng.integers(1, classes, size=(1, target_length)).astype(np.int32)
    body = {
        "log_probs": b64(log_probs.astype(np.float32)),
        "targets": b64(targets),
        "input_lengths": [steps],
        "target_lengths": [target_length],
    }
    return orjson.dumps(body)


def unknown_keys(count: int = 1_000_000, base: dict[str, object] | None = None) -> bytes:
    """A body of ``count`` keys that no endpoint knows (beside the fields of ``base``)."""
    document: dict[str, object] = dict(base or {})
    document.update({f"k{i}": 1 for i in range(count)})
    return orjson.dumps(document)


def rss_bytes(pid: int) -> int:
    """Resident memory of a process and its children (compute workers are threads)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0
