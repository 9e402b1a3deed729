"""Server-Sent Events for one job: replay the stored log after ``Last-Event-ID``, then follow
it live until the job's ``done`` event.

Events: ``status`` (``{"status": ..., "error": ...}`` on every change), ``progress`` (phase,
epoch, step, total steps, fraction, samples/s, ETA, latest loss), ``epoch`` (the epoch's
metrics), and last ``done`` (the whole final job record). Each has an ``id``: the event's
position in the job's log, so a client reconnects with ``Last-Event-ID`` and misses nothing.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from service.jobs.manager import TERMINAL, JobManager

KEEPALIVE_S = 15.0


def format_event(event_id: int, event: str, data: str) -> bytes:
    return f"id: {event_id}\nevent: {event}\ndata: {data}\n\n".encode()


MAX_EVENT_ID = 2**63 - 1  # SQLite's largest integer


async def job_events(
    manager: JobManager, job_id: str, last_event_id: int = 0, keepalive_s: float = KEEPALIVE_S
) -> AsyncIterator[bytes]:
    """The stream; the caller has checked that the job exists and that ``last_event_id`` is in
    0..``MAX_EVENT_ID`` (both before the response starts)."""
    waiter = manager.subscribe(job_id)
    try:
        yield b"retry: 1000\n\n"
        last = last_event_id
        while True:
            waiter.clear()
            rows = manager.store.events_after(job_id, last)
            for event_id, event, data in rows:
                yield format_event(event_id, event, data)
                last = event_id
                if event == "done":
                    return
            head = manager.store.head(job_id)
            if head is None:
                return  # deleted meanwhile
            if not rows and head[0] in TERMINAL:
                if manager.store.events_after(job_id, last):
                    continue  # written between the two reads
                return  # the client has already seen ``done``
            if manager.stopping:
                return
            try:
                await asyncio.wait_for(waiter.wait(), keepalive_s)
            except TimeoutError:
                yield b": keep-alive\n\n"
    finally:
        manager.unsubscribe(job_id, waiter)
