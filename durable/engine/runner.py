"""Drive one leased run to a stop point: completed, failed, suspended, or dropped.

The workflow function is called from its first line; :class:`RunState` answers each journaled
call from the journal until it runs out, then executes live. Whatever the code ends with
(a value, an exception, a suspension) is appended under the lease's epoch.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import inspect
import logging
from collections.abc import Callable
from concurrent.futures import Executor
from typing import Any

import msgspec

from durable.engine.blocking import arguments_changed, blocked_event
from durable.engine.cancelling import Cancellation
from durable.engine.control import Abort, Aborted, DeadlineExceeded, Suspend
from durable.engine.policy import Retry, is_retryable, run_retry
from durable.engine.registry import WorkflowDef
from durable.engine.replay import HINT, Journal, describe
from durable.engine.runtime import RunState, _current, error_info
from durable.engine.services import Services
from durable.errors import (
    CorruptJournalError,
    DurableError,
    NonDeterminismError,
    PayloadTooLargeError,
    SerializationError,
)
from durable.events import (
    CallKind,
    ErrorInfo,
    Failure,
    NewEvent,
    ResultData,
    SuspendData,
    WakeData,
)
from durable.events import EventType as T
from durable.log.store import Lease
from durable.options import decode_options
from durable.states import AbortReason, SuspendReason, WaitFor
from durable.telemetry import NO_RUN
from durable.types import WorkerEvent

__all__ = ["Runner", "run_body", "unmatched_end"]

log = logging.getLogger("durable.engine.runner")

Notify = Callable[..., None]


def _merge(state: RunState) -> Suspend:
    """One suspension for the whole run, from those its branches raised."""
    if any(s.reason is SuspendReason.RELEASED for s in state.suspensions):
        return Suspend(None, None, SuspendReason.RELEASED)
    wakes = [s.wake_at for s in state.suspensions if s.wake_at is not None]
    kinds = {s.waiting_for for s in state.suspensions if s.waiting_for is not None}
    children = WaitFor.children()
    waiting = children if children in kinds else (kinds.pop() if len(kinds) == 1 else None)
    if waiting is None and not wakes:
        wakes = [state.now()]
    reason = state.suspensions[0].reason if state.suspensions else SuspendReason.SLEEP
    return Suspend(min(wakes) if wakes else None, waiting, reason)


FIRST_LEASE_SEQ = 2
"""A run whose row says ``last_seq`` 2 has ``run_started`` and its first ``lease_taken``
and nothing else: its journal need not be read."""


class Runner:
    """Executes one leased run on the worker's event loop."""

    def __init__(
        self,
        services: Services,
        lease: Lease,
        workflow_pool: Executor,
        notify: Notify,
        clock_offset: float,
        cancel_grace: float = 10.0,
    ) -> None:
        self.s = services
        self.lease = lease
        self.pool = workflow_pool
        self.notify = notify
        self.clock_offset = clock_offset
        self.retry: Retry | None = None
        """The retry policy of the workflow code: the run's own over the workflow's."""
        self.state: RunState | None = None
        self.stop: asyncio.Future[AbortReason] = asyncio.get_running_loop().create_future()
        self._task: asyncio.Task[Any] | None = None
        self._step_errors: list[tuple[str, str]] = []
        """(type, message) of the step failures this lease reported as ``ERROR``."""
        self.cancellation = Cancellation(self, cancel_grace)
        t = services.telemetry
        self.obs = t.run(lease.run, services.worker_id, lease.takeover) if t else NO_RUN

    @property
    def run_id(self) -> str:
        """The id of the run."""
        return self.lease.run.id

    def drain(self) -> None:
        """Hand the run back at its next journaled call (the worker is stopping)."""
        if self.state is not None:
            self.state.draining = True

    def request_cancel(self) -> None:
        """A client asked to cancel the run: tell its code, end it once the code stopped or
        the grace is over (on the worker's loop)."""
        self.cancellation.request()

    def signal_stop(self) -> None:
        """Tell the running bodies to stop (``durable.cancelled()``, ``CancelledError``):
        the worker's drain time is up."""
        if self.state is not None:
            self.state.signal_stop()

    def cancel_task(self) -> None:
        """Cancel the task of an async workflow's code, if it runs one."""
        if self._task is not None:
            self._task.cancel()

    def abort(self, reason: AbortReason) -> None:
        """Stop executing at once: nothing more is written for this run by this worker."""
        if self.state is not None:
            if reason is AbortReason.LEASE_LOST:
                self.state.lose_lease("a heartbeat found it taken")
            else:
                self.state.abort(reason)
        if not self.stop.done():
            self.stop.set_result(reason)
        if self._task is not None:
            self._task.cancel()

    def _call_hook(self, fn: Callable[..., Any], *args: Any) -> None:
        """Call a workflow's ``on_success``/``on_error`` hook; an exception it raises is
        logged (with the run's fields) and goes no further."""
        try:
            fn(*args)
        except Exception:
            log.exception(
                "run %s: a workflow's on_success/on_error hook raised",
                self.run_id,
                extra=self.obs.log_fields(),
            )

    def _step_error(self, exc: BaseException) -> None:
        self._step_errors.append(_error_key(exc))
        self.notify(WorkerEvent.ERROR, self.lease.run, error=exc)

    async def append_end(self, events: list[NewEvent]) -> bool:
        """Append events that end the run (see :meth:`_append`)."""
        return await self._append(events)

    def dropped(self, aborted: Aborted | None) -> None:
        """Log why this worker stopped executing the run without ending it."""
        self._dropped(aborted)

    async def _append(self, events: list[NewEvent], **kw: Any) -> bool:
        assert self.state is not None
        try:
            await self.state.commit_async(events, **kw)
        except Abort as exc:
            self._dropped(exc.aborted)
            return False
        self.obs.appended(events)
        return True

    async def _fail(self, exc: BaseException, wf: WorkflowDef | None) -> None:
        await self._fail_with(error_info(exc), wf, exc)

    async def _fail_with(
        self, err: ErrorInfo, wf: WorkflowDef | None, exc: BaseException | None
    ) -> None:
        if await self._append([NewEvent(T.RUN_FAILED, Failure(error=err))]):
            self.notify(WorkerEvent.FAILED, self.lease.run, error=exc)
            self.notify(WorkerEvent.COMPLETED, self.lease.run, error=exc)
            if wf is not None and wf.on_error is not None:
                self._call_hook(wf.on_error, self.run_id, exc or DurableError(err.message))

    async def _block(self, exc: NonDeterminismError) -> None:
        """Park the run ``BLOCKED``: the code cannot replay its journal (G10)."""
        row = self.lease.run
        if await self._append([blocked_event(exc, self.s.version, row.blocked_versions)]):
            log.warning(
                "run %s blocked: the code of version %s cannot replay it: %s",
                self.run_id,
                self.s.version,
                exc,
                extra=self.obs.log_fields(),
            )

    async def run(self) -> None:
        """Drive the run; never raises (errors end the run or drop it)."""
        row = self.lease.run
        wf = self.s.registry.workflows.get(row.workflow)
        self.notify(WorkerEvent.PROCESSING, row)
        if self.lease.takeover:
            self.notify(WorkerEvent.STALLED, row)
        try:
            await self._run(wf)
        except Abort as exc:
            self._dropped(exc.aborted)
        except asyncio.CancelledError:
            self._dropped(self.state.aborted if self.state else None)
        except Exception:
            log.exception(
                "run %s: unexpected error in the runner", self.run_id, extra=self.obs.log_fields()
            )
        finally:
            with contextlib.suppress(BaseException):
                await self.cancellation.settle()
            self.obs.ended()
            aborted = self.state.aborted if self.state is not None else None
            cancelled = aborted is not None and aborted.reason is AbortReason.CANCELLED
            if self.cancellation.ended or cancelled:
                self.notify(WorkerEvent.COMPLETED, row)  # it ended: a client cancelled it

    def _dropped(self, aborted: Aborted | None) -> None:
        """Log why this worker stopped executing the run without ending it."""
        lost = self.state.lease_lost if self.state is not None else None
        if lost is not None:
            log.info("run %s dropped: %s", self.run_id, lost, extra=self.obs.log_fields())
        else:
            log.info("run %s dropped: %s", self.run_id, aborted, extra=self.obs.log_fields())

    async def _run(self, wf: WorkflowDef | None) -> None:
        row = self.lease.run
        placeholder = Journal(row.id, [])
        if wf is None:  # leases are filtered by workflow: only a race with a changed registry
            self.state = RunState(
                self.s, row, self.lease.epoch, placeholder, _unknown(row.workflow)
            )
            await self._fail_with(
                ErrorInfo(
                    "UnknownWorkflowError", f"no workflow {row.workflow!r}", "durable.errors"
                ),
                None,
                None,
            )
            return
        self.state = RunState(
            self.s, row, self.lease.epoch, placeholder, wf, clock_offset=self.clock_offset
        )
        try:
            if row.last_seq <= FIRST_LEASE_SEQ:
                journal = Journal.first_lease(row.id, row.last_seq)
            else:
                rows = await asyncio.to_thread(self.s.store.read_journal, row.id)
                journal = Journal(row.id, rows)
            args, kwargs = wf.signature.decode_args(row.input)
            self.retry = run_retry(decode_options(row.options), wf.retry)
        except msgspec.ValidationError as exc:
            if row.version is not None and row.version != self.s.version:
                # Recorded under other code: the workflow's signature changed under the run.
                await self._block(arguments_changed(row.id, wf.name, exc))
                return
            await self._fail_with(  # never fitted (a client without the code started it)
                ErrorInfo("CorruptJournalError", str(exc), "durable.errors"), wf, exc
            )
            return
        except CorruptJournalError as exc:
            await self._fail_with(
                ErrorInfo("CorruptJournalError", str(exc), "durable.errors"), wf, exc
            )
            return
        state = self.state = RunState(
            self.s, row, self.lease.epoch, journal, wf, clock_offset=self.clock_offset
        )
        state.on_step_error = self._step_error
        state.obs = self.obs
        if self.cancellation.asked or row.cancel_requested_at is not None:
            await self.cancellation.end(state)  # asked before the code started: run none
            return
        pending = journal.pending_children()
        if pending:
            kids = await asyncio.to_thread(self.s.store.get_runs, pending)
            state.child_status = {k.id: k for k in kids}
        if state.deadline_at is not None and state.now() >= state.deadline_at:
            await self._timeout(wf)
            return
        await self._execute(state, wf, args, kwargs)

    async def _execute(
        self, state: RunState, wf: WorkflowDef, args: list[Any], kwargs: dict[str, Any]
    ) -> None:
        loop = asyncio.get_running_loop()
        if wf.is_async:
            body: asyncio.Future[Any] = asyncio.ensure_future(_async_body(state, wf, args, kwargs))
            self._task = body  # type: ignore[assignment]
        else:
            ctx = contextvars.Context()
            body = loop.run_in_executor(self.pool, ctx.run, _sync_body, state, wf, args, kwargs)
        timer = None
        if state.deadline_at is not None:
            delay = max(state.deadline_at - state.now(), 0.0)
            timer = loop.call_later(delay, self._deadline)
        try:
            await asyncio.wait({body, self.stop}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            if timer is not None:
                timer.cancel()
        if state.cancelling:
            if body.done():
                _retrieve(body)
            else:
                body.add_done_callback(_retrieve)
            await self.cancellation.end(state)
            return
        if not body.done():
            body.add_done_callback(_retrieve)
            if _past_deadline(state):
                await self._timeout(wf)
            else:
                self._dropped(state.aborted)
            return
        try:
            result = body.result()
        except asyncio.CancelledError:
            if _past_deadline(state):
                await self._timeout(wf)
            else:
                self._dropped(state.aborted)
            return
        except BaseException as exc:
            await self._ended_with(state, wf, exc)
            return
        if state.suspensions:
            await self._suspend(state)
            return
        await self._complete(state, wf, result)

    def _deadline(self) -> None:
        if self.state is not None:
            self.state.abort(AbortReason.DEADLINE)
        if not self.stop.done():
            self.stop.set_result(AbortReason.DEADLINE)
        if self._task is not None:
            self._task.cancel()

    async def _timeout(self, wf: WorkflowDef) -> None:
        assert self.state is not None
        limit = self.lease.run.timeout if self.lease.run.timeout is not None else wf.timeout
        exc = TimeoutError(f"workflow {wf.name!r} timed out after {limit}s")
        await self._fail(exc, wf)

    async def _ended_with(self, state: RunState, wf: WorkflowDef, exc: BaseException) -> None:
        if state.nondeterminism is not None and not isinstance(exc, Abort | DeadlineExceeded):
            await self._block(state.nondeterminism)
            return
        if isinstance(exc, Abort):
            if _past_deadline(state):
                await self._timeout(wf)
            else:
                self._dropped(exc.aborted)
            return
        if isinstance(exc, DeadlineExceeded):
            await self._timeout(wf)
            return
        if isinstance(exc, Suspend) or state.suspensions:
            await self._suspend(state)
            return
        if not isinstance(exc, Exception):
            raise exc
        if isinstance(exc, NonDeterminismError):
            await self._block(exc)
            return
        if isinstance(exc, CorruptJournalError):
            await self._fail(exc, wf)
            return
        if not _reported(exc, self._step_errors):  # a step's failure: ERROR already fired
            self.notify(WorkerEvent.ERROR, self.lease.run, error=exc)
        attempt = self.lease.run.attempt
        if is_retryable(self.retry, exc, attempt, wf.is_permanent):
            assert self.retry is not None
            wake = state.now() + self.retry.delay(attempt, self.s.rng)
            events = [
                NewEvent(
                    T.RUN_RETRY_SCHEDULED,
                    WakeData(wake_at=wake, error=error_info(exc)),
                    attempt=attempt + 1,
                ),
                NewEvent(T.RUN_SUSPENDED, SuspendData(wake_at=wake, reason=SuspendReason.RETRY)),
            ]
            await self._append(events)
            return
        await self._fail(exc, wf)

    async def _suspend(self, state: RunState) -> None:
        await asyncio.sleep(0)
        while state.inflight:
            await asyncio.wait(list(state.inflight))
            await asyncio.sleep(0)
        if state.aborted is not None:
            return
        s = _merge(state)
        data = SuspendData(wake_at=s.wake_at, waiting_for=s.waiting_for, reason=s.reason)
        events = [*state.deferred, NewEvent(T.RUN_SUSPENDED, data)]
        await self._append(events, wait_children=list(state.wait_children))

    async def _complete(self, state: RunState, wf: WorkflowDef, result: Any) -> None:
        if state.nondeterminism is not None:  # the workflow caught it: it still parks the run
            await self._block(state.nondeterminism)
            return
        mismatch = unmatched_end(state)
        if mismatch is not None:
            await self._block(mismatch)
            return
        try:
            raw = self.s.codec.encode(result, f"result of workflow {wf.name!r}")
        except (SerializationError, PayloadTooLargeError) as exc:
            await self._fail(_forgot_await(exc, result, wf), wf)
            return
        done = NewEvent(T.RUN_COMPLETED, ResultData(result=msgspec.Raw(raw)))
        if await self._append([done]):
            value = self.s.codec.decode(raw, wf.result_type)
            self.notify(WorkerEvent.DONE, self.lease.run, result=value)
            self.notify(WorkerEvent.COMPLETED, self.lease.run, result=value)
            if wf.on_success is not None:
                self._call_hook(wf.on_success, self.run_id, value)


def _error_key(exc: BaseException) -> tuple[str, str]:
    """An error's type and message, as its journal entry records them (the same for a step's
    exception and for what the workflow gets raised, rebuilt or as ``StepFailedError``)."""
    err = error_info(exc)
    return err.type, err.message


def _reported(exc: BaseException, step_errors: list[tuple[str, str]]) -> bool:
    """Whether the workflow's ``exc`` is (or was raised from) a step failure already
    reported in this lease: the attempt raised once, so ``ERROR`` fires once."""
    seen: set[int] = set()
    e: BaseException | None = exc
    while e is not None and id(e) not in seen and step_errors:
        if _error_key(e) in step_errors:
            return True
        seen.add(id(e))
        e = e.__cause__ or e.__context__
    return False


def _retrieve(fut: asyncio.Future[Any]) -> None:
    """Consume the outcome of a body nobody waits for any more (it was aborted)."""
    if not fut.cancelled():
        fut.exception()


def _past_deadline(state: RunState) -> bool:
    """Whether the run was stopped because its workflow's timeout passed."""
    return state.aborted is not None and state.aborted.reason is AbortReason.DEADLINE


def _sync_body(state: RunState, wf: WorkflowDef, args: list[Any], kwargs: dict[str, Any]) -> Any:
    _current.set(state)
    return wf.fn(*args, **kwargs)


async def _async_body(
    state: RunState, wf: WorkflowDef, args: list[Any], kwargs: dict[str, Any]
) -> Any:
    _current.set(state)
    try:
        result = await wf.fn(*args, **kwargs)
    except BaseException:
        if state.unawaited:  # e.g. a later call of an asyncio.gather raised: never started
            await _orphans(state)
        raise
    if state.unawaited:
        left = await _orphans(state)
        if left:
            raise state.not_awaited_error(left)
    return result


async def _orphans(state: RunState) -> list[tuple[int, CallKind, str]]:
    """Close the coroutines of calls that nothing will start, and return them: after one
    turn of the loop, so that those handed to a task (``asyncio.ensure_future``) start."""
    await asyncio.sleep(0)
    return state.close_unawaited()


def run_body(state: RunState, args: list[Any], kwargs: dict[str, Any]) -> Any:
    """Run the workflow's code in this thread to its end (a replay: ``state.replay_only``)."""
    wf = state.workflow
    ctx = contextvars.Context()
    if wf.is_async:
        return ctx.run(asyncio.run, _async_body(state, wf, args, kwargs))
    return ctx.run(_sync_body, state, wf, args, kwargs)


def unmatched_end(state: RunState) -> NonDeterminismError | None:
    """The mismatch of a workflow that returned while its journal records more calls."""
    left = state.journal.unconsumed(state.position)
    if not left:
        return None
    first = left[0]
    return NonDeterminismError(
        f"run {state.run_id!r}: the workflow returned after position {state.position} but "
        f"the journal records {describe(first.kind, first.name)} at position "
        f"{first.position}. {HINT}",
        position=first.position,
        called="return",
        recorded=describe(first.kind, first.name),
    )


def _forgot_await(
    exc: SerializationError | PayloadTooLargeError, result: Any, wf: WorkflowDef
) -> BaseException:
    """A workflow result that cannot be encoded: if it is an awaitable, say so."""
    if not inspect.isawaitable(result):
        return exc
    if inspect.iscoroutine(result):
        result.close()  # nothing will await it now
    return SerializationError(
        f"workflow {wf.name!r} returned {type(result).__name__} {result!r}, which cannot be "
        "recorded: did you forget await?"
    )


def _unknown(name: str) -> WorkflowDef:
    def missing() -> None:
        raise DurableError(f"no workflow {name!r}")

    return WorkflowDef(name=name, fn=missing)
