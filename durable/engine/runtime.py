"""The object behind the per-run ContextVar: positions, replay, and every journaled call.

One :class:`RunState` exists per run being executed (or replayed) by this process. The public
in-run functions (``durable.sleep``, ``durable.stage``...) and the step and workflow wrappers
delegate to it through :func:`current`.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import datetime as dt
import random as _random
import threading
import time
import traceback
import uuid
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from concurrent.futures import Executor, Future
from dataclasses import dataclass, field
from typing import Any

import msgspec

from durable.codec import Codec
from durable.engine.committer import Committer
from durable.engine.control import Abort, DeadlineExceeded, ReplayEnd, Suspend
from durable.engine.policy import is_retryable
from durable.engine.registry import Registry, StepDef, WorkflowDef
from durable.engine.replay import Journal, Slot
from durable.errors import (
    NonDeterminismError,
    NotInRunError,
    PayloadTooLargeError,
    RunFailedError,
    SerializationError,
    StepFailedError,
)
from durable.events import (
    ChildData,
    ErrorInfo,
    Failure,
    MarkData,
    NewEvent,
    OutputData,
    ProgressData,
    ResultData,
    SignalData,
    WakeData,
)
from durable.events import EventType as T
from durable.log.store import AppendRequest, AppendResult, NewRun, RunRow, Store
from durable.types import RunInfo, Status

__all__ = ["RunState", "Services", "StepScope", "current", "current_step", "error_info"]

_current: contextvars.ContextVar[RunState | None] = contextvars.ContextVar(
    "durable_run", default=None
)
_step: contextvars.ContextVar[StepScope | None] = contextvars.ContextVar(
    "durable_step", default=None
)

_VALUE_TYPES: dict[str, Any] = {"now": dt.datetime, "random": float, "uuid4": uuid.UUID}
MAIN_STAGE = "main"


def current() -> RunState:
    """The run executing in this context; ``NotInRunError`` outside a run."""
    run = _current.get()
    if run is None:
        raise NotInRunError("this function can only be called inside a running workflow")
    return run


def current_or_none() -> RunState | None:
    """The run executing in this context, or ``None``."""
    return _current.get()


def current_step() -> StepScope | None:
    """The step whose body is executing in this context, if any."""
    return _step.get()


@dataclass(slots=True)
class StepScope:
    """The step whose body runs: for nested calls, progress and ``durable.info()``."""

    name: str
    position: int
    attempt: int
    stage: str | None


@dataclass
class Services:
    """What a run needs from the worker that executes it."""

    registry: Registry
    codec: Codec
    store: Store
    committer: Committer
    worker_id: str
    loop: asyncio.AbstractEventLoop | None = None
    step_pool: Executor | None = None
    rng: _random.Random = field(default_factory=_random.Random)


def error_info(exc: BaseException) -> ErrorInfo:
    """Record an exception by type, message and traceback (never the object)."""
    if isinstance(exc, StepFailedError | RunFailedError):
        return ErrorInfo(type=exc.error_type, message=exc.error_message, module="")
    tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    return ErrorInfo(
        type=type(exc).__qualname__,
        message=str(exc),
        module=type(exc).__module__,
        traceback=tb[-8000:],
    )


def _rebuild(registry: Registry, err: ErrorInfo) -> BaseException:
    cls = registry.error_type(err.module, err.type) if err.module else None
    if cls is None:
        return StepFailedError(err.type, err.message)
    try:
        exc = cls.__new__(cls)
        exc.args = (err.message,)
        if isinstance(exc, StepFailedError):
            exc.error_type, exc.error_message = err.type, err.message
    except Exception:
        return StepFailedError(err.type, err.message)
    return exc


class RunState:
    """A run in execution: its journal cursor, its position counter and its lease epoch."""

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
        self._counts: dict[str, int] = {}
        self.suspensions: list[Suspend] = []
        self.deferred: list[NewEvent] = []
        """Events written with the suspension (``sleep_started``, ``wait_started``), so that
        a run whose journal shows it waiting is also marked sleeping."""
        self.wait_children: list[str] = []
        self.aborted: str | None = None
        self.draining = False
        self.nondeterminism: NonDeterminismError | None = None
        """Set at the first mismatch: the run fails with it even if the code catches it."""
        self.on_step_error: Callable[[BaseException], None] | None = None
        self.inflight: set[asyncio.Future[Any]] = set()
        self.child_status: dict[str, RunRow] = {}
        self.steps_executed = 0
        self.steps_replayed = 0
        self._lock = threading.Lock()

    # -- plumbing ------------------------------------------------------------------------

    def now(self) -> float:
        """The database's clock as seen from here."""
        return time.time() + self.clock_offset

    def abort(self, reason: str) -> None:
        """Stop this run's code at its next journaled call (lease lost, cancelled...)."""
        self.aborted = reason

    def _take(self, pos: int, kind: str, name: str | None) -> Slot | None:
        try:
            return self.journal.take(pos, kind, name)
        except NonDeterminismError as exc:
            self.nondeterminism = self.nondeterminism or exc
            raise

    def _next_position(self) -> int:
        if self.aborted is not None:
            raise Abort(self.aborted)
        if self.nondeterminism is not None:
            raise self.nondeterminism
        if self.suspensions:
            raise self.suspensions[0]
        if self.draining:
            raise self.suspend(Suspend(None, None, "released"))
        if self.deadline_at is not None and not self.replay_only and self.now() >= self.deadline_at:
            raise DeadlineExceeded()
        with self._lock:
            self.position += 1
            return self.position

    def _request(self, events: list[NewEvent], **kw: Any) -> AppendRequest:
        return AppendRequest(self.run_id, self.epoch, events, **kw)

    def _check(self, res: AppendResult) -> AppendResult:
        if res.error is not None:
            self.abort(f"the log failed: {res.error}")
            raise Abort(str(res.error))
        if not res.ok:
            self.abort("lease lost")
            raise Abort("lease lost: the run was taken over, cancelled or ended elsewhere")
        return res

    def commit(self, events: list[NewEvent], **kw: Any) -> AppendResult:
        """Append and wait until committed (from a thread, never the event loop's own)."""
        return self._check(self.s.committer.submit(self._request(events, **kw)).result())

    async def commit_async(self, events: list[NewEvent], **kw: Any) -> AppendResult:
        """Append and wait until committed, from the event loop."""
        fut = self.s.committer.submit(self._request(events, **kw))
        return self._check(await asyncio.wrap_future(fut))

    def emit(self, event: NewEvent) -> Future[AppendResult] | None:
        """Append without waiting (progress, messages, stages, recorded values).

        Later appends of this run are ordered after it, so any outcome that follows commits
        with it or after it.
        """
        if self.replay_only or self.aborted is not None:
            return None
        fut = self.s.committer.submit(self._request([event]), waited=False)
        fut.add_done_callback(self._emitted)
        return fut

    def _emitted(self, fut: Future[AppendResult]) -> None:
        res = fut.result()
        if res.error is not None or not res.ok:
            self.abort("an append was lost" if res.ok else "lease lost")

    def suspend(self, s: Suspend) -> Suspend:
        """Note a suspension (the runner merges them all) and return it to raise."""
        if self.deadline_at is not None and (s.wake_at is None or s.wake_at > self.deadline_at):
            s.wake_at = self.deadline_at
        self.suspensions.append(s)
        return s

    def _decode(self, raw: bytes, type_: Any, pos: int, what: str) -> Any:
        try:
            return self.s.codec.decode(raw, type_)
        except msgspec.ValidationError as exc:
            raise NonDeterminismError(
                f"run {self.run_id!r} at position {pos}: the recorded {what} no longer "
                f"decodes into {type_!r}: {exc}"
            ) from exc

    @property
    def stage(self) -> str | None:
        """The innermost stage entered."""
        return self.stages[-1] if self.stages else None

    def _key(self, kind: str, name: str | None) -> str:
        step = _step.get()
        scope = f"s{step.position}.{step.attempt}" if step else "w"
        base = f"{kind}|{scope}|{name or ''}"
        with self._lock:
            n = self._counts.get(base, 0) + 1
            self._counts[base] = n
        return f"{base}|{n}"

    def _mark(self, event_type: T, name: str | None, make: Callable[[str], Any]) -> None:
        if self.replay_only:
            return
        key = self._key(event_type.value, name)
        if key in self.journal.keys:
            return
        self.emit(NewEvent(event_type.value, make(key), name=name))

    # -- stages, progress, messages, outputs ---------------------------------------------

    @contextlib.contextmanager
    def stage_block(self, name: str) -> Iterator[None]:
        """``durable.stage(name)``."""
        self._mark(T.STAGE_ENTERED, name, lambda k: MarkData(key=k, stage=self.stage))
        self.stages.append(name)
        ok = False
        try:
            yield
            ok = True
        except Exception:
            ok = True
            raise
        finally:
            self.stages.pop()
            if ok:
                outer = self.stage
                self._mark(T.STAGE_LEFT, name, lambda k: MarkData(key=k, stage=outer))

    def progress(self, value: float) -> None:
        """``durable.progress(value)``: of the current step, else stage, else run."""
        v = float(value)
        if not 0.0 <= v <= 1.0:
            raise ValueError("progress is a fraction from 0.0 to 1.0")
        step = _step.get()
        if step is not None:
            scope, name = "step", step.name
        elif self.stage is not None:
            scope, name = "stage", self.stage
        else:
            scope, name = "run", None
        stage = self.stage if step is None else step.stage
        self._mark(
            T.PROGRESS, name, lambda k: ProgressData(value=v, scope=scope, key=k, stage=stage)
        )

    def message(self, text: str, fields: dict[str, Any]) -> None:
        """``durable.message(text, **fields)``."""
        if fields:
            self.s.codec.encode(fields, "message fields")
        step = _step.get()
        stage = step.stage if step else self.stage
        self._mark(
            T.MESSAGE,
            step.name if step else None,
            lambda k: MarkData(key=k, text=str(text), fields=fields or None, stage=stage),
        )

    def output(self, key: str, value: Any) -> None:
        """``durable.output(key, value)``: under the current stage."""
        raw = self.s.codec.encode(value, f"output {key!r}")
        step = _step.get()
        stage = (step.stage if step else self.stage) or MAIN_STAGE
        self._mark(
            T.OUTPUT,
            key,
            lambda k: OutputData(value=msgspec.Raw(raw), stage=stage, key=k),
        )

    def info(self) -> RunInfo:
        """``durable.info()``."""
        row = self.row
        step = _step.get()
        return RunInfo(
            id=self.run_id,
            workflow=row.workflow,
            status=Status.RUNNING,
            queue=row.queue,
            attempt=row.attempt,
            created_at=dt.datetime.fromtimestamp(row.created_at, dt.UTC),
            updated_at=dt.datetime.fromtimestamp(self.now(), dt.UTC),
            progress=row.progress,
            priority=row.priority,
            parent_id=row.parent_id,
            stage=(step.stage if step else self.stage),
            step_name=step.name if step else None,
            step_position=step.position if step else None,
            step_attempt=step.attempt if step else None,
            step_key=f"{self.run_id}:{step.position}" if step else None,
            worker_id=self.s.worker_id,
        )

    # -- recorded values -----------------------------------------------------------------

    def value(self, kind: str, produce: Callable[[], Any]) -> Any:
        """``durable.now()``, ``random()``, ``uuid4()``: journaled per call."""
        pos = self._next_position()
        slot = self._take(pos, "value", kind)
        type_ = _VALUE_TYPES[kind]
        if slot is not None and slot.completed:
            assert slot.result is not None
            return self._decode(slot.result, type_, pos, kind)
        if self.replay_only:
            raise ReplayEnd()
        raw = self.s.codec.encode(produce(), kind)
        self.emit(
            NewEvent(
                T.VALUE_RECORDED.value, ResultData(result=msgspec.Raw(raw)), position=pos, name=kind
            )
        )
        return self.s.codec.decode(raw, type_)

    # -- sleep and signals ---------------------------------------------------------------

    def sleep(self, seconds: float) -> None:
        """``durable.sleep(seconds)``: a durable timer."""
        seconds = float(seconds)
        if seconds != seconds or seconds < 0:
            raise ValueError("sleep needs a non-negative number of seconds")
        pos = self._next_position()
        slot = self._take(pos, "sleep", None)
        if slot is not None and slot.fired:
            return
        if self.replay_only:
            raise ReplayEnd()
        now = self.now()
        started: NewEvent | None = None
        if slot is not None and slot.started and slot.wake_at is not None:
            wake = slot.wake_at
        else:
            wake = now + seconds
            started = NewEvent(T.SLEEP_STARTED.value, WakeData(wake_at=wake), position=pos)
        if now >= wake:
            if started is not None:
                self.emit(started)
            self.emit(NewEvent(T.SLEEP_FIRED.value, MarkData(), position=pos))
            return
        if started is not None:
            self.deferred.append(started)
        raise self.suspend(Suspend(wake, None, "sleep"))

    def wait_signal(self, name: str, timeout: float | None) -> Any:
        """``durable.wait_signal(name, timeout)``: the oldest unconsumed payload, or None."""
        if timeout is not None and timeout < 0:
            raise ValueError("timeout cannot be negative")
        pos = self._next_position()
        slot = self._take(pos, "wait", name)
        if slot is not None and slot.received:
            return None if slot.timed_out or slot.payload is None else self._payload(slot, pos)
        if self.replay_only:
            raise ReplayEnd()
        if slot is not None and slot.started:
            deadline = slot.wake_at
        else:
            deadline = self.now() + timeout if timeout is not None else None
        res = self.commit([], consume_signal=(name, pos))
        if res.signal is not None:
            payload = res.signal[1]
            return None if payload is None else self._decode(payload, Any, pos, "signal")
        if deadline is not None and self.now() >= deadline:
            timed_out = SignalData(timed_out=True)
            self.commit([NewEvent(T.SIGNAL_RECEIVED.value, timed_out, position=pos, name=name)])
            return None
        if slot is None or not slot.started:
            wait = NewEvent(
                T.WAIT_STARTED.value, WakeData(wake_at=deadline), position=pos, name=name
            )
            self.deferred.append(wait)
        raise self.suspend(Suspend(deadline, f"signal:{name}", "signal"))

    def _payload(self, slot: Slot, pos: int) -> Any:
        assert slot.payload is not None
        return self._decode(slot.payload, Any, pos, "signal")

    # -- steps ---------------------------------------------------------------------------

    def _step_slot(self, step: StepDef) -> tuple[int, Slot | None, int]:
        """Position, journal slot and the try number of a step call; raises what replay
        dictates (a recorded failure, a suspension during backoff)."""
        pos = self._next_position()
        slot = self._take(pos, "step", step.name)
        attempt = 1
        if slot is not None:
            if slot.failure is not None:
                self.steps_replayed += 1
                raise _rebuild(self.s.registry, slot.failure)
            if not slot.completed:
                attempt = slot.failed_attempts + 1
                if self.replay_only:
                    raise ReplayEnd()
                if slot.retry_wake_at is not None and self.now() < slot.retry_wake_at:
                    raise self.suspend(Suspend(slot.retry_wake_at, None, "retry"))
        elif self.replay_only:
            raise ReplayEnd()
        return pos, slot, attempt

    def _replayed(self, step: StepDef, pos: int, slot: Slot) -> Any:
        self.steps_replayed += 1
        assert slot.result is not None
        return self._decode(slot.result, step.result_type, pos, f"result of step {step.name!r}")

    def _outcome(
        self,
        step: StepDef,
        pos: int,
        attempt: int,
        started: float,
        result: Any,
        exc: BaseException | None,
    ) -> tuple[list[NewEvent], Any, BaseException | None]:
        """The events that record one try, the value to return and what to raise."""
        stage = self.stage
        raw: bytes | None = None
        if exc is None:
            try:
                raw = self.s.codec.encode(result, f"result of step {step.name!r}")
            except (SerializationError, PayloadTooLargeError) as e:
                exc = e
        if exc is None and raw is not None:
            done = NewEvent(
                T.STEP_COMPLETED.value,
                ResultData(result=msgspec.Raw(raw), stage=stage, started_at=started),
                position=pos,
                name=step.name,
                attempt=attempt,
            )
            value = self.s.codec.decode(raw, step.result_type)
            return [done], value, None
        assert exc is not None
        if self.on_step_error is not None:
            self.on_step_error(exc)
        err = error_info(exc)
        retryable = not isinstance(exc, SerializationError | PayloadTooLargeError) and (
            is_retryable(step.retry, exc, attempt)
        )
        failed = NewEvent(
            T.STEP_FAILED.value,
            Failure(error=err, retryable=retryable, stage=stage, started_at=started),
            position=pos,
            name=step.name,
            attempt=attempt,
        )
        if retryable:
            assert step.retry is not None
            wake = self.now() + step.retry.delay(attempt, self.s.rng)
            again = NewEvent(
                T.RETRY_SCHEDULED.value,
                WakeData(wake_at=wake, error=err),
                position=pos,
                name=step.name,
                attempt=attempt + 1,
            )
            return [failed, again], None, self.suspend(Suspend(wake, None, "retry"))
        cls = self.s.registry.error_type(err.module, err.type)
        return [failed], None, exc if cls is not None else _rebuild(self.s.registry, err)

    def _scope(self, step: StepDef, pos: int, attempt: int) -> StepScope:
        """The body's scope; journals ``step_started`` (without waiting for the commit)."""
        data = MarkData(stage=self.stage)
        self.emit(
            NewEvent(T.STEP_STARTED.value, data, position=pos, name=step.name, attempt=attempt)
        )
        return StepScope(step.name, pos, attempt, self.stage)

    def call_step(self, step: StepDef, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        """A step call from a sync workflow: returns its (recorded) result."""
        pos, slot, attempt = self._step_slot(step)
        if slot is not None and slot.completed:
            return self._replayed(step, pos, slot)
        scope = self._scope(step, pos, attempt)
        started = self.now()
        result: Any = None
        exc: BaseException | None = None
        try:
            result = self._run_body_blocking(step, scope, args, kwargs)
        except (Abort, Suspend, DeadlineExceeded, ReplayEnd):
            raise
        except BaseException as e:
            if not isinstance(e, Exception):
                raise
            exc = e
        if self.aborted is not None:
            raise Abort(self.aborted)
        events, value, error = self._outcome(step, pos, attempt, started, result, exc)
        self.commit(events)
        self.steps_executed += 1
        if error is not None:
            raise error
        return value

    def _run_body_blocking(
        self, step: StepDef, scope: StepScope, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        token = _step.set(scope)
        try:
            if step.is_async:
                loop = self.s.loop
                coro = step.fn(*args, **kwargs)
                if step.timeout is not None:
                    coro = asyncio.wait_for(coro, step.timeout)
                if loop is None or not loop.is_running():
                    return asyncio.run(coro)
                return _await_threadsafe(coro, loop, step)
            if step.timeout is None:
                return step.fn(*args, **kwargs)
            return _call_with_timeout(step, args, kwargs)
        finally:
            _step.reset(token)

    def call_step_async(
        self, step: StepDef, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Awaitable[Any]:
        """A step call from an async workflow: the position is taken now, at the call, and
        the returned coroutine runs (or replays) the step."""
        pos, slot, attempt = self._step_slot(step)
        if slot is not None and slot.completed:
            return _ready(self._replayed(step, pos, slot))
        return self._step_coro(step, pos, attempt, args, kwargs)

    async def _step_coro(
        self, step: StepDef, pos: int, attempt: int, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        task = asyncio.current_task()
        if task is not None:
            self.inflight.add(task)
        try:
            if self.aborted is not None:
                raise Abort(self.aborted)
            scope = self._scope(step, pos, attempt)
            started = self.now()
            result: Any = None
            exc: BaseException | None = None
            token = _step.set(scope)
            try:
                result = await self._body_async(step, args, kwargs)
            except (Abort, Suspend, DeadlineExceeded, ReplayEnd):
                raise
            except asyncio.CancelledError:
                raise
            except Exception as e:
                exc = e
            finally:
                _step.reset(token)
            if self.aborted is not None:
                raise Abort(self.aborted)
            events, value, error = self._outcome(step, pos, attempt, started, result, exc)
            await self.commit_async(events)
            self.steps_executed += 1
            if error is not None:
                raise error
            return value
        finally:
            if task is not None:
                self.inflight.discard(task)

    async def _body_async(
        self, step: StepDef, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        if step.is_async:
            coro = step.fn(*args, **kwargs)
            if step.timeout is not None:
                return await _wait_for(coro, step)
            return await coro
        loop = asyncio.get_running_loop()
        ctx = contextvars.copy_context()
        fut = loop.run_in_executor(self.s.step_pool, lambda: ctx.run(step.fn, *args, **kwargs))
        if step.timeout is not None:
            return await _wait_for(fut, step)
        return await fut

    # -- child workflows -----------------------------------------------------------------

    def _child_slot(self, wf: WorkflowDef) -> tuple[int, Slot | None, str]:
        pos = self._next_position()
        slot = self._take(pos, "child", wf.name)
        return pos, slot, f"{self.run_id}:{pos}"

    def _child_known(
        self, wf: WorkflowDef, pos: int, slot: Slot
    ) -> tuple[bool, Any, list[NewEvent]]:
        """For a child already started: (finished, value-or-exception, events to record)."""
        if slot.completed:
            assert slot.result is not None
            return True, self._decode(slot.result, wf.result_type, pos, "child result"), []
        if slot.failure is not None:
            return True, _child_error(slot.child_id or "", slot.failure), []
        assert slot.child_id is not None
        row = self.child_status.get(slot.child_id)
        if row is None:
            row = self.s.store.get_run(slot.child_id)
        if row is None or row.status not in ("completed", "failed", "cancelled"):
            return False, None, []
        if self.replay_only:
            raise ReplayEnd()
        if row.status == "completed":
            raw = row.output or b"\xc0"
            ev = NewEvent(
                T.CHILD_COMPLETED.value,
                ResultData(result=msgspec.Raw(raw)),
                position=pos,
                name=wf.name,
            )
            return True, self._decode(raw, wf.result_type, pos, "child result"), [ev]
        err = ErrorInfo(
            type=row.error_type or ("RunCancelledError" if row.status == "cancelled" else "Error"),
            message=row.error_message or f"child run {row.id} {row.status}",
            module="",
        )
        ev = NewEvent(T.CHILD_FAILED.value, Failure(error=err), position=pos, name=wf.name)
        return True, _child_error(row.id, err), [ev]

    def _child_new(
        self,
        wf: WorkflowDef,
        pos: int,
        child_id: str,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
    ) -> tuple[list[NewEvent], NewRun]:
        if self.replay_only:
            raise ReplayEnd()
        wf.signature.check(args, kwargs)
        data = self.s.codec.encode_args(args, kwargs, f"arguments of workflow {wf.name!r}")
        ev = NewEvent(
            T.CHILD_STARTED.value, ChildData(child_id=child_id), position=pos, name=wf.name
        )
        child = NewRun(
            id=child_id,
            workflow=wf.name,
            queue=wf.queue,
            input=data,
            priority=self.row.priority,
            timeout=wf.timeout,
            parent_id=self.run_id,
            trace_context=self.row.trace_context,
        )
        return [ev], child

    def _wait_child(self, child_id: str) -> Suspend:
        self.wait_children.append(child_id)
        return self.suspend(Suspend(None, "children", "child"))

    def call_child(self, wf: WorkflowDef, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        """A child workflow call from a sync workflow: start it (once) and wait for it."""
        pos, slot, child_id = self._child_slot(wf)
        if slot is not None:
            finished, value, events = self._child_known(wf, pos, slot)
            if finished:
                if events:
                    self.commit(events)
                if isinstance(value, BaseException):
                    raise value
                return value
            raise self._wait_child(child_id)
        events, child = self._child_new(wf, pos, child_id, args, kwargs)
        self.commit(events, new_runs=[child])
        raise self._wait_child(child_id)

    def call_child_async(
        self, wf: WorkflowDef, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Coroutine[Any, Any, Any]:
        """A child workflow call from an async workflow (awaitable)."""
        pos, slot, child_id = self._child_slot(wf)
        if slot is None:
            events, child = self._child_new(wf, pos, child_id, args, kwargs)
        return self._child_coro(
            wf,
            pos,
            slot,
            child_id,
            events if slot is None else None,
            child if slot is None else None,
        )

    async def _child_coro(
        self,
        wf: WorkflowDef,
        pos: int,
        slot: Slot | None,
        child_id: str,
        events: list[NewEvent] | None,
        child: NewRun | None,
    ) -> Any:
        task = asyncio.current_task()
        if task is not None:
            self.inflight.add(task)
        try:
            if slot is not None:
                finished, value, evs = self._child_known(wf, pos, slot)
                if finished:
                    if evs:
                        await self.commit_async(evs)
                    if isinstance(value, BaseException):
                        raise value
                    return value
                raise self._wait_child(child_id)
            assert events is not None and child is not None
            await self.commit_async(events, new_runs=[child])
            raise self._wait_child(child_id)
        finally:
            if task is not None:
                self.inflight.discard(task)


def _child_error(child_id: str, err: ErrorInfo) -> BaseException:
    if err.type == "RunCancelledError":
        from durable.errors import RunCancelledError

        return RunCancelledError(child_id)
    return RunFailedError(child_id, err.type, err.message)


def _ready(value: Any) -> asyncio.Future[Any]:
    """An awaitable already holding ``value`` (no warning if it is never awaited)."""
    fut = asyncio.get_running_loop().create_future()
    fut.set_result(value)
    return fut


async def _wait_for(aw: Any, step: StepDef) -> Any:
    assert step.timeout is not None
    try:
        return await asyncio.wait_for(aw, step.timeout)
    except TimeoutError:
        raise TimeoutError(f"step {step.name!r} timed out after {step.timeout}s") from None


def _await_threadsafe(coro: Any, loop: asyncio.AbstractEventLoop, step: StepDef) -> Any:
    try:
        return asyncio.run_coroutine_threadsafe(coro, loop).result()
    except TimeoutError:
        if step.timeout is None:
            raise
        raise TimeoutError(f"step {step.name!r} timed out after {step.timeout}s") from None


def _call_with_timeout(step: StepDef, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """Run a sync step body in its own thread and stop waiting after its timeout.

    Python cannot kill a thread: the body keeps running in the background after a timeout,
    and its eventual result is ignored.
    """
    box: dict[str, Any] = {}
    done = threading.Event()
    ctx = contextvars.copy_context()

    def target() -> None:
        try:
            box["value"] = ctx.run(step.fn, *args, **kwargs)
        except BaseException as exc:
            box["error"] = exc
        finally:
            done.set()

    threading.Thread(target=target, name=f"durable-step-{step.name}", daemon=True).start()
    assert step.timeout is not None
    if not done.wait(step.timeout):
        raise TimeoutError(f"step {step.name!r} timed out after {step.timeout}s")
    if "error" in box:
        raise box["error"]
    return box["value"]
