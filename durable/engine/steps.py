"""Step calls of a run (:class:`StepCalls`, a collaborator of its state): replay a recorded
outcome, or run the body (in a thread with a timeout, on the loop from a thread, awaited with
one) and journal its outcome, with a retry when its policy allows; and how an error is
recorded (:func:`error_info`) and raised again at replay (``_rebuild``).
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import inspect
import traceback
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import msgspec

from durable.engine.bodies import await_threadsafe, call_with_timeout, wait_for
from durable.engine.control import Abort, CancelRun, DeadlineExceeded, ReplayEnd, Suspend
from durable.engine.core import RunCore
from durable.engine.executors import Executor
from durable.engine.policy import is_retryable
from durable.engine.registry import Registry, StepDef
from durable.engine.replay import Slot
from durable.engine.resources import StageResources
from durable.errors import (
    PayloadTooLargeError,
    PermanentError,
    RunFailedError,
    SerializationError,
    StepFailedError,
)
from durable.events import (
    CallKind,
    ErrorInfo,
    Failure,
    NewEvent,
    ResultData,
    StepStartedData,
    WakeData,
)
from durable.events import EventType as T
from durable.states import SuspendReason
from durable.telemetry import StepTelemetry

__all__ = ["StepCalls", "StepScope", "error_info"]

_step: contextvars.ContextVar[StepScope | None] = contextvars.ContextVar(
    "durable_step", default=None
)


class Flag:
    """A flag set once from any thread and read without a lock (nobody waits on it): what a
    ``threading.Event`` would be here, at a fraction of its cost on every step call."""

    __slots__ = ("_set",)

    def __init__(self) -> None:
        self._set = False

    def set(self) -> None:
        """Raise the flag."""
        self._set = True

    def is_set(self) -> bool:
        """Whether the flag was raised."""
        return self._set


@dataclass(slots=True)
class StepScope:
    """The step whose body runs: for nested calls, progress and ``durable.info()``."""

    name: str
    position: int
    attempt: int
    stage: str | None
    obs: StepTelemetry | None = None
    timed_out: Flag = field(default_factory=Flag)
    """Set when this attempt's ``timeout`` passed (``durable.cancelled()`` is then true)."""
    resources: StageResources | None = None
    """The stage resources this call sees (``durable.resource``)."""


def error_info(exc: BaseException) -> ErrorInfo:
    """Record an exception by type, message and traceback (never the object); a
    ``PermanentError`` raised from a cause is recorded as its cause, marked permanent."""
    cause = _permanent_cause(exc)
    if cause is not None:
        inner = error_info(cause)
        tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        return ErrorInfo(inner.type, inner.message, inner.module, tb[-8000:], permanent=True)
    if isinstance(exc, StepFailedError | RunFailedError):
        return ErrorInfo(type=exc.error_type, message=exc.error_message, module="")
    tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    return ErrorInfo(
        type=type(exc).__qualname__,
        message=str(exc),
        module=type(exc).__module__,
        traceback=tb[-8000:],
    )


def _permanent_cause(exc: BaseException) -> BaseException | None:
    """The cause of ``raise PermanentError(...) from cause`` (through nested ones)."""
    cause = None
    seen: set[int] = set()
    while isinstance(exc, PermanentError) and exc.__cause__ is not None and id(exc) not in seen:
        seen.add(id(exc))
        cause = exc = exc.__cause__
    return cause


def _rebuild(registry: Registry, err: ErrorInfo) -> BaseException:
    if err.permanent:
        cause = _rebuild(registry, ErrorInfo(err.type, err.message, err.module))
        wrapper = PermanentError(err.message)
        wrapper.__cause__ = cause
        return wrapper
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


