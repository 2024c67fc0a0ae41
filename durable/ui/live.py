"""The live view of one run: server-sent events carrying what changed.

:func:`live_events` is the one place that learns of new journal events: it follows the
run with the async ``watch`` (pushed by the log as events are committed, never polled),
and yields the events that arrived together as one update.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable

from durable import AsyncClient, Client, LogEvent, RunInfo

__all__ = ["MAX_STREAM_SECONDS", "live_events", "sse_stream"]

MAX_STREAM_SECONDS = 300.0
"""A stream ends after this long; the browser's EventSource then reconnects by itself."""

_END = object()
"""Put in the queue when the watch has ended (after the run's terminal event)."""


async def live_events(
    client: Client, run_id: str, after: int
) -> AsyncIterator[tuple[RunInfo, list[LogEvent]]]:
    """Yield ``(run info, events after the last seen seq)`` whenever the journal grows,
    until the run has ended; the first item comes at once (possibly with no events).

    The events come from ``AsyncClient.watch``; those that arrive while an update is being
    read are sent together in the next one. An update that says the run ended carries its
    last event.
    """
    queue: asyncio.Queue[object] = asyncio.Queue()

    async def pump() -> None:
        try:
            async for ev in AsyncClient._wrapping(client).watch(run_id, after=max(after, 0)):
                queue.put_nowait(ev)
        except Exception as exc:  # handed to the consumer, which raises it
            queue.put_nowait(exc)
        queue.put_nowait(_END)

    task = asyncio.create_task(pump())
    try:
        first, ended = True, False
        while not ended:
            items = [] if first else [await queue.get()]
            first = False
            while not queue.empty():
                items.append(queue.get_nowait())
            info = await asyncio.to_thread(lambda: client.get(run_id).info())
            while info.status.is_terminal and _END not in items:
                items.append(await queue.get())  # the end is committed: its event follows
            events: list[LogEvent] = []
            for item in items:
                if isinstance(item, Exception):
                    raise item
                if item is _END:
                    ended = True
                elif isinstance(item, LogEvent):
                    events.append(item)
            yield info, events
            if info.status.is_terminal:
                return
    finally:
        task.cancel()
        with contextlib.suppress(BaseException):
            await task


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
