"""Step calls of :class:`~durable.engine.runtime.RunState`: replay a recorded outcome, or run
the body (in a thread with a timeout, on the loop from a thread, awaited with one) and journal
its outcome, with a retry when its policy allows; and how an error is recorded
(:func:`error_info`) and raised again at replay (``_rebuild``).

``runtime.py`` re-exports :class:`StepScope` and :func:`error_info`.
"""

from __future__ import annotations

import asyncio
import contextvars
import threading
import traceback
from collections.abc import Awaitable, Callable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import msgspec

from durable.engine.control import Abort, DeadlineExceeded, ReplayEnd, Suspend
from durable.engine.policy import is_retryable
from durable.engine.registry import Registry, StepDef
from durable.engine.replay import Slot
from durable.errors import PayloadTooLargeError, RunFailedError, SerializationError, StepFailedError
from durable.events import ErrorInfo, Failure, NewEvent, ResultData, StepStartedData, WakeData
from durable.events import EventType as T
from durable.log.store import AppendResult
from durable.states import SuspendReason
from durable.telemetry import RunTelemetry, StepTelemetry

if TYPE_CHECKING:
    from durable.engine.runtime import Services

__all__ = ["StepCalls", "StepScope", "error_info"]

_step: contextvars.ContextVar[StepScope | None] = contextvars.ContextVar(
    "durable_step", default=None
)


@dataclass(slots=True)
class StepScope:
    """The step whose body runs: for nested calls, progress and ``durable.info()``."""

    name: str
    position: int
    attempt: int
    stage: str | None
    obs: StepTelemetry | None = None


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


class StepCalls:
    """Step calls: a mixin of :class:`~durable.engine.runtime.RunState`."""

    if TYPE_CHECKING:  # what the mixin uses of RunState
        s: Services
        replay_only: bool
        inflight: set[asyncio.Future[Any]]
        aborted: str | None
        on_step_error: Callable[[BaseException], None] | None
        obs: RunTelemetry

        def _next_position(self) -> int: ...
        def _take(self, pos: int, kind: str, name: str | None) -> Slot | None: ...
        def _decode(self, raw: bytes, type_: Any, pos: int, what: str) -> Any: ...
        def suspend(self, s: Suspend) -> Suspend: ...
        def commit(self, events: list[NewEvent], **kw: Any) -> AppendResult: ...
        async def commit_async(self, events: list[NewEvent], **kw: Any) -> AppendResult: ...

        def now(self) -> float: ...
        def emit(self, event: NewEvent) -> Future[AppendResult] | None: ...
        @property
        def stage(self) -> str | None: ...

    # -- steps ---------------------------------------------------------------------------

    def _step_slot(self, step: StepDef) -> tuple[int, Slot | None, int]:
        """Position, journal slot and the try number of a step call; raises what replay
        dictates (a recorded failure, a suspension during backoff)."""
        pos = self._next_position()
        slot = self._take(pos, "step", step.name)
        attempt = 1
        if slot is not None:
            if slot.failure is not None:
                raise _rebuild(self.s.registry, slot.failure)
            if not slot.completed:
                attempt = slot.failed_attempts + 1
                if self.replay_only:
                    raise ReplayEnd()
                if slot.retry_wake_at is not None and self.now() < slot.retry_wake_at:
                    raise self.suspend(Suspend(slot.retry_wake_at, None, SuspendReason.RETRY))
        elif self.replay_only:
            raise ReplayEnd()
        return pos, slot, attempt

    def _replayed(self, step: StepDef, pos: int, slot: Slot) -> Any:
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
                T.STEP_COMPLETED,
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
            T.STEP_FAILED,
            Failure(error=err, retryable=retryable, stage=stage, started_at=started),
            position=pos,
            name=step.name,
            attempt=attempt,
        )
        if retryable:
            assert step.retry is not None
            wake = self.now() + step.retry.delay(attempt, self.s.rng)
            again = NewEvent(
                T.RETRY_SCHEDULED,
                WakeData(wake_at=wake, error=err),
                position=pos,
                name=step.name,
                attempt=attempt + 1,
            )
            return [failed, again], None, self.suspend(Suspend(wake, None, SuspendReason.RETRY))
        cls = self.s.registry.error_type(err.module, err.type)
        return [failed], None, exc if cls is not None else _rebuild(self.s.registry, err)

    def _scope(self, step: StepDef, pos: int, attempt: int) -> StepScope:
        """The body's scope; journals ``step_started`` (without waiting for the commit)."""
        data = StepStartedData(stage=self.stage)
        self.emit(NewEvent(T.STEP_STARTED, data, position=pos, name=step.name, attempt=attempt))
        obs = self.obs.step(step.name, pos, attempt, self.stage)
        return StepScope(step.name, pos, attempt, self.stage, obs)

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
        if scope.obs is not None:
            scope.obs.ended(events, exc)
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
            if scope.obs is not None:
                scope.obs.exit(otel)
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
            otel = scope.obs.enter() if scope.obs is not None else None
            try:
                result = await self._body_async(step, args, kwargs)
            except (Abort, Suspend, DeadlineExceeded, ReplayEnd):
                raise
            except asyncio.CancelledError:
                raise
            except Exception as e:
                exc = e
            finally:
                if scope.obs is not None:
                    scope.obs.exit(otel)
                _step.reset(token)
            if self.aborted is not None:
                raise Abort(self.aborted)
            events, value, error = self._outcome(step, pos, attempt, started, result, exc)
            await self.commit_async(events)
            if scope.obs is not None:
                scope.obs.ended(events, exc)
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
