"""Child workflow calls of :class:`~durable.engine.runtime.RunState`: start a child once,
journaled at the parent's position, and wait (suspended) until it ends."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any

import msgspec

from durable.engine.control import ReplayEnd, Suspend
from durable.engine.registry import WorkflowDef
from durable.engine.replay import Slot
from durable.errors import RunFailedError
from durable.events import ChildData, ErrorInfo, Failure, NewEvent, ResultData
from durable.events import EventType as T
from durable.log.store import AppendResult, NewRun, RunRow
from durable.states import TERMINAL, Status, SuspendReason, WaitFor
from durable.telemetry import RunTelemetry

if TYPE_CHECKING:
    from durable.engine.runtime import Services


class ChildCalls:
    """Child workflow calls: a mixin of :class:`~durable.engine.runtime.RunState`."""

    if TYPE_CHECKING:  # what the mixin uses of RunState
        s: Services
        replay_only: bool
        inflight: set[asyncio.Future[Any]]
        row: RunRow
        run_id: str
        obs: RunTelemetry
        wait_children: list[str]
        child_status: dict[str, RunRow]

        def _next_position(self) -> int: ...
        def _take(self, pos: int, kind: str, name: str | None) -> Slot | None: ...
        def _decode(self, raw: bytes, type_: Any, pos: int, what: str) -> Any: ...
        def suspend(self, s: Suspend) -> Suspend: ...
        def commit(self, events: list[NewEvent], **kw: Any) -> AppendResult: ...
        async def commit_async(self, events: list[NewEvent], **kw: Any) -> AppendResult: ...

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
        if row is None or row.status not in TERMINAL:
            return False, None, []
        if self.replay_only:
            raise ReplayEnd()
        if row.status is Status.COMPLETED:
            raw = row.output or b"\xc0"
            ev = NewEvent(
                T.CHILD_COMPLETED,
                ResultData(result=msgspec.Raw(raw)),
                position=pos,
                name=wf.name,
            )
            return True, self._decode(raw, wf.result_type, pos, "child result"), [ev]
        cancelled = row.status is Status.CANCELLED
        err = ErrorInfo(
            type=row.error_type or ("RunCancelledError" if cancelled else "Error"),
            message=row.error_message or f"child run {row.id} {row.status}",
            module="",
        )
        ev = NewEvent(T.CHILD_FAILED, Failure(error=err), position=pos, name=wf.name)
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
        ev = NewEvent(T.CHILD_STARTED, ChildData(child_id=child_id), position=pos, name=wf.name)
        child = NewRun(
            id=child_id,
            workflow=wf.name,
            queue=wf.queue,
            input=data,
            priority=self.row.priority,
            timeout=wf.timeout,
            parent_id=self.run_id,
            trace_context=self.obs.child_context(wf.name, child_id, self.row.trace_context),
        )
        return [ev], child

    def _wait_child(self, child_id: str) -> Suspend:
        self.wait_children.append(child_id)
        return self.suspend(Suspend(None, WaitFor.children(), SuspendReason.CHILD))

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
