"""The live view of one run: server-sent events carrying what changed.

:func:`live_events` is the one place that learns of new journal events. Today it reads
``Client.events(run_id, after=seq)`` every ``interval`` seconds; once the client pushes events
(``client.watch``), swap its loop for that and nothing else changes.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable

from durable import Client, LogEvent, RunInfo

__all__ = ["MAX_STREAM_SECONDS", "live_events", "sse_stream"]

MAX_STREAM_SECONDS = 300.0
"""A stream ends after this long; the browser's EventSource then reconnects by itself."""


async def live_events(
    client: Client, run_id: str, after: int, interval: float
) -> AsyncIterator[tuple[RunInfo, list[LogEvent]]]:
    """Yield ``(run info, events after the last seen seq)`` whenever the journal grows,
    until the run has ended; the first item comes at once (possibly with no events).

    The single source of live updates: replace the polling below by ``client.watch`` when
    the client provides it.
    """
    first = True
    while True:
        # The info first: if it says "ended", the events read after it include the end.
        info = await asyncio.to_thread(lambda: client.get(run_id).info())
        events = await asyncio.to_thread(client.events, run_id, after)
        if events or first or info.status.is_terminal:
            if events:
                after = events[-1].seq
            yield info, events
            first = False
            if info.status.is_terminal:
                return
        await asyncio.sleep(interval)


def _frame(event: str, data: object) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data)}\n\n".encode()


async def sse_stream(
    updates: AsyncIterator[tuple[RunInfo, list[LogEvent]]],
    render: Callable[[RunInfo, list[LogEvent]], Awaitable[dict[str, object]]],
    max_seconds: float = MAX_STREAM_SECONDS,
) -> AsyncIterator[bytes]:
    """The ``text/event-stream`` body: one ``update`` frame per item of ``updates``
    (``render`` turns it into JSON), then ``end`` once the run has ended. The stream stops
    after ``max_seconds`` (the browser reconnects, naming the last event it saw)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + max_seconds
    yield b"retry: 2000\n\n"
    try:
        async for info, events in updates:
            yield _frame("update", await render(info, events))
            if info.status.is_terminal:
                yield _frame("end", {"status": info.status.value})
                return
            if loop.time() > deadline:
                return
    finally:
        aclose = getattr(updates, "aclose", None)
        if aclose is not None:
            await aclose()
