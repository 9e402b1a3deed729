"""Run request work inline when it is small, in a worker thread (bounded, timed) when large.

Small requests are fastest on the event loop itself: a thread hop costs more than the work.
Large ones go to a thread so the loop keeps accepting and answering other requests while torch
computes, and so a time limit can answer 503 instead of holding the client forever.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import anyio
import anyio.to_thread

from service.errors import ComputeTimeout
from service.settings import Settings

T = TypeVar("T")


class Offloader:
    def __init__(self, settings: Settings) -> None:
        self.inline_bytes = settings.inline_body_bytes
        self.timeout_s = settings.compute_timeout_s
        self._limiter: anyio.CapacityLimiter | None = None
        self._capacity = settings.max_concurrent_computations

    @property
    def limiter(self) -> anyio.CapacityLimiter:
        # Created lazily: a CapacityLimiter belongs to the running event loop.
        if self._limiter is None:
            self._limiter = anyio.CapacityLimiter(self._capacity)
        return self._limiter

    async def run(self, work: Callable[[], T], size: int) -> T:
        if size < self.inline_bytes:
            return work()
        try:
            with anyio.fail_after(self.timeout_s):
                return await anyio.to_thread.run_sync(
                    work, limiter=self.limiter, abandon_on_cancel=True
                )
        except TimeoutError:
            raise ComputeTimeout(
                f"the computation took longer than {self.timeout_s:g} s "
                "(LOSS_SERVICE_COMPUTE_TIMEOUT_S); send smaller tensors"
            ) from None