class StepCalls:
    """The step calls of one run: a collaborator of its state, working through its
    :class:`~durable.engine.core.RunCore`."""

    __slots__ = ("run",)

    def __init__(self, run: RunCore) -> None:
        self.run = run

    def _slot(self, step: StepDef) -> tuple[int, Slot | None, int]:
        """Position, journal slot and the try number of a step call; raises what replay
        dictates (a recorded failure, a suspension during backoff)."""
        run = self.run
        pos = run.next_position()
        slot = run.take(pos, CallKind.STEP, step.name)
        attempt = 1
        if slot is not None:
            if slot.failure is not None:
                raise _rebuild(run.s.registry, slot.failure)
            if not slot.completed:
                attempt = slot.failed_attempts + 1
                if run.replay_only:
                    raise ReplayEnd()
                if slot.retry_wake_at is not None and run.now() < slot.retry_wake_at:
                    raise run.suspend(Suspend(slot.retry_wake_at, None, SuspendReason.RETRY))
        elif run.replay_only:
            raise ReplayEnd()
        return pos, slot, attempt

    def _replayed(self, step: StepDef, pos: int, slot: Slot) -> Any:
        assert slot.result is not None
        return self.run.decode(slot.result, step.result_type, pos, f"result of step {step.name!r}")

    def _outcome(
        self,
        step: StepDef,
        pos: int,
        attempt: int,
        started: float,
        result: Any,
        exc: BaseException | None,
    ) -> tuple[list[NewEvent], Any, BaseException | None, float | None]:
        """The events that record one try, the value to return, what to raise and, when the
        step is tried again, the backoff in seconds."""
        run = self.run
        stage = run.stage
        if exc is None:
            try:
                raw = run.s.codec.encode(result, f"result of step {step.name!r}")
                value = run.s.codec.decode(raw, step.result_type)
            except (SerializationError, PayloadTooLargeError) as e:
                exc = _forgot_await(e, result, step)
            except msgspec.ValidationError as e:
                exc = _does_not_decode(e, result, step)
            else:
                done = NewEvent(
                    T.STEP_COMPLETED,
                    ResultData(result=msgspec.Raw(raw), stage=stage, started_at=started),
                    position=pos,
                    name=step.name,
                    attempt=attempt,
                )
                return [done], value, None, None
        if run.on_step_error is not None:
            run.on_step_error(exc)
        err = error_info(exc)
        retryable = not isinstance(exc, SerializationError | PayloadTooLargeError) and (
            is_retryable(step.retry, exc, attempt, run.workflow.is_permanent)
        )
        failed = NewEvent(
            T.STEP_FAILED,
            Failure(error=err, retryable=retryable, stage=stage, started_at=started),
            position=pos,
            name=step.name,
            attempt=attempt,
        )
        if retryable:
            assert step.retry is not None
            backoff = step.retry.delay(attempt, run.s.rng)
            wake = run.now() + backoff
            again = NewEvent(
                T.RETRY_SCHEDULED,
                WakeData(wake_at=wake, error=err),
                position=pos,
                name=step.name,
                attempt=attempt + 1,
            )
            suspended = run.suspend(Suspend(wake, None, SuspendReason.RETRY))
            return [failed, again], None, suspended, backoff
        cls = None if err.permanent else run.s.registry.error_type(err.module, err.type)
        return [failed], None, exc if cls is not None else _rebuild(run.s.registry, err), None

    def _encode_args(
        self, step: StepDef, pos: int, attempt: int, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> tuple[bytes | None, list[NewEvent]]:
        """The step's encoded arguments, or (when they cannot be encoded or are too large)
        the permanent ``step_failed`` that records it: the body never runs."""
        run = self.run
        try:
            return run.s.codec.encode_args(args, kwargs, f"arguments of step {step.name!r}"), []
        except (SerializationError, PayloadTooLargeError) as exc:
            if run.on_step_error is not None:
                run.on_step_error(exc)
            failed = NewEvent(
                T.STEP_FAILED,
                Failure(error=error_info(exc), retryable=False, stage=run.stage),
                position=pos,
                name=step.name,
                attempt=attempt,
            )
            return None, [failed]

    def _refused(self, events: list[NewEvent]) -> BaseException:
        """What the workflow gets for arguments that could not be recorded."""
        failure = events[0].data
        assert isinstance(failure, Failure)
        return _rebuild(self.run.s.registry, failure.error)

    def _scope(self, step: StepDef, pos: int, attempt: int, raw_args: bytes) -> StepScope:
        """The body's scope; journals ``step_started`` (without waiting for the commit)."""
        run = self.run
        stage = run.stage
        data = StepStartedData(stage=stage, args=msgspec.Raw(raw_args))
        run.emit(NewEvent(T.STEP_STARTED, data, position=pos, name=step.name, attempt=attempt))
        obs = run.obs.step(step.name, pos, attempt, stage)
        return StepScope(step.name, pos, attempt, stage, obs, resources=run.resources.top)

    def call(self, step: StepDef, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        """A step call from a sync workflow: returns its (recorded) result."""
        pos, slot, attempt = self._slot(step)
        if slot is not None and slot.completed:
            return self._replayed(step, pos, slot)
        run = self.run
        raw_args, refused = self._encode_args(step, pos, attempt, args, kwargs)
        if raw_args is None:
            run.commit(refused)
            raise self._refused(refused)
        run.settle_starts()  # the body may act on children started before it
        scope = self._scope(step, pos, attempt, raw_args)
        started = run.now()
        result: Any = None
        exc: BaseException | None = None
        try:
            result = self._run_body_blocking(step, scope, args, kwargs)
        except (Abort, Suspend, DeadlineExceeded, ReplayEnd, CancelRun):
            raise
        except BaseException as e:
            if not isinstance(e, Exception) and not run.cancelling:
                raise
            exc = e
        if run.aborted is not None:
            raise Abort(run.aborted)
        if run.cancelling and exc is not None:
            raise CancelRun()  # a body stopped by the cancel: no outcome, the run ends
        events, value, error, backoff = self._outcome(step, pos, attempt, started, result, exc)
        run.commit(events)
        if scope.obs is not None:
            scope.obs.ended(events, exc, backoff)
        if error is not None:
            raise error
        return value

    def _run_body_blocking(
        self, step: StepDef, scope: StepScope, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        token = _step.set(scope)
        otel = scope.obs.enter() if scope.obs is not None else None
        try:
            if step.is_async:
                loop = self.run.s.loop
                coro = step.fn(*args, **kwargs)
                if step.timeout is not None:
                    coro = asyncio.wait_for(coro, step.timeout)
                if loop is None or not loop.is_running():
                    return asyncio.run(coro)
                return await_threadsafe(coro, loop, step, self.run, scope)
            fn = self._sync_body(step, scope)
            if step.timeout is None:
                return fn(*args, **kwargs)
            return call_with_timeout(step, fn, args, kwargs, scope)
        finally:
            if scope.obs is not None:
                scope.obs.exit(otel)
            _step.reset(token)

    def _sync_body(self, step: StepDef, scope: StepScope) -> Callable[..., Any]:
        """What runs a plain ``def`` body in a thread: the body, or (``executor="process"``)
        the call that runs it in the worker's process pool and waits for it."""
        pool = self.run.s.process_pool
        if step.executor is not Executor.PROCESS or pool is None:
            return step.fn
        return functools.partial(pool.call, step, self.run, scope)

    def call_async(
        self, step: StepDef, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Awaitable[Any]:
        """A step call from an async workflow: the position is taken now, at the call, and
        the returned coroutine runs (or replays) the step.

        Until it starts, the coroutine is listed in the run's ``unawaited``: if the code
        stops first (another call of an ``asyncio.gather`` raised), the runner closes it.
        """
        pos, slot, attempt = self._slot(step)
        if slot is not None and slot.completed:
            return _ready(self._replayed(step, pos, slot))
        coro = self._run_async(step, pos, attempt, args, kwargs)
        self.run.unawaited[pos] = (coro, CallKind.STEP, step.name)
        return coro

    async def _run_async(
        self, step: StepDef, pos: int, attempt: int, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        run = self.run
        run.unawaited.pop(pos, None)
        task = asyncio.current_task()
        if task is not None:
            run.inflight.add(task)
        try:
            if run.aborted is not None:
                raise Abort(run.aborted)
            raw_args, refused = self._encode_args(step, pos, attempt, args, kwargs)
            if raw_args is None:
                await run.commit_async(refused)
                raise self._refused(refused)
            await run.settle_starts_async()  # the body may act on children started before it
            scope = self._scope(step, pos, attempt, raw_args)
            started = run.now()
            result: Any = None
            exc: BaseException | None = None
            token = _step.set(scope)
            otel = scope.obs.enter() if scope.obs is not None else None
            try:
                result = await self._body_async(step, scope, args, kwargs)
            except (Abort, Suspend, DeadlineExceeded, ReplayEnd, CancelRun):
                raise
            except asyncio.CancelledError:
                if run.cancelling:
                    raise CancelRun() from None
                raise
            except Exception as e:
                exc = e
            finally:
                if scope.obs is not None:
                    scope.obs.exit(otel)
                _step.reset(token)
            if run.aborted is not None:
                raise Abort(run.aborted)
            if run.cancelling and exc is not None:
                raise CancelRun()  # a body stopped by the cancel: no outcome, the run ends
            events, value, error, backoff = self._outcome(step, pos, attempt, started, result, exc)
            await run.commit_async(events)
            if scope.obs is not None:
                scope.obs.ended(events, exc, backoff)
            if error is not None:
                raise error
            return value
        finally:
            if task is not None:
                run.inflight.discard(task)

    async def _body_async(
        self, step: StepDef, scope: StepScope, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        if step.is_async:
            # A task of its own, so that a cancel of the run reaches the body alone.
            task = asyncio.ensure_future(step.fn(*args, **kwargs))
            self.run.body_started(task)
            try:
                if step.timeout is not None:
                    return await wait_for(task, step, scope)
                return await task
            finally:
                self.run.body_ended(task)
        loop = asyncio.get_running_loop()
        ctx = contextvars.copy_context()
        pool = self.run.s.step_pool
        fn = self._sync_body(step, scope)
        fut = loop.run_in_executor(pool, lambda: ctx.run(fn, *args, **kwargs))
        if step.timeout is not None:
            return await wait_for(fut, step, scope)
        return await fut


def _forgot_await(
    exc: SerializationError | PayloadTooLargeError, result: Any, step: StepDef
) -> BaseException:
    """A result that cannot be encoded: if it is an awaitable, say what was forgotten."""
    if not inspect.isawaitable(result):
        return exc
    if inspect.iscoroutine(result):
        result.close()  # nothing will await it now
    return SerializationError(
        f"step {step.name!r} returned {type(result).__name__} {result!r}, which cannot be "
        "recorded: did you forget await? (an async call inside the step, or a step called "
        "without await)"
    )


def _does_not_decode(exc: msgspec.ValidationError, result: Any, step: StepDef) -> BaseException:
    """A result that encodes but does not decode into the step's return annotation."""
    shown = repr(result)
    if len(shown) > 80:
        shown = shown[:77] + "..."
    return SerializationError(
        f"step {step.name!r} returned {type(result).__name__} {shown}, which does not "
        f"decode into its return annotation {_type_name(step.result_type)}: {exc}"
    )


def _type_name(type_: Any) -> str:
    return type_.__name__ if isinstance(type_, type) else repr(type_)


def _ready(value: Any) -> asyncio.Future[Any]:
    """An awaitable already holding ``value`` (no warning if it is never awaited)."""
    fut = asyncio.get_running_loop().create_future()
    fut.set_result(value)
    return fut
