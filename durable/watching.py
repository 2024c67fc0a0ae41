"""Watching runs from any process: ``client.watch(run_id)`` and its ``async for`` form.

A watch yields the run's journal from ``after``, then each event as it is committed, and
ends after the run's terminal event. Nothing polls: one :class:`Watches` per client (an
App's clients share the App's) starts, on the first watch, one thread that hears the log's
pushes (Postgres ``LISTEN``, on SQLite a FIFO in the log's watchers' folder), each naming
the runs whose journals grew; it wakes the watchers of those runs, and each reads its own
run's journal after the last seq it saw (one indexed read). Nothing happens while nothing is
appended. A watch marks its run as watched in the log before its first read (and renews the
mark while it lasts): appends to a run that nobody watches are not announced at all, so
that unwatched runs pay nothing for watching. After the listener reconnects (the server
restarted, its connection was ended) every watcher reads again from its last seq: no event
is lost or repeated.

Where the store cannot push (SQLite without FIFOs, on Windows), watchers read every
:data:`FALLBACK_POLL` seconds instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from typing import Any

from durable.errors import InvalidOptionError, StoreError
from durable.events import EventType
from durable.log.store import Store
from durable.types import LogEvent

__all__ = [
    "END_EVENTS",
    "FALLBACK_POLL",
    "WATCH_MARK",
    "Watches",
    "event_types",
    "watch_async",
    "watch_sync",
]

log = logging.getLogger("durable.watch")

FALLBACK_POLL = 0.5
"""Seconds between two reads of a watcher whose store cannot push."""

END_EVENTS = frozenset({EventType.RUN_COMPLETED, EventType.RUN_FAILED, EventType.RUN_CANCELLED})
"""Events that end a run (a later ``run_resumed`` may start it again)."""

WATCH_MARK = 30.0
"""Seconds a watch's mark on its run lasts (``Store.mark_watched``); renewed every third of
it while the watch is open. Appends to a run nobody marked are not announced."""

_RETRY_MAX = 2.0
"""Seconds: the longest pause between two reads of a watcher whose reads fail."""

ReadEvents = Callable[[str, int], list[LogEvent]]
"""Reads a run's journal after a seq (the client's ``events`` path, without its checks)."""


def event_types(types: Iterable[EventType | str] | EventType | str | None) -> frozenset[str] | None:
    """The event types a watch keeps, from what users pass: :class:`EventType` members, or
    their values or names as text (``"step_completed"``, ``"STEP_COMPLETED"``), one or many.

    Raises:
        InvalidOptionError: a type that does not exist (the message lists those that do).
    """
    if types is None:
        return None
    items = [types] if isinstance(types, str) else list(types)
    out: set[str] = set()
    for t in items:
        if isinstance(t, EventType):
            out.add(t.value)
            continue
        text = t.strip().lower() if isinstance(t, str) else None
        if text is None or text not in EventType._value2member_map_:
            known = ", ".join(sorted(e.value for e in EventType))
            raise InvalidOptionError(f"unknown event type {t!r}; the event types are: {known}")
        out.add(text)
    if not out:
        raise InvalidOptionError("types is empty: pass None to watch every event type")
    return frozenset(out)


def check_after(after: int) -> int:
    """``after`` as a seq to read past (0: from the start)."""
    if isinstance(after, bool) or not isinstance(after, int):
        raise InvalidOptionError(f"after must be an event seq (an int >= 0), not {after!r}")
    if after < 0:
        raise InvalidOptionError(f"after must be >= 0 (a seq, 0 for the start), not {after}")
    return after


def check_timeout(timeout: float | None) -> float | None:
    """``timeout`` in seconds, or ``None``."""
    if timeout is None:
        return None
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout < 0:
        raise InvalidOptionError(f"timeout must be seconds >= 0 or None, not {timeout!r}")
    return float(timeout)


class _Waiter:
    """One watch's wake-up: a flag set from the listener's thread."""

    __slots__ = ("_async", "_event", "_loop", "run_id")

    def __init__(self, run_id: str, loop: asyncio.AbstractEventLoop | None = None) -> None:
        self.run_id = run_id
        self._loop = loop
        self._event = threading.Event()
        self._async = asyncio.Event() if loop is not None else None

    def wake(self) -> None:
        self._event.set()
        if self._loop is not None and self._async is not None:
            with contextlib.suppress(RuntimeError):  # the loop has closed: its watch is gone
                self._loop.call_soon_threadsafe(self._async.set)

    def clear(self) -> None:
        self._event.clear()
        if self._async is not None:
            self._async.clear()

    def wait(self, seconds: float | None) -> bool:
        return self._event.wait(seconds)

    async def wait_async(self, seconds: float | None) -> bool:
        assert self._async is not None
        try:
            await asyncio.wait_for(self._async.wait(), seconds)
        except TimeoutError:
            return False
        return True


class Watches:
    """The watchers of one client (or App) and the one listener thread they share."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._lock = threading.Lock()
        self._by_run: dict[str, set[_Waiter]] = {}
        self._listener: Any = None
        self._started = False
        self._marked: dict[str, float] = {}
        self.reads = 0
        """Journal reads made by this object's watches (for the benchmarks)."""

    @property
    def pushed(self) -> bool:
        """Whether the store pushes (``False``: watchers read every ``FALLBACK_POLL``)."""
        return self._listener is not None

    def add(self, waiter: _Waiter) -> None:
        """Register ``waiter`` (before its first read: no wake-up is missed)."""
        with self._lock:
            self._by_run.setdefault(waiter.run_id, set()).add(waiter)
            if not self._started:
                self._started = True
                self._listener = self._store.listen_journals(self._on_append)

    def remove(self, waiter: _Waiter) -> None:
        """Forget ``waiter``."""
        with self._lock:
            group = self._by_run.get(waiter.run_id)
            if group is not None:
                group.discard(waiter)
                if not group:
                    del self._by_run[waiter.run_id]
                    self._marked.pop(waiter.run_id, None)

    def mark(self, run_id: str) -> bool:
        """Mark ``run_id`` as watched in the log, unless this object did within the last
        third of :data:`WATCH_MARK`; whether the run is marked (``False``: the mark failed,
        and the watch reads every :data:`FALLBACK_POLL` seconds until one succeeds)."""
        now = time.monotonic()
        with self._lock:
            last = self._marked.get(run_id)
        if last is not None and now - last < WATCH_MARK / 3:
            return True
        try:
            self._store.mark_watched([run_id], WATCH_MARK)
        except StoreError as exc:
            log.warning("watch of %s: marking it watched failed (%s)", run_id, exc)
            return False
        with self._lock:
            if run_id in self._by_run:
                self._marked[run_id] = now
        return True

    def renew(self, run_id: str) -> bool:
        """Renew ``run_id``'s mark after a wait that nothing woke; whether it held all along
        (``False``: it lapsed meanwhile, or renewing failed: read the journal again)."""
        with self._lock:
            last = self._marked.get(run_id)
        held = last is not None and time.monotonic() - last < WATCH_MARK * 0.8
        return self.mark(run_id) and held

    def idle(self, cursor: _Cursor, marked: bool, woke: bool, deadline: float | None) -> bool:
        """After a wait: whether the watch may wait again without reading (nothing woke
        it, its run's mark holds, the store pushes, no read failed, time is left); the
        caller then renews the mark."""
        left = _left(deadline)
        timed_out = left is not None and left <= 0
        return not (woke or timed_out or cursor.failures or not marked or not self.pushed)

    def _on_append(self, payload: str) -> None:
        with self._lock:
            if payload:
                woken = [w for rid in payload.split("\n") for w in self._by_run.get(rid, ())]
            else:
                woken = [w for group in self._by_run.values() for w in group]
        for w in woken:
            w.wake()

    def close(self) -> None:
        """Stop the listener (watches still open fall back to reading every so often)."""
        with self._lock:
            listener, self._listener = self._listener, None
        if listener is not None:
            listener.stop()

    def pause(self, failures: int, marked: bool = True) -> float:
        """Seconds to wait for a wake-up before reading again (or renewing the run's
        mark): none is coming where the store cannot push or the run is not marked; after
        failed reads, a backoff (a wake-up cuts it short)."""
        if failures:
            return min(0.05 * 2.0 ** (failures - 1), _RETRY_MAX)
        return WATCH_MARK / 3 if self.pushed and marked else FALLBACK_POLL


