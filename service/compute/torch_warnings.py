"""Torch's warnings about a computation's inputs, collected for its answer.

``warnings.catch_warnings`` swaps process-wide state (not thread-safe, and costly per call).
Instead one hook is installed once: ``warnings.showwarning`` hands each warning to the
collector of the computation running in this context (a ``ContextVar``, so threads and tasks
each see their own), and torch's ``UserWarning``s are shown every time ("always"), not once per
call site, so that every request that earns one gets it. Outside a computation they are
dropped: they concern a client's inputs, not the service (nothing fills the log).
"""

from __future__ import annotations

import warnings
from contextvars import ContextVar
from pathlib import Path
from typing import Any, TextIO

import torch

import service

_collector: ContextVar[list[str] | None] = ContextVar("torch_warnings", default=None)
_previous_show: Any = None
# Warnings raised in these trees (torch's, and the service's calls into it) are the inputs'.
_OURS = (str(Path(torch.__file__).parent), str(Path(service.__file__).parent))


def _show(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: TextIO | None = None,
    line: str | None = None,
) -> None:
    sink = _collector.get()
    if sink is not None:
        text = str(message)
        if text not in sink:
            sink.append(text)
        return
    if issubclass(category, UserWarning) and filename.startswith(_OURS):
        return
    _previous_show(message, category, filename, lineno, file, line)


def install() -> None:
    """Route warnings to collectors; done again if something (a test harness's
    ``catch_warnings``) restored the previous hook and filters meanwhile."""
    global _previous_show
    warnings.filterwarnings("always", category=UserWarning, module=r"(torch|service)(\.|$)")
    if warnings.showwarning is not _show:
        _previous_show = warnings.showwarning
        warnings.showwarning = _show


def start() -> tuple[list[str], Any]:
    """Begin collecting for the computation in this context: its list, and a token for
    ``stop``."""
    if warnings.showwarning is not _show:
        install()
    sink: list[str] = []
    return sink, _collector.set(sink)


def stop(token: Any) -> None:
    _collector.reset(token)
