"""Child workflow calls of a run (:class:`ChildCalls`, a collaborator of its state): start a
child once, journaled at the parent's position, and wait (suspended) until it ends: at once
for a child call (``child(x)`` in workflow code), later for a child started without waiting
(``durable.start_child``, whose :class:`ChildHandle` waits when asked).

Both record the same events at the child's position: ``child_started`` (appended with the
child's row, in one transaction) and, once the code has seen the child end,
``child_completed`` or ``child_failed``. The child's id is ``"{parent}:{position}"``, so a
replay, a resume or a takeover never starts it twice.
"""

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
from durable.errors import (
    NotInRunError,
    RunCancelledError,
    RunFailedError,
    SerializationError,
    UnknownWorkflowError,
)
from durable.events import CallKind, ChildData, ErrorInfo, Failure, NewEvent, ResultData
from durable.events import EventType as T
from durable.log.store import NewRun, RunRow
from durable.states import TERMINAL, Status, SuspendReason, WaitFor

__all__ = ["ChildCalls", "ChildHandle"]

Outcome = tuple[bool, Any]
"""How a child ended, as its parent's code sees it: ``(raised, value)``, ``value`` being the
child's result, or the exception that waiting for it raises."""


class ChildHandle:
    """A child run started by ``durable.start_child`` without waiting for it.

    ``id`` is the child's run id (``"{parent id}:{position}"``), ``workflow`` its workflow's
    name. :meth:`result` waits for it, durably. A handle belongs to the workflow code of the
    run that started it: it cannot be passed to a step, returned, or used by another run.
    """

    __slots__ = ("_calls", "_fresh", "_outcome", "_slot", "_wf", "id", "position")

    def __init__(
        self, calls: ChildCalls, wf: WorkflowDef, position: int, child_id: str, slot: Slot | None
    ) -> None:
        self._calls = calls
        self._wf = wf
        self._slot = slot
        self._fresh = slot is None
        """Started by this execution of the code: it cannot have ended before its start
        was even appended, so its row is not read."""
        self._outcome: Outcome | None = None
        self.id = child_id
        """The child's run id: ``client.get(id)`` outside the run."""
        self.position = position
        """The parent's position that started it."""

    @property
    def workflow(self) -> str:
        """The name of the child's workflow."""
        return self._wf.name

    def result(self) -> Any:
        """Wait for the child to end and return its result; in an async workflow, the
        awaitable of it (``await child.result()``).

        The run suspends (holding no worker) until the child ends; the result, or the
        error, is journaled at the child's position, so a replay returns the same.

        Raises:
            RunFailedError: the child ended ``FAILED`` (``error_type`` is its error's).
            RunCancelledError: the child ended ``CANCELLED``.
            NotInRunError: called outside the workflow code of the run that started it.
        """
        return self._calls.result(self)

    def __repr__(self) -> str:
        return f"ChildHandle({self.id!r}, workflow={self.workflow!r})"


