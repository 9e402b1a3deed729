"""Who follows which job (open event streams), and waking them from any thread."""

from __future__ import annotations

import asyncio
import contextlib
import threading


class Subscribers:
    def __init__(self) -> None:
        self.loop: asyncio.AbstractEventLoop | None = None  # set when the manager starts
        self._lock = threading.Lock()
        self._events: dict[str, set[asyncio.Event]] = {}

    def subscribe(self, job_id: str) -> asyncio.Event:
        event = asyncio.Event()
        with self._lock:
            self._events.setdefault(job_id, set()).add(event)
        return event

    def unsubscribe(self, job_id: str, event: asyncio.Event) -> None:
        with self._lock:
            waiting = self._events.get(job_id)
            if waiting is not None:
                waiting.discard(event)
                if not waiting:
                    del self._events[job_id]

    def notify(self, job_id: str) -> None:
        with self._lock:
            events = list(self._events.get(job_id, ()))
        self._set_all(events)

    def wake_all(self) -> None:
        with self._lock:
            events = [e for group in self._events.values() for e in group]
        self._set_all(events)

    def _set_all(self, events: list[asyncio.Event]) -> None:
        loop = self.loop
        if not events or loop is None or loop.is_closed():
            return
        for event in events:
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(event.set)
