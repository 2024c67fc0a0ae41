"""``durable.patched(change_id)`` and ``durable.deprecate_patch(change_id)``: a journaled
marker, so that a change of workflow code can be taken by new runs while the runs recorded
before it replay the old code.

A patch marker is a positional event (``patch_marked``, kind ``patch``, named by the change
id). At the position a call of ``patched`` would take:

- past the journal's end (live execution: a new run, or an old run that had not got this far
  when it stopped), the marker is recorded and ``patched`` returns ``True``;
- the journal holds this id's marker: it is consumed and ``patched`` returns ``True``;
- the journal holds anything else there (a call of the code before the patch, or nothing at
  a position before its end): ``patched`` returns ``False`` and takes no position, so the
  old branch's calls meet their own events.

``deprecate_patch`` is for the code after every run without the marker has finished: it
consumes the marker where the journal holds it, and takes no position and records nothing
where it does not. A journal that holds another call at that position was recorded by code
before the patch (the old branch), which the deprecated code no longer has: that is a
:class:`NonDeterminismError` naming the id and the position, raised at once.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from durable.engine.control import ReplayEnd
from durable.engine.replay import HINT, describe
from durable.errors import NonDeterminismError, RunCancelledError
from durable.events import CallKind, EmptyData, NewEvent
from durable.events import EventType as T

if TYPE_CHECKING:
    from durable.engine.core import RunCore

__all__ = ["Patches", "check_change_id"]


def check_change_id(change_id: object, what: str) -> str:
    """The change id of a ``patched``/``deprecate_patch`` call, checked.

    Raises:
        TypeError: not a string.
        ValueError: empty or only white space.
    """
    if not isinstance(change_id, str):
        raise TypeError(f"{what} needs a change id string, got {type(change_id).__name__}")
    if not change_id.strip():
        raise ValueError(f"{what} needs a non-empty change id")
    return change_id


class Patches:
    """The patch markers of one run in execution."""

    __slots__ = ("_run", "_seen")

    def __init__(self, run: RunCore) -> None:
        self._run = run
        self._seen: dict[str, int] = {}
        """Each change id asked about in this execution, and the position it was asked at."""

    def _place(self, change_id: str, position: int) -> None:
        first = self._seen.setdefault(change_id, position)
        if first != position:
            raise ValueError(
                f"patch {change_id!r} is used at two places of run {self._run.run_id!r}: "
                f"at position {first} and again at position {position}; give each change "
                "its own id"
            )

    def patched(self, change_id: str) -> bool:
        """``durable.patched(change_id)`` (see the module's docstring)."""
        run = self._run
        pos, slot = run.peek_position()
        self._place(change_id, pos)
        if slot is not None and slot.kind is CallKind.PATCH and slot.name == change_id:
            run.advance_to(pos)
            return True
        if slot is not None or pos <= run.journal.max_position:
            return False  # recorded by the code before the patch: take no position
        run.advance_to(pos)
        if run.replay_only:
            raise ReplayEnd()
        if run.abandoned:
            raise RunCancelledError(run.run_id)
        run.emit(NewEvent(T.PATCH_MARKED, EmptyData(), position=pos, name=change_id))
        return True

    def deprecate(self, change_id: str) -> None:
        """``durable.deprecate_patch(change_id)`` (see the module's docstring)."""
        run = self._run
        pos, slot = run.peek_position()
        self._place(change_id, pos)
        if slot is None:
            return
        if slot.kind is CallKind.PATCH and slot.name == change_id:
            run.advance_to(pos)
            return
        recorded = describe(slot.kind, slot.name)
        exc = NonDeterminismError(
            f"run {run.run_id!r} at position {pos}: deprecate_patch({change_id!r}) meets "
            f"{recorded} in the journal, without the patch's marker: the run "
            f"was recorded by code from before durable.patched({change_id!r}), whose branch "
            f"the deprecated code no longer has; deploy code with "
            f"durable.patched({change_id!r}) until such runs have finished. {HINT}",
            position=pos,
            called=f"deprecate_patch {change_id!r}",
            recorded=recorded,
        )
        run.nondeterminism = run.nondeterminism or exc
        raise exc