class ChildCalls:
    """The child workflow calls of one run: a collaborator of its state, working through
    its :class:`~durable.engine.core.RunCore`."""

    __slots__ = ("run",)

    def __init__(self, run: RunCore) -> None:
        self.run = run

    # -- starting ------------------------------------------------------------------------

    def resolve(self, workflow: Any, what: str) -> WorkflowDef:
        """The definition of ``workflow``: a function decorated with ``@app.workflow``, or
        the name of a workflow of this run's App."""
        wf = getattr(workflow, "__durable_workflow__", None)
        if isinstance(wf, WorkflowDef):
            return wf
        if isinstance(workflow, str):
            found = self.run.s.registry.workflows.get(workflow)
            if found is None:
                raise UnknownWorkflowError(f"{what}: no workflow {workflow!r} is registered")
            return found
        raise TypeError(
            f"{what} takes a workflow (a function decorated with @app.workflow) or its "
            f"name, not {type(workflow).__qualname__}"
        )

    def start(self, wf: WorkflowDef, args: tuple[Any, ...], kwargs: dict[str, Any]) -> ChildHandle:
        """``durable.start_child``: start the child (once) and return its handle at once.

        The start is appended without waiting (later appends of the run are ordered after
        it, and a step body that follows runs once it is committed); a replay finds it
        journaled and starts nothing."""
        pos, slot, child_id = self._slot(wf)
        if slot is None:
            self._emit_start(*self._new(wf, pos, child_id, args, kwargs))
        elif slot.child_id is not None:
            child_id = slot.child_id
        return ChildHandle(self, wf, pos, child_id, slot)

    def _emit_start(self, event: NewEvent, child: NewRun) -> None:
        """Append ``child_started`` with the child's row, without waiting; the next step
        body waits for it (``RunCore.settle_starts``)."""
        fut = self.run.emit(event, new_runs=[child])
        if fut is not None:
            self.run.starting.append(fut)

    def _slot(self, wf: WorkflowDef) -> tuple[int, Slot | None, str]:
        run = self.run
        pos = run.next_position()
        slot = run.take(pos, CallKind.CHILD, wf.name)
        return pos, slot, f"{run.run_id}:{pos}"

    def _new(
        self,
        wf: WorkflowDef,
        pos: int,
        child_id: str,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
    ) -> tuple[NewEvent, NewRun]:
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
        return ev, child

    # -- waiting -------------------------------------------------------------------------

    def recorded(self, h: ChildHandle) -> Outcome | None:
        """How ``h``'s child ended, if its parent already knows: from the journal, or
        recorded by this execution."""
        slot = h._slot
        if h._outcome is None and slot is not None:
            if slot.completed:
                assert slot.result is not None
                value = self.run.decode(slot.result, h._wf.result_type, h.position, "child result")
                h._outcome = (False, value)
            elif slot.failure is not None:
                h._outcome = (True, _child_error(h.id, slot.failure))
        return h._outcome

    def known_row(self, h: ChildHandle) -> tuple[bool, RunRow | None]:
        """``(True, row)`` when the child's row need not be read (``row``: as read when the
        execution began, or ``None`` for a child it started itself), else ``(False, None)``."""
        if h._fresh:
            return True, None
        row = self.run.child_status.get(h.id)
        return (True, row) if row is not None else (False, None)

    def observe(self, h: ChildHandle, row: RunRow | None) -> Outcome | None:
        """Record the end of ``h``'s child, if its ``row`` says it has ended (appended
        without waiting: what the code does with it is appended after it)."""
        if h._outcome is not None:
            return h._outcome
        if row is None or row.status not in TERMINAL:
            return None
        run = self.run
        if run.replay_only:
            raise ReplayEnd()
        pos, name = h.position, h._wf.name
        if row.status == Status.COMPLETED:
            raw = row.output or b"\xc0"
            value = run.decode(raw, h._wf.result_type, pos, "child result")
            done = ResultData(result=msgspec.Raw(raw))
            run.emit(NewEvent(T.CHILD_COMPLETED, done, position=pos, name=name))
            h._outcome = (False, value)
            return h._outcome
        cancelled = row.status == Status.CANCELLED
        err = ErrorInfo(
            type=row.error_type or ("RunCancelledError" if cancelled else "Error"),
            message=row.error_message or f"child run {row.id} {row.status}",
            module="",
        )
        run.emit(NewEvent(T.CHILD_FAILED, Failure(error=err), position=pos, name=name))
        h._outcome = (True, _child_error(row.id, err))
        return h._outcome

    def wait(self, child_ids: list[str]) -> Suspend:
        """The suspension until one of ``child_ids`` ends (a wake-up from the log)."""
        self.run.wait_children.extend(child_ids)
        return self.run.suspend(Suspend(None, WaitFor.children(), SuspendReason.CHILD))

    def result(self, h: ChildHandle) -> Any:
        """``ChildHandle.result()``: the child's result (in an async workflow, its
        awaitable), suspending the run until the child ends."""
        self.check_here(h, "result()")
        if self.run.workflow.is_async:
            return self._result_async(h)
        out = self.recorded(h)
        if out is None:
            known, row = self.known_row(h)
            out = self.observe(h, row if known else self.run.s.store.get_run(h.id))
        if out is None:
            raise self.wait([h.id])
        return _unwrap(out)

    async def _result_async(self, h: ChildHandle) -> Any:
        run = self.run
        task = asyncio.current_task()
        if task is not None:
            run.inflight.add(task)
        try:
            out = self.recorded(h)
            if out is None:
                known, row = self.known_row(h)
                if not known:
                    row = await asyncio.to_thread(run.s.store.get_run, h.id)
                out = self.observe(h, row)
            if out is None:
                raise self.wait([h.id])
            return _unwrap(out)
        finally:
            if task is not None:
                run.inflight.discard(task)

    def check_here(self, h: ChildHandle, what: str) -> None:
        """``h`` may be waited for here: in the workflow code of the run that started it."""
        from durable.engine.runtime import current_or_none, current_step

        if h._calls is not self or current_or_none() is not self.run or current_step():
            raise NotInRunError(
                f"child {h.id!r}: {what} can only be called in the workflow code of the run "
                f"that started it ({self.run.run_id!r}), not in a step body or another run"
            )

    # -- child calls (start and wait at once) ------------------------------------------

    def call(self, wf: WorkflowDef, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        """A child workflow call from a sync workflow: start it (once) and wait for it."""
        return self.result(self.start(wf, args, kwargs))

    def call_async(
        self, wf: WorkflowDef, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Coroutine[Any, Any, Any]:
        """A child workflow call from an async workflow (awaitable; listed in the run's
        ``unawaited`` until it starts, as a step call is: a call never awaited starts no
        child)."""
        pos, slot, child_id = self._slot(wf)
        new = self._new(wf, pos, child_id, args, kwargs) if slot is None else None
        if slot is not None and slot.child_id is not None:
            child_id = slot.child_id
        coro = self._call_async(ChildHandle(self, wf, pos, child_id, slot), new)
        self.run.unawaited[pos] = (coro, CallKind.CHILD, wf.name)
        return coro

    async def _call_async(self, h: ChildHandle, new: tuple[NewEvent, NewRun] | None) -> Any:
        self.run.unawaited.pop(h.position, None)
        if new is not None:
            self._emit_start(*new)
        return await self._result_async(h)


def _unwrap(out: Outcome) -> Any:
    raised, value = out
    if raised:
        raise value
    return value


def _child_error(child_id: str, err: ErrorInfo) -> BaseException:
    if err.type == "RunCancelledError":
        return RunCancelledError(child_id)
    return RunFailedError(child_id, err.type, err.message)
