"""Where request work runs: cheap work on the event loop, the rest in bounded, timed workers.

Small requests are fastest on the event loop itself: a thread hop costs more than the work.
So a small body is first computed there with the cost estimate's inline limit in force
(``service.compute.cost.INLINE_WORK``); work past it raises ``NeedsOffload`` before torch
runs, and the request is run again in a compute worker. Large bodies go to a worker directly.

Compute workers are a fixed pool of threads (``max_concurrent_computations``). A request
waits for one at most ``compute_timeout_s`` in all: past that it is answered 503, a queued
one is dropped, and a running one keeps its worker until torch returns, so the pool counts
work actually running. How long that can be is bounded by the work budget
(``max_compute_elements``), which no request passes. At most ``max_queued_computations``
requests wait; more are answered 503 with ``Retry-After`` at once.
"""

from __future__ import annotations

import asyncio
import contextvars
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from service.compute.cost import INLINE_WORK, NeedsOffload
from service.errors import ComputeTimeout, ServiceBusy
from service.settings import Settings

T = TypeVar("T")


class Offloader:
    def __init__(self, settings: Settings) -> None:
        self.inline_bytes = settings.inline_body_bytes
        self.inline_work = settings.inline_compute_elements
        self.timeout_s = settings.compute_timeout_s
        self.capacity = settings.max_concurrent_computations
        self.max_waiting = settings.max_queued_computations
        self._executor: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()
        self.running = 0  # work started in a worker and not yet returned (timed out or not)
        self.waiting = 0  # work submitted and not yet started

    async def run(self, work: Callable[[], T], size: int) -> T:
        if size < self.inline_bytes:
            token = INLINE_WORK.set(self.inline_work)
            try:
                return work()
            except NeedsOffload:
                pass
            finally:
                INLINE_WORK.reset(token)
        return await self._in_worker(work)

    async def _in_worker(self, work: Callable[[], T]) -> T:
        if self.waiting >= self.max_waiting and self.running >= self.capacity:
            raise ServiceBusy(
                f"all {self.capacity} compute workers are busy and "
                f"{self.waiting} requests wait for them (LOSS_SERVICE_MAX_QUEUED_COMPUTATIONS); "
                "try again shortly",
                headers={"Retry-After": "1"},
            )
        context = contextvars.copy_context()  # INLINE_WORK unset: no inline limit in a worker
        with self._lock:
            self.waiting += 1

        def tracked() -> T:
            with self._lock:
                self.waiting -= 1
                self.running += 1
            try:
                return context.run(work)
            finally:
                with self._lock:
                    self.running -= 1

        if self._executor is None:
            self._executor = ThreadPoolExecutor(self.capacity, thread_name_prefix="compute")
        future = self._executor.submit(tracked)
        try:
            return await asyncio.wait_for(asyncio.wrap_future(future), self.timeout_s)
        except TimeoutError:
            raise ComputeTimeout(
                f"the computation took longer than {self.timeout_s:g} s "
                "(LOSS_SERVICE_COMPUTE_TIMEOUT_S); send smaller tensors"
            ) from None
        finally:
            # Dropped before it started (timed out, or the client went away): it never will.
            if future.cancel():
                with self._lock:
                    self.waiting -= 1

    def close(self) -> None:
        """Drop queued work and let running work finish in the background."""
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None
