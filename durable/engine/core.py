"""The core of a run in execution: its journal cursor, its position counter, its lease epoch,
and its appends.

:class:`RunCore` is what the collaborators of a run's state use (its step calls in
``steps.py``, its child workflow calls in ``children.py``): they take a position, ask the
journal what it records there, append under the lease's epoch and note suspensions, and
nothing else. The in-run functions are in ``runtime.py``.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine
from concurrent.futures import Future
from typing import Any

import msgspec

from durable.engine.control import Abort, Aborted, CancelRun, DeadlineExceeded, Suspend
from durable.engine.registry import WorkflowDef
from durable.engine.replay import Journal, Slot
from durable.engine.resources import ResourceStack
from durable.engine.services import Services
from durable.errors import DurableError, LeaseLostError, NonDeterminismError
from durable.events import CallKind, NewEvent
from durable.log.store import AppendRequest, AppendResult, RunRow
from durable.states import AbortReason, SuspendReason
from durable.telemetry import NO_RUN, RunTelemetry

__all__ = ["RunCore"]


class RunCore:
    """A run in execution: what every journaled call of its code goes through."""

    def __init__(
        self,
        services: Services,
        row: RunRow,
        epoch: int,
        journal: Journal,
        workflow: WorkflowDef,
        *,
        replay_only: bool = False,
        clock_offset: float = 0.0,
    ) -> None:
        self.s = services
        self.row = row
        self.run_id = row.id
        self.epoch = epoch
        self.journal = journal
        self.workflow = workflow
        self.replay_only = replay_only
        self.clock_offset = clock_offset
        self.deadline_at = row.deadline_at
        self.position = 0
        self.stages: list[str] = []
        self.resources = ResourceStack()
        """The open stage blocks that declare resources (``durable.stage(resources=)``)."""
        self.suspensions: list[Suspend] = []
        self.deferred: list[NewEvent] = []
        """Events written with the suspension (``sleep_started``, ``wait_started``), so that
        a run whose journal shows it waiting is also marked sleeping."""
        self.wait_children: list[str] = []
        self.aborted: Aborted | None = None
        self.lease_lost: LeaseLostError | None = None
        """Set when an append was refused because the lease's epoch is stale."""
        self.draining = False
        self.nondeterminism: NonDeterminismError | None = None
        """Set at the first mismatch: the run fails with it even if the code catches it."""
        self.on_step_error: Callable[[BaseException], None] | None = None
        self.inflight: set[asyncio.Future[Any]] = set()
        self.child_status: dict[str, RunRow] = {}
        self.starting: list[Future[AppendResult]] = []
        """The appends of child starts (``durable.start_child``) not known to be committed
        yet: a step body waits for them (:meth:`settle_starts`)."""
        self.unawaited: dict[int, tuple[Coroutine[Any, Any, Any], CallKind, str]] = {}
        """Calls of an async workflow whose coroutine has not started yet, by position, with
        their kind and name: those left when the code stops are closed."""
        self._lock = threading.Lock()
        self.stopping = threading.Event()
        """Set when the code should stop (a cancel, a drain whose time is up): what
        ``durable.cancelled()`` reads, from any thread."""
        self.cancelling = False
        """The run is being cancelled: it ends ``CANCELLED`` once its code has stopped."""
        self.abandoned = False
        """The cancel's grace is over: a body still running may record nothing more."""
        self._bodies: set[Any] = set()
        """Async step bodies running now (tasks, or futures of tasks on the loop), which a
        cancel cancels."""
        self.obs: RunTelemetry = NO_RUN
        """This execution's telemetry (the runner sets it)."""

    # -- clock, abort, positions ---------------------------------------------------------

    def now(self) -> float:
        """The database's clock as seen from here."""
        return self.s.clock.now() + self.clock_offset

    def abort(self, reason: AbortReason, detail: str | None = None) -> None:
        """Stop this run's code at its next journaled call (lease lost, cancelled...)."""
        self.aborted = Aborted(reason, detail)

    def take(self, pos: int, kind: CallKind, name: str | None) -> Slot | None:
        """The journal's slot at ``pos`` for a call of ``kind`` and ``name`` (see
        :meth:`Journal.take`); a mismatch is remembered, so that the run fails with it."""
        try:
            return self.journal.take(pos, kind, name)
        except NonDeterminismError as exc:
            self.nondeterminism = self.nondeterminism or exc
            raise

    def next_position(self) -> int:
        """The position of the next journaled call; raises instead what stops the code."""
        self._stop_check()
        with self._lock:
            self.position += 1
            return self.position

    def peek_position(self) -> tuple[int, Slot | None]:
        """The position the next journaled call would take, and the journal's slot there,
        without taking it (a patch marker takes it only if it is there or new, see
        :meth:`advance_to`); raises what stops the code, as :meth:`next_position`."""
        self._stop_check()
        with self._lock:
            pos = self.position + 1
        return pos, self.journal.slots.get(pos)

    def advance_to(self, position: int) -> None:
        """Take ``position``, the one :meth:`peek_position` returned."""
        with self._lock:
            self.position = max(self.position, position)

    def _stop_check(self) -> None:
        """Raise what stops the code at its next journaled call, if anything does."""
        if self.aborted is not None:
            raise Abort(self.aborted)
        if self.cancelling:
            raise CancelRun()
        if self.nondeterminism is not None:
            raise self.nondeterminism
        if self.suspensions:
            raise self.suspensions[0]
        if self.draining:
            raise self.suspend(Suspend(None, None, SuspendReason.RELEASED))
        if self.deadline_at is not None and not self.replay_only and self.now() >= self.deadline_at:
            raise DeadlineExceeded()

    # -- stopping the code (cancel, drain, timeouts) -----------------------------------

    def request_cancel(self) -> None:
        """The run is being cancelled: bodies see ``durable.cancelled()``, async ones get
        ``CancelledError``; the code stops at its next journaled call."""
        self.cancelling = True
        self.signal_stop()

    def signal_stop(self) -> None:
        """Tell the running bodies to stop (``durable.cancelled()``; async bodies are
        cancelled), without deciding how the run ends."""
        self.stopping.set()
        with self._lock:
            bodies = list(self._bodies)
        for body in bodies:
            body.cancel()

    def body_started(self, body: Any) -> None:
        """An async step body (a task, or the future of one) that a cancel must reach."""
        with self._lock:
            self._bodies.add(body)
        if self.stopping.is_set():
            body.cancel()

    def body_ended(self, body: Any) -> None:
        """The body of :meth:`body_started` has ended."""
        with self._lock:
            self._bodies.discard(body)

    @property
    def stage(self) -> str | None:
        """The innermost stage entered."""
        return self.stages[-1] if self.stages else None

    # -- appends -------------------------------------------------------------------------

    def _request(self, events: list[NewEvent], **kw: Any) -> AppendRequest:
        return AppendRequest(self.run_id, self.epoch, events, **kw)

    def _check(self, res: AppendResult) -> AppendResult:
        if res.error is not None:
            self.aborted = Aborted(AbortReason.LOG_FAILED, str(res.error))
            raise Abort(self.aborted) from res.error
        if not res.ok:
            lost = self._lost()
            raise Abort(Aborted(AbortReason.LEASE_LOST, str(lost))) from lost
        return res

    def lose_lease(self, why: str) -> LeaseLostError:
        """Record that this worker lost the run's lease (``why``: how it learnt it) and stop
        the run's code at its next journaled call; the error is the first one recorded."""
        if self.lease_lost is None:
            self.lease_lost = LeaseLostError(
                f"run {self.run_id!r}: the lease of epoch {self.epoch} is lost ({why}): the "
                "run was taken over, cancelled or ended elsewhere"
            )
        self.abort(AbortReason.LEASE_LOST)
        return self.lease_lost

    def _lost(self) -> LeaseLostError:
        return self.lose_lease("an append was refused")

    def commit(self, events: list[NewEvent], **kw: Any) -> AppendResult:
        """Append and wait until committed (from a thread, never the event loop's own).

        Raises:
            Abort: the append was refused (from :class:`LeaseLostError` when the lease's
                epoch is stale) or the log failed.
        """
        return self._check(self.s.committer.write(self._request(events, **kw)))

    async def commit_async(self, events: list[NewEvent], **kw: Any) -> AppendResult:
        """Append and wait until committed, from the event loop (raises as :meth:`commit`)."""
        fut = self.s.committer.submit(self._request(events, **kw))
        return self._check(await asyncio.wrap_future(fut))

    def emit(self, event: NewEvent, **kw: Any) -> Future[AppendResult] | None:
        """Append without waiting (progress, messages, stages, recorded values, a child
        started without waiting: ``kw`` as for :meth:`commit`, e.g. ``new_runs``).

        Later appends of this run are ordered after it, so any outcome that follows commits
        with it or after it.
        """
        if self.replay_only or self.aborted is not None:
            return None
        fut = self.s.committer.submit(self._request([event], **kw), waited=False)
        fut.add_done_callback(self._emitted)
        return fut

    def settle_starts(self) -> None:
        """Wait until the children this execution started are committed (from a thread, as
        :meth:`commit`): a step body that follows acts on the world, which must find them
        (a signal to a child, ``client.get(child.id)``)."""
        if not self.starting:  # the step path's common case: nothing to wait for
            return
        pending = list(self.starting)
        for fut in pending:
            self._check(fut.result())
        self._settled(pending)

    async def settle_starts_async(self) -> None:
        """:meth:`settle_starts` from the event loop (concurrent branches each wait for
        all of them)."""
        if not self.starting:
            return
        pending = list(self.starting)
        for fut in pending:
            self._check(await asyncio.wrap_future(fut))
        self._settled(pending)

    def _settled(self, committed: list[Future[AppendResult]]) -> None:
        if committed:
            done = set(map(id, committed))
            self.starting = [f for f in self.starting if id(f) not in done]

    def _emitted(self, fut: Future[AppendResult]) -> None:
        res = fut.result()
        if res.error is not None:
            self.abort(AbortReason.APPEND_LOST, str(res.error))
        elif not res.ok:
            self._lost()

    # -- suspensions, decoding, calls not awaited ----------------------------------------

    def suspend(self, s: Suspend) -> Suspend:
        """Note a suspension (the runner merges them all) and return it to raise."""
        if self.deadline_at is not None and (s.wake_at is None or s.wake_at > self.deadline_at):
            s.wake_at = self.deadline_at
        self.suspensions.append(s)
        return s

    def decode(self, raw: bytes, type_: Any, pos: int, what: str) -> Any:
        """Decode a recorded value; one that no longer fits ``type_`` is a mismatch."""
        try:
            return self.s.codec.decode(raw, type_)
        except msgspec.ValidationError as exc:
            raise NonDeterminismError(
                f"run {self.run_id!r} at position {pos}: the recorded {what} no longer "
                f"decodes into {type_!r}: {exc}",
                position=pos,
                called=f"{what} decoded into {type_!r}",
                recorded=f"{what} that does not decode into it",
            ) from exc

    def close_unawaited(self) -> list[tuple[int, CallKind, str]]:
        """Close the coroutines of calls never awaited (so none is left to warn when it is
        collected) and return their positions, kinds and names."""
        left = sorted(self.unawaited.items())
        self.unawaited.clear()
        for _, (coro, _, _) in left:
            coro.close()
        return [(pos, kind, name) for pos, (_, kind, name) in left]

    def not_awaited_error(self, left: list[tuple[int, CallKind, str]]) -> DurableError:
        """The error of a workflow that returned with calls it never awaited."""
        pos, kind, name = left[0]
        what = "workflow" if kind is CallKind.CHILD else kind.value
        called = name if kind is CallKind.WAIT_FIRST else f"{what} {name!r}"
        more = f" (and {len(left) - 1} more call)" if len(left) == 2 else ""
        more = f" (and {len(left) - 1} more calls)" if len(left) > 2 else more
        return DurableError(
            f"run {self.run_id!r}: the workflow returned, but its call of {called} "
            f"at position {pos}{more} was never awaited, so it never ran: did you forget "
            f"await? In an async workflow, write `await {name}(...)`"
        )
