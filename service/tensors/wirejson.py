"""JSON bytes in and out, with orjson: numpy arrays serialise natively, parsing is fast."""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import orjson

from service.errors import MalformedBody

_DUMPS_OPTIONS = orjson.OPT_SERIALIZE_NUMPY


def dumps(value: Any) -> bytes:
    return orjson.dumps(value, option=_DUMPS_OPTIONS)


def loads(body: bytes | memoryview) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise MalformedBody.at(("body",), f"not valid JSON: {exc}", "json_invalid") from exc


_gc_lock = threading.Lock()
_gc_pausers = 0


@contextmanager
def gc_paused() -> Iterator[None]:
    """Hold off the cyclic garbage collector while a large body becomes lists and tensors.

    Parsing a large nested array allocates hundreds of thousands of lists; each allocation
    burst triggers a collection that rescans every one of them. None of them form cycles.
    """
    global _gc_pausers
    with _gc_lock:
        _gc_pausers += 1
        if _gc_pausers == 1:
            gc.disable()
    try:
        yield
    finally:
        with _gc_lock:
            _gc_pausers -= 1
            if _gc_pausers == 0:
                gc.enable()
