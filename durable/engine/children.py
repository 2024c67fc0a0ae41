"""Child workflow calls of a run (:class:`ChildCalls`, a collaborator of its state): start a
child once, journaled at the parent's position, and wait (suspended) until it ends."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Coroutine
from typing import Any

import msgspec

from durable.engine.control import ReplayEnd, Suspend
from durable.engine.core import RunCore
from durable.engine.registry import WorkflowDef
from durable.engine.replay import Slot
from durable.errors import RunCancelledError, RunFailedError, SerializationError
from durable.events import CallKind, ChildData, ErrorInfo, Failure, NewEvent, ResultData
from durable.events import EventType as T
from durable.log.store import NewRun
from durable.states import TERMINAL, Status, SuspendReason, WaitFor

__all__ = ["ChildCalls"]


class ChildCalls:
    """The child workflow calls of one run: a collaborator of its state, working through
    its :class:`~durable.engine.core.RunCore`."""

    __slots__ = ("run",)

    def __init__(self, run: RunCore) -> None:
        self.run = run

    def _slot(self, wf: WorkflowDef) -> tuple[int, Slot | None, str]:
        run = self.run
        pos = run.next_position()
        slot = run.take(pos, CallKind.CHILD, wf.name)
        return pos, slot, f"{run.run_id}:{pos}"

    def _known(self, wf: WorkflowDef, pos: int, slot: Slot) -> tuple[bool, Any, list[NewEvent]]:
        """For a child already started: (finished, value-or-exception, events to record)."""
        run = self.run
        if slot.completed:
            assert slot.result is not None
            return True, run.decode(slot.result, wf.result_type, pos, "child result"), []
        if slot.failure is not None:
            return True, _child_error(slot.child_id or "", slot.failure), []
        assert slot.child_id is not None
        row = run.child_status.get(slot.child_id)
        if row is None:
            row = run.s.store.get_run(slot.child_id)
        if row is None or row.status not in TERMINAL:
            return False, None, []
        if run.replay_only:
            raise ReplayEnd()
        if row.status == Status.COMPLETED:
            raw = row.output or b"\xc0"
            ev = NewEvent(
                T.CHILD_COMPLETED,
                ResultData(result=msgspec.Raw(raw)),
                position=pos,
                name=wf.name,
            )
            return True, run.decode(raw, wf.result_type, pos, "child result"), [ev]
        cancelled = row.status == Status.CANCELLED
        err = ErrorInfo(
            type=row.error_type or ("RunCancelledError" if cancelled else "Error"),
            message=row.error_message or f"child run {row.id} {row.status}",
            module="",
        )
        ev = NewEvent(T.CHILD_FAILED, Failure(error=err), position=pos, name=wf.name)
        return True, _child_error(row.id, err), [ev]

    def _new(
        self,
        wf: WorkflowDef,
        pos: int,
        child_id: str,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
    ) -> tuple[list[NewEvent], NewRun]:
        run = self.run
        if run.replay_only:
            raise ReplayEnd()
        wf.signature.check(args, kwargs)
        what = f"arguments of workflow {wf.name!r}"
        try:
            data = run.s.codec.encode_args(args, kwargs, what)
        except SerializationError as exc:
            if any(inspect.isawaitable(a) for a in (*args, *kwargs.values())):
                raise SerializationError(
                    f"{what}: an argument is an awaitable, which cannot be recorded: did you "
                    "forget await?"
                ) from exc
            raise
        ev = NewEvent(T.CHILD_STARTED, ChildData(child_id=child_id), position=pos, name=wf.name)
        child = NewRun(
            id=child_id,
            workflow=wf.name,
            queue=wf.queue,
            input=data,
            priority=run.row.priority,
            timeout=wf.timeout,
            parent_id=run.run_id,
            trace_context=run.obs.child_context(wf.name, child_id, run.row.trace_context),
            version=run.s.version,
        )
        return [ev], child

    def _wait(self, child_id: str) -> Suspend:
        self.run.wait_children.append(child_id)
        return self.run.suspend(Suspend(None, WaitFor.children(), SuspendReason.CHILD))

    def call(self, wf: WorkflowDef, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        """A child workflow call from a sync workflow: start it (once) and wait for it."""
        pos, slot, child_id = self._slot(wf)
        if slot is not None:
            finished, value, events = self._known(wf, pos, slot)
            if finished:
                if events:
                    self.run.commit(events)
                if isinstance(value, BaseException):
                    raise value
                return value
            raise self._wait(child_id)
        events, child = self._new(wf, pos, child_id, args, kwargs)
        self.run.commit(events, new_runs=[child])
        raise self._wait(child_id)

    def call_async(
        self, wf: WorkflowDef, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Coroutine[Any, Any, Any]:
        """A child workflow call from an async workflow (awaitable; listed in the run's
        ``unawaited`` until it starts, as a step call is)."""
        pos, slot, child_id = self._slot(wf)
        events: list[NewEvent] | None = None
        child: NewRun | None = None
        if slot is None:
            events, child = self._new(wf, pos, child_id, args, kwargs)
        coro = self._run_async(wf, pos, slot, child_id, events, child)
        self.run.unawaited[pos] = (coro, CallKind.CHILD, wf.name)
        return coro

    async def _run_async(
        self,
        wf: WorkflowDef,
        pos: int,
        slot: Slot | None,
        child_id: str,
        events: list[NewEvent] | None,
        child: NewRun | None,
    ) -> Any:
        run = self.run
        run.unawaited.pop(pos, None)
        task = asyncio.current_task()
        if task is not None:
            run.inflight.add(task)
        try:
            if slot is not None:
                finished, value, evs = self._known(wf, pos, slot)
                if finished:
                    if evs:
                        await run.commit_async(evs)
                    if isinstance(value, BaseException):
                        raise value
                    return value
                raise self._wait(child_id)
            assert events is not None and child is not None
            await run.commit_async(events, new_runs=[child])
            raise self._wait(child_id)
        finally:
            if task is not None:
                run.inflight.discard(task)


def _child_error(child_id: str, err: ErrorInfo) -> BaseException:
    if err.type == "RunCancelledError":
        return RunCancelledError(child_id)
    return RunFailedError(child_id, err.type, err.message)
