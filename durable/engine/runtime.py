"""The object behind the per-run ContextVar: positions, replay, and every journaled call.

One :class:`RunState` exists per run being executed (or replayed) by this process. The public
in-run functions (``durable.sleep``, ``durable.stage``...) and the step and workflow wrappers
delegate to it through :func:`current`.

It is a :class:`~durable.engine.core.RunCore` (positions, journal, appends) with the in-run
functions; its step calls (``steps.py``), child workflow calls (``children.py``) and
``wait_first`` calls (``first.py``) are collaborators it holds. :class:`StepScope` and
:func:`error_info` are re-exported from ``steps.py``.
"""

from __future__ import annotations

import contextlib
import contextvars
import datetime as dt
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import msgspec

from durable.engine.children import ChildCalls
from durable.engine.control import ReplayEnd, Suspend
from durable.engine.core import RunCore
from durable.engine.first import FirstOf
from durable.engine.patches import Patches
from durable.engine.registry import WorkflowDef
from durable.engine.replay import Journal, Slot
from durable.engine.resources import ResourceFactory
from durable.engine.services import Services
from durable.engine.steps import StepCalls, StepScope, _step, error_info
from durable.errors import NotInRunError, RunCancelledError
from durable.events import (
    CallKind,
    EmptyData,
    MessageData,
    NewEvent,
    OutputData,
    ProgressData,
    ProgressScope,
    ResultData,
    SignalData,
    StageData,
    WakeData,
)
from durable.events import EventType as T
from durable.log.store import RunRow
from durable.outputs import check_output_key
from durable.states import SuspendReason, WaitFor
from durable.types import RunInfo, Status

__all__ = ["RunState", "StepScope", "current", "current_or_none", "current_step", "error_info"]

