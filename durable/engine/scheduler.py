"""The scheduler of a worker: a thread that starts the runs of due ticks.

Every worker runs one, for the schedules whose workflow its App registers. It reads the
earliest ``next_tick`` of those schedules, waits until then on the App's clock (a
``durable.testing`` virtual clock included), and fires: one transaction of the log starts
the due ticks' runs (:func:`durable.engine.ticks.plan_due`) and moves each schedule to its
next tick. Workers that fire the same tick at once make one run of it: the run's id is
derived from the schedule and the tick, and Postgres hands each due row to one
transaction at a time (``SKIP LOCKED``), SQLite one writer at a time.

Between ticks it reads the log again every ``poll_interval`` seconds, so that a schedule
created or resumed by another process is seen within that time; a pause is seen at once
(the firing transaction skips paused rows). A wake-up (:meth:`Scheduler.wake`: a run
started in this process, a clock moved by a test) costs no read unless a tick has come or
this process changed a schedule.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence

from durable.clock import SYSTEM_CLOCK, Clock
from durable.engine.ticks import TickRuns, plan_due
from durable.log.schedule_store import Firing, ScheduleRow
from durable.log.store import Store

__all__ = ["Scheduler"]

log = logging.getLogger("durable.engine.schedules")


HELD_ELSEWHERE = 0.05
"""Seconds before looking again at a due tick that another worker's transaction holds."""


def _never() -> int:
    return 0


class Scheduler:
    """Starts the runs of the due ticks of the schedules of ``workflows``."""

    def __init__(
        self,
        store: Store,
        workflows: Sequence[str],
        runs: TickRuns,
        *,
        clock: Clock = SYSTEM_CLOCK,
        poll_interval: float = 1.0,
        on_started: Callable[[], None] = lambda: None,
        changes: Callable[[], int] = _never,
    ) -> None:
        self.store = store
        self.workflows = list(workflows)
        self.runs = runs
        self.clock = clock
        self.poll_interval = poll_interval
        self.on_started = on_started
        """Called after a pass started runs (wakes this process's workers)."""
        self._changes = changes
        """A counter of this process's changes to schedules (a change reads at once)."""
        self._seen_changes = -1
        self._next: float | None = None
        self._offset = 0.0
        """The log's clock minus ours, at the last read."""
        self._read_at = float("-inf")
        self._held = False
        """The last pass found a due tick that it could not fire (another worker's)."""
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Run in a background thread (``durable-schedules``) until :meth:`stop`."""
        self._thread = threading.Thread(target=self._loop, name="durable-schedules", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread (a pass in progress finishes first)."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(30)

    def wake(self) -> None:
        """Look again now (cheap: the log is read only if a tick has come or this process
        changed a schedule)."""
        self._wake.set()

    def run_due(self) -> int:
        """Read the log and start the due ticks' runs now, from any thread; returns how
        many runs it started (``durable.testing`` calls it when its clock moves)."""
        with self._lock:
            return self._pass()

    # -- the thread ----------------------------------------------------------------------

    def _loop(self) -> None:
        backoff = 0.1
        while not self._stop.is_set():
            try:
                if self._should_read():
                    self.run_due()
                backoff = 0.1
                wait = self._wait()
            except Exception as exc:  # the database is away: back off, as the lease loop does
                log.warning("starting due schedule ticks failed (%s); again in %.1fs", exc, backoff)
                wait = backoff
                backoff = min(backoff * 2, 5.0)
                self._read_at = float("-inf")
            self._wake.wait(wait)
            self._wake.clear()

    def _now(self) -> float:
        """The log's clock, as last measured against ours."""
        return self.clock.now() + self._offset

    def _should_read(self) -> bool:
        if time.monotonic() - self._read_at >= self.poll_interval:
            return True
        if self._changes() != self._seen_changes:
            return True
        nxt = self._next
        return nxt is not None and self._now() >= nxt

    def _wait(self) -> float:
        nxt = self._next
        stale = max(self.poll_interval - (time.monotonic() - self._read_at), 0.0)
        if nxt is None:
            return stale
        if self._held:
            return HELD_ELSEWHERE
        return max(min(nxt - self._now(), stale), 0.0)

    def _pass(self) -> int:
        """Read the next tick; if it has come, fire (and read the next tick again)."""
        self._seen_changes = self._changes()
        started = 0
        db_now, nxt = self.store.next_schedule_tick(self.workflows)
        if nxt is not None and nxt <= db_now:
            fired = self.store.fire_schedules(self.workflows, self._plan)
            for run in fired.created:
                self.runs.telemetry.run_started(run.workflow, run.queue)
            started = len(fired.created)
            if started:
                self.on_started()
            db_now, nxt = self.store.next_schedule_tick(self.workflows)
        self._held = started == 0 and nxt is not None and nxt <= db_now
        self._offset = db_now - self.clock.now()
        self._next = nxt
        self._read_at = time.monotonic()
        return started

    def _plan(self, row: ScheduleRow, now: float) -> Firing:
        return plan_due(row, now, self.runs)
