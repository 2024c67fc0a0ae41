"""``LocalHub``: wake-ups inside one process, between an App's clients and its workers.

A run started, signalled or resumed by a client wakes the App's embedded workers at once; a
run cancelled by a client stops executing in them at once; a run that reaches a stop point
wakes the ``result()`` calls waiting for it. Across processes the log's own notifications
(or polling) do the same, more slowly. The hub imports nothing of ``durable``: every layer
above the bottom may use it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["LocalHub", "Subscription"]


@dataclass(frozen=True, eq=False, slots=True)
class Subscription:
    """One worker's callbacks, registered with :meth:`LocalHub.subscribe`."""

    on_work: Callable[[], None]
    """Called when a run became runnable."""
    on_cancel: Callable[[str], None] | None = None
    """Called with the id of a run that was cancelled."""
    serves: Callable[[str, str], bool] | None = None
    """Whether the worker takes runs of a workflow on a queue."""


class LocalHub:
    """Wake-ups inside one process: a started run wakes the embedded workers at once, a
    cancelled run stops in them at once, and a finished run wakes the ``result()`` calls
    waiting for it."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._version = 0
        self._lock = threading.Lock()
        self._subscriptions: list[Subscription] = []
        self._waiting = 0
        self._schedule_changes = 0
        self.wake_on_wait = False
        """Wake the workers whenever a ``result()`` starts to wait (``durable.testing``:
        its virtual clock skips ahead only while the test waits for a result)."""

    def subscribe(
        self,
        on_work: Callable[[], None],
        on_cancel: Callable[[str], None] | None = None,
        serves: Callable[[str, str], bool] | None = None,
    ) -> Callable[[], None]:
        """Call ``on_work()`` when a run becomes runnable and ``on_cancel(run_id)`` when a
        run is cancelled, until the returned function is called (once, when the worker
        stops); ``serves(workflow, queue)`` answers :meth:`serves` for the worker."""
        sub = Subscription(on_work, on_cancel, serves)
        with self._lock:
            self._subscriptions.append(sub)

        def unsubscribe() -> None:
            with self._lock:
                if sub in self._subscriptions:
                    self._subscriptions.remove(sub)

        return unsubscribe

    @property
    def subscriptions(self) -> int:
        """How many subscriptions are registered now."""
        with self._lock:
            return len(self._subscriptions)

    def _current(self) -> list[Subscription]:
        with self._lock:
            return list(self._subscriptions)

    def work(self) -> None:
        """A run became runnable."""
        for sub in self._current():
            sub.on_work()

    def schedules_changed(self) -> None:
        """A client of this process created, resumed or deleted a schedule: the workers'
        schedulers read the log again at once."""
        with self._lock:
            self._schedule_changes += 1
        self.work()

    @property
    def schedule_changes(self) -> int:
        """How many times :meth:`schedules_changed` was called."""
        return self._schedule_changes

    def cancelled(self, run_id: str) -> None:
        """A run was cancelled."""
        for sub in self._current():
            if sub.on_cancel is not None:
                sub.on_cancel(run_id)

    def serves(self, workflow: str, queue: str) -> bool:
        """Whether a worker subscribed now takes runs of ``workflow`` on ``queue``."""
        return any(s.serves is not None and s.serves(workflow, queue) for s in self._current())

    def run_changed(self) -> None:
        """Some run reached a stop point."""
        with self._cond:
            self._version += 1
            self._waiting = 0  # every waiter wakes to look again: none waits for news now
            self._cond.notify_all()

    def wait(self, version: int, timeout: float) -> int:
        """Wait until something changed after ``version`` (or ``timeout``)."""
        with self._cond:
            if self._version != version:
                return self._version
            self._waiting += 1
        try:
            if self.wake_on_wait:
                self.work()
            with self._cond:
                if self._version == version:
                    self._cond.wait(timeout)
                return self._version
        finally:
            with self._cond:
                if self._version == version:  # else run_changed() has uncounted it
                    self._waiting -= 1

    @property
    def waiting(self) -> int:
        """How many ``result()`` calls wait here for a change that has not happened yet:
        one that a change has woken no longer counts, though it has not returned yet."""
        return self._waiting

    @property
    def version(self) -> int:
        """A counter of changes."""
        return self._version