_current: contextvars.ContextVar[RunState | None] = contextvars.ContextVar(
    "durable_run", default=None
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


class RunState(RunCore):
    """A run in execution: its :class:`RunCore`, the in-run functions, and collaborators
    for its step calls (:attr:`steps`), its child workflow calls (:attr:`children`), its
    ``wait_first`` calls (:attr:`first`) and its patch markers (:attr:`patches`)."""

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
        super().__init__(
            services,
            row,
            epoch,
            journal,
            workflow,
            replay_only=replay_only,
            clock_offset=clock_offset,
        )
        self._counts: dict[str, int] = {}
        self.steps = StepCalls(self)
        self.children = ChildCalls(self)
        self.first = FirstOf(self, self.children)
        self.patches = Patches(self)
        # What the step and workflow wrappers call, bound once (no lookup per call).
        self.call_step = self.steps.call
        self.call_step_async = self.steps.call_async
        self.call_child = self.children.call
        self.call_child_async = self.children.call_async

    def _key(self, kind: str, name: str | None) -> str:
        step = _step.get()
        scope = f"s{step.position}.{step.attempt}" if step else "w"
        base = f"{kind}|{scope}|{name or ''}"
        with self._lock:
            n = self._counts.get(base, 0) + 1
            self._counts[base] = n
        return f"{base}|{n}"

    def _mark(
        self,
        event_type: T,
        name: str | None,
        make: Callable[[str], Any],
        check: Callable[[], None] | None = None,
    ) -> bool:
        """Journal a mark once; whether it was new (not replayed). ``check`` runs before a
        new mark is written (a mark already journaled is not checked again)."""
        if self.replay_only:
            return False
        if self.abandoned:  # a body still running after its cancel's grace
            raise RunCancelledError(self.run_id)
        key = self._key(event_type.value, name)
        if key in self.journal.keys:
            return False
        if check is not None:
            check()
        self.emit(NewEvent(event_type, make(key), name=name))
        return True

    # -- stages, progress, messages, outputs ---------------------------------------------

    @contextlib.contextmanager
    def stage_block(
        self, name: str, resources: dict[str, ResourceFactory] | None = None
    ) -> Iterator[None]:
        """``durable.stage(name, resources=)``: the resources close when the block ends."""
        self._mark(T.STAGE_ENTERED, name, lambda k: StageData(key=k, stage=self.stage))
        self.stages.append(name)
        scope = self.resources.push(name, resources) if resources else None
        self.obs.stage_entered(name)
        ok = False
        error: BaseException | None = None
        try:
            yield
            ok = True
        except Exception as exc:
            ok = True
            error = exc
            raise
        except BaseException as exc:  # a suspension, a cancel, an abort: still closes
            error = exc
            raise
        finally:
            if scope is not None:
                self.resources.pop(scope, error)
            self.stages.pop()
            self.obs.stage_left(name, error if isinstance(error, Exception) else None)
            if ok:
                outer = self.stage
                self._mark(T.STAGE_LEFT, name, lambda k: StageData(key=k, stage=outer))

    def progress(self, value: float) -> None:
        """``durable.progress(value)``: of the current step, else stage, else run."""
        v = float(value)
        if not 0.0 <= v <= 1.0:
            raise ValueError("progress is a fraction from 0.0 to 1.0")
        step = _step.get()
        if step is not None:
            scope, name = ProgressScope.STEP, step.name
        elif self.stage is not None:
            scope, name = ProgressScope.STAGE, self.stage
        else:
            scope, name = ProgressScope.RUN, None
        stage = self.stage if step is None else step.stage
        if self._mark(
            T.PROGRESS, name, lambda k: ProgressData(value=v, scope=scope, key=k, stage=stage)
        ):
            self.obs.event("progress", {"durable.progress": v}, step.obs if step else None)

    def message(self, text: str, fields: dict[str, Any]) -> None:
        """``durable.message(text, **fields)``."""
        if fields:
            self.s.codec.encode(fields, "message fields")
        step = _step.get()
        stage = step.stage if step else self.stage
        if self._mark(
            T.MESSAGE,
            step.name if step else None,
            lambda k: MessageData(key=k, text=str(text), fields=fields or None, stage=stage),
        ):
            self.obs.event("message", {"durable.message": str(text)}, step.obs if step else None)

    def output(self, key: str, value: Any) -> None:
        """``durable.output(key, value)``: under the current stage, and in a step body under
        that step call (see :mod:`durable.outputs`)."""
        raw = self.s.codec.encode(value, f"output {key!r}")
        step = _step.get()
        stage = (step.stage if step else self.stage) or MAIN_STAGE
        at = step.position if step else None
        self._mark(
            T.OUTPUT,
            key,
            lambda k: OutputData(value=msgspec.Raw(raw), stage=stage, key=k, step=at),
            lambda: check_output_key(key, step.name if step else None, self.s.registry.steps),
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
            version=row.version,
        )

    # -- recorded values -----------------------------------------------------------------

    def value(self, kind: str, produce: Callable[[], Any]) -> Any:
        """``durable.now()``, ``random()``, ``uuid4()``: journaled per call."""
        pos = self.next_position()
        slot = self.take(pos, CallKind.VALUE, kind)
        type_ = _VALUE_TYPES[kind]
        if slot is not None and slot.completed:
            assert slot.result is not None
            return self.decode(slot.result, type_, pos, kind)
        if self.replay_only:
            raise ReplayEnd()
        raw = self.s.codec.encode(produce(), kind)
        self.emit(
            NewEvent(T.VALUE_RECORDED, ResultData(result=msgspec.Raw(raw)), position=pos, name=kind)
        )
        return self.s.codec.decode(raw, type_)

    # -- sleep and signals ---------------------------------------------------------------

    def sleep(self, seconds: float) -> None:
        """``durable.sleep(seconds)``: a durable timer."""
        seconds = float(seconds)
        if seconds != seconds or seconds < 0:
            raise ValueError("sleep needs a non-negative number of seconds")
        pos = self.next_position()
        slot = self.take(pos, CallKind.SLEEP, None)
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
            started = NewEvent(T.SLEEP_STARTED, WakeData(wake_at=wake), position=pos)
        if now >= wake:
            if started is not None:
                self.emit(started)
            self.emit(NewEvent(T.SLEEP_FIRED, EmptyData(), position=pos))
            return
        if started is not None:
            self.deferred.append(started)
        raise self.suspend(Suspend(wake, None, SuspendReason.SLEEP))

    def wait_signal(self, name: str, timeout: float | None) -> Any:
        """``durable.wait_signal(name, timeout)``: the oldest unconsumed payload, or None."""
        if timeout is not None and timeout < 0:
            raise ValueError("timeout cannot be negative")
        pos = self.next_position()
        slot = self.take(pos, CallKind.WAIT, name)
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
            return None if payload is None else self.decode(payload, Any, pos, "signal")
        if deadline is not None and self.now() >= deadline:
            timed_out = SignalData(timed_out=True)
            self.commit([NewEvent(T.SIGNAL_RECEIVED, timed_out, position=pos, name=name)])
            return None
        if slot is None or not slot.started:
            wait = NewEvent(T.WAIT_STARTED, WakeData(wake_at=deadline), position=pos, name=name)
            self.deferred.append(wait)
        raise self.suspend(Suspend(deadline, WaitFor.signal(name), SuspendReason.SIGNAL))

    def _payload(self, slot: Slot, pos: int) -> Any:
        assert slot.payload is not None
        return self.decode(slot.payload, Any, pos, "signal")