class _Cursor:
    """Where one watch is: the last seq read, the types it keeps, whether the run ended."""

    def __init__(self, run_id: str, after: int, types: frozenset[str] | None) -> None:
        self.run_id = run_id
        self.seq = after
        self.types = types
        self.ended = False
        self.failures = 0

    def take(self, batch: list[LogEvent]) -> list[LogEvent]:
        """The events of ``batch`` to yield; the watch ends after a batch whose last
        event ends the run (one followed by ``run_resumed`` does not)."""
        if batch:
            self.seq = batch[-1].seq
            self.ended = batch[-1].type in END_EVENTS
        return [e for e in batch if self.types is None or e.type in self.types]


def _left(deadline: float | None) -> float | None:
    return None if deadline is None else deadline - time.monotonic()


def _timed_out(run_id: str, timeout: float | None) -> TimeoutError:
    return TimeoutError(f"run {run_id!r} did not end within {timeout}s of watching")


def watch_sync(
    watches: Watches,
    read: ReadEvents,
    cursor: _Cursor,
    ended: bool,
    timeout: float | None,
) -> Iterator[LogEvent]:
    """The events of a watch, as a generator (``Client.watch``: the run exists, and
    ``ended`` says whether it had ended when the watch began)."""
    deadline = None if timeout is None else time.monotonic() + timeout
    waiter = _Waiter(cursor.run_id)
    watches.add(waiter)
    try:
        while True:
            waiter.clear()
            marked = ended or watches.mark(cursor.run_id)  # before the read it covers
            try:
                batch = read(cursor.run_id, cursor.seq)
                watches.reads += 1
                cursor.failures = 0
            except StoreError as exc:
                cursor.failures += 1
                log.warning("watch of %s: reading failed (%s); retrying", cursor.run_id, exc)
                batch = []
            yield from cursor.take(batch)
            if cursor.ended or (ended and not cursor.failures):
                return
            left = _left(deadline)
            if left is not None and left <= 0:
                raise _timed_out(cursor.run_id, timeout)
            while True:
                pause = watches.pause(cursor.failures, marked)
                left = _left(deadline)
                woke = waiter.wait(pause if left is None else max(0.0, min(pause, left)))
                if not watches.idle(cursor, marked, woke, deadline):
                    break
                if not watches.renew(cursor.run_id):
                    break
    finally:
        watches.remove(waiter)


