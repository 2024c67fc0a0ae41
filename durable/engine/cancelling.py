"""A cancel that reaches a run this worker executes: tell its code, give it a grace, end it.

When the worker learns (by push) that a client asked to cancel a run it holds, the run's
:class:`Cancellation` tells the code: ``durable.cancelled()`` turns true in its step bodies
(any thread), async bodies get ``asyncio.CancelledError``, and the workflow's code stops at
its next journaled call. What the code records before it stops is kept: its appends go on
under the lease. Once the code has stopped, or ``cancel_grace`` seconds have passed, the
runner appends ``run_cancelled``, which ends the run and bumps the epoch; a body still running
then is abandoned (Python cannot stop a thread): the run's state refuses its later writes, and
so would the log.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from typing import TYPE_CHECKING, Any

from durable.events import CancelData, NewEvent
from durable.events import EventType as T
from durable.states import AbortReason
from durable.types import Status

if TYPE_CHECKING:
    from durable.engine.runner import Runner
    from durable.engine.runtime import RunState
    from durable.engine.worker import Worker

__all__ = ["CANCEL_TEXT", "CancelRequests", "Cancellation"]

log = logging.getLogger("durable.engine.cancelling")

CANCEL_TEXT = "cancelled by a client"
"""The text of the ``run_cancelled`` that a holder appends after a client's request."""

_ENDS_ANYWAY = (AbortReason.CANCELLED, AbortReason.DEADLINE)
"""Aborts that still let the holder append ``run_cancelled`` (its lease is intact)."""


class Cancellation:
    """The cancel of one run executed by a :class:`~durable.engine.runner.Runner`."""

    __slots__ = ("_grace", "_runner", "asked", "ended", "grace")

    def __init__(self, runner: Runner, grace: float) -> None:
        self._runner = runner
        self.grace = grace
        """Seconds the code has to stop once told, before it is abandoned."""
        self.asked = False
        """A cancel was requested (possibly before the run's state was ready)."""
        self.ended = False
        """This worker appended the run's ``run_cancelled``."""
        self._grace: asyncio.TimerHandle | None = None

    def request(self) -> None:
        """A client asked to cancel the run (on the worker's loop): tell the code, and
        start the grace."""
        self.asked = True
        state = self._runner.state
        if state is None or state.cancelling or self._runner.stop.done():
            return  # not started yet (the runner checks ``asked``), or already told
        state.request_cancel()
        self._grace = asyncio.get_running_loop().call_later(self.grace, self._grace_over)

    def _grace_over(self) -> None:
        """The code did not stop in time: abandon it; the runner ends the run."""
        runner = self._runner
        state = runner.state
        if state is not None:
            state.abandoned = True
            state.abort(AbortReason.CANCELLED, f"still running {self.grace}s after a cancel")
        if not runner.stop.done():
            runner.stop.set_result(AbortReason.CANCELLED)
        runner.cancel_task()

    async def wait_inflight(self, state: RunState) -> None:
        """Let the async steps still running finish (what they record is kept), until the
        grace is over."""
        stop = self._runner.stop
        while state.inflight and not stop.done():
            await asyncio.wait({*state.inflight, stop}, return_when=asyncio.FIRST_COMPLETED)

    async def end(self, state: RunState) -> None:
        """Append ``run_cancelled`` under the lease, unless the lease is gone meanwhile."""
        if self._grace is not None:
            self._grace.cancel()
        await self.wait_inflight(state)
        runner = self._runner
        if state.aborted is not None and state.aborted.reason not in _ENDS_ANYWAY:
            runner.dropped(state.aborted)
            return
        ev = NewEvent(T.RUN_CANCELLED, CancelData(text=CANCEL_TEXT))
        self.ended = await runner.append_end([ev])

    async def settle(self) -> None:
        """When the runner is done: a cancel asked while the run was handing its lease back
        (a suspension committed just after the request) is carried out now, at once, since
        no worker holds the run any more; a run still held (a drain) is left to the lease
        that takes it next, which finds the request in its row."""
        if self._grace is not None:
            self._grace.cancel()
        runner = self._runner
        state = runner.state
        if not self.asked or self.ended:
            return
        aborted = state.aborted if state is not None else None
        if aborted is not None and aborted.reason is AbortReason.KILLED:
            return
        try:
            await asyncio.to_thread(runner.s.store.cancel, runner.run_id, CANCEL_TEXT)
        except Exception as exc:
            log.warning("run %s: could not carry out its cancel (%s)", runner.run_id, exc)


class CancelRequests:
    """How a worker hears of cancel requests: the store's push, and one read of the open
    requests when it starts (those made while it was not listening); where the store
    cannot push them (no FIFOs), a read every ``poll_interval``."""

    def __init__(self, worker: Worker, stop: threading.Event) -> None:
        self._worker = worker
        self._stop = stop
        self._handle: Any = None

    def start(self) -> None:
        """Listen, and look once (in a thread of its own)."""
        try:
            self._handle = self._worker.store.listen_cancels(self.pushed)
        except Exception:
            log.exception("could not listen for cancel requests; polling for them")
        threading.Thread(target=self._look, name="durable-cancel-look", daemon=True).start()

    def stop(self) -> None:
        """Stop listening."""
        if self._handle is not None:
            self._handle.stop()

    def _look(self) -> None:
        self.pushed("")
        if self._handle is not None:
            return
        while not self._stop.wait(self._worker.poll_interval):
            self.pushed("")

    def pushed(self, run_id: str) -> None:
        """A cancel request was pushed (on the listener's thread): a run held here is told
        at once; otherwise (or when the push does not say which run) one read of the open
        requests finds those held here, and those no worker holds any more (a suspension
        that committed just after the request), which are ended now."""
        w = self._worker
        if run_id and run_id in w._runners:
            w.request_cancel(run_id)
            return
        try:
            for row in w.store.cancel_requests():
                if row.id in w._runners:
                    w.request_cancel(row.id)
                elif row.status is not Status.RUNNING:
                    w.store.cancel(row.id, CANCEL_TEXT)
        except Exception as exc:
            log.warning("could not look up cancel requests: %s", exc)
