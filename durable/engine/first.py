"""``durable.wait_first``: wait until the first of some children started with
``durable.start_child`` ends (:class:`FirstOf`, a collaborator of a run's state).

The call takes a position of its own. Once one of the children has ended, the one that
ended first (the earliest ``finished_at`` of the log's clock; the first in the list on a
tie) is journaled there as ``first_finished``, and a replay returns the same handle whatever
the children have done since. Until then the run suspends, holding no worker, and the log
wakes it when a child ends.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Sequence
from typing import Any

from durable.engine.children import ChildCalls, ChildHandle
from durable.engine.control import ReplayEnd
from durable.engine.core import RunCore
from durable.engine.replay import HINT, Slot
from durable.errors import NonDeterminismError
from durable.events import CallKind, FirstData, NewEvent
from durable.events import EventType as T
from durable.log.store import RunRow
from durable.states import TERMINAL

__all__ = ["FirstOf"]

WHAT = "durable.wait_first"


class FirstOf:
    """The ``wait_first`` calls of one run."""

    __slots__ = ("children", "run")

    def __init__(self, run: RunCore, children: ChildCalls) -> None:
        self.run = run
        self.children = children

    def wait(self, handles: Any) -> Any:
        """``durable.wait_first(handles)``: the handle of the child that ended first (in an
        async workflow, the awaitable of it)."""
        hs = self._check(handles)
        run = self.run
        pos = run.next_position()
        slot = run.take(pos, CallKind.WAIT_FIRST, None)
        if run.workflow.is_async:
            coro = self._wait_async(pos, slot, hs)
            run.unawaited[pos] = (coro, CallKind.WAIT_FIRST, WHAT)
            return coro
        if slot is not None and slot.winner is not None:
            return self._recorded(pos, slot, hs)
        if run.replay_only:
            raise ReplayEnd()
        return self._decide(pos, hs, self._rows(hs))

    def _wait_async(
        self, pos: int, slot: Slot | None, hs: list[ChildHandle]
    ) -> Coroutine[Any, Any, ChildHandle]:
        async def wait() -> ChildHandle:
            run = self.run
            run.unawaited.pop(pos, None)
            if slot is not None and slot.winner is not None:
                return self._recorded(pos, slot, hs)
            if run.replay_only:
                raise ReplayEnd()
            task = asyncio.current_task()
            if task is not None:
                run.inflight.add(task)
            try:
                rows = await asyncio.to_thread(self._rows, hs)
                return self._decide(pos, hs, rows)
            finally:
                if task is not None:
                    run.inflight.discard(task)

        return wait()

    def _check(self, handles: Any) -> list[ChildHandle]:
        """The handles, checked before a position is taken."""
        if isinstance(handles, ChildHandle | str | bytes):
            raise TypeError(f"{WHAT} takes a list of child handles, e.g. {WHAT}([a, b])")
        try:
            hs = list(handles)
        except TypeError:
            raise TypeError(
                f"{WHAT} takes a list of child handles (from durable.start_child), not "
                f"{type(handles).__qualname__}"
            ) from None
        if not hs:
            raise ValueError(f"{WHAT} needs at least one child handle")
        for h in hs:
            if not isinstance(h, ChildHandle):
                raise TypeError(
                    f"{WHAT} takes the handles that durable.start_child returns, not "
                    f"{type(h).__qualname__}"
                )
            self.children.check_here(h, WHAT)
        return hs

    def _rows(self, hs: Sequence[ChildHandle]) -> dict[str, RunRow]:
        """The rows of the children, but those this execution started itself (whose start
        may not even be committed: they cannot have ended)."""
        ids = list(dict.fromkeys(h.id for h in hs if not h._fresh))
        return {r.id: r for r in self.run.s.store.get_runs(ids)} if ids else {}

    def _decide(self, pos: int, hs: list[ChildHandle], rows: dict[str, RunRow]) -> ChildHandle:
        """Journal the child that ended first, or suspend until one ends."""
        ended: list[tuple[float, int]] = []
        for i, h in enumerate(hs):
            row = rows.get(h.id)
            if row is not None and row.status in TERMINAL:
                ended.append((row.finished_at or 0.0, i))
            elif self.children.recorded(h) is not None:  # seen ended, resumed since
                ended.append((float("-inf"), i))
        if not ended:
            raise self.children.wait([h.id for h in hs])
        index = min(ended)[1]
        winner = hs[index]
        data = FirstData(child_id=winner.id, index=index)
        self.run.emit(NewEvent(T.FIRST_FINISHED, data, position=pos))
        self.children.observe(winner, rows.get(winner.id))
        return winner

    def _recorded(self, pos: int, slot: Slot, hs: list[ChildHandle]) -> ChildHandle:
        """The winner the journal records at ``pos``, among ``hs``."""
        i = slot.winner_index
        if 0 <= i < len(hs) and hs[i].id == slot.winner:
            return hs[i]
        for h in hs:
            if h.id == slot.winner:
                return h
        ids = [h.id for h in hs]
        exc = NonDeterminismError(
            f"run {self.run.run_id!r} at position {pos}: {WHAT} recorded child "
            f"{slot.winner!r} as the first to end, but the code now waits for {ids}. {HINT}",
            position=pos,
            called=f"{WHAT} of {ids}",
            recorded=f"{WHAT} won by {slot.winner!r}",
        )
        self.run.nondeterminism = self.run.nondeterminism or exc
        raise exc