async def watch_async(
    watches: Watches,
    read: ReadEvents,
    first: Callable[[], bool],
    cursor: _Cursor,
    timeout: float | None,
) -> AsyncIterator[LogEvent]:
    """The events of a watch, as an async generator (``AsyncClient.watch``); ``first``
    checks that the run exists and says whether it has ended (in a thread)."""
    loop = asyncio.get_running_loop()
    deadline = None if timeout is None else time.monotonic() + timeout
    waiter = _Waiter(cursor.run_id, loop)
    watches.add(waiter)
    try:
        ended = await asyncio.to_thread(first)
        while True:
            waiter.clear()
            marked = ended or await asyncio.to_thread(watches.mark, cursor.run_id)
            try:
                batch = await asyncio.to_thread(read, cursor.run_id, cursor.seq)
                watches.reads += 1
                cursor.failures = 0
            except StoreError as exc:
                cursor.failures += 1
                log.warning("watch of %s: reading failed (%s); retrying", cursor.run_id, exc)
                batch = []
            for ev in cursor.take(batch):
                yield ev
            if cursor.ended or (ended and not cursor.failures):
                return
            left = _left(deadline)
            if left is not None and left <= 0:
                raise _timed_out(cursor.run_id, timeout)
            while True:
                pause = watches.pause(cursor.failures, marked)
                left = _left(deadline)
                wait = pause if left is None else max(0.0, min(pause, left))
                woke = await waiter.wait_async(wait)
                if not watches.idle(cursor, marked, woke, deadline):
                    break
                if not await asyncio.to_thread(watches.renew, cursor.run_id):
                    break
    finally:
        watches.remove(waiter)


def new_cursor(
    run_id: str, after: int, types: Iterable[EventType | str] | EventType | str | None
) -> _Cursor:
    """A checked watch position (``InvalidOptionError`` for a bad ``after`` or type)."""
    return _Cursor(run_id, check_after(after), event_types(types))
