"""Parking a run that the code cannot replay: the ``run_blocked`` event and its reason.

A :class:`~durable.errors.NonDeterminismError` met while replaying a run does not fail it:
the runner appends ``run_blocked`` (the reason: position, what the code called, what the
journal holds; and the code version of the worker), which releases the lease, clears
``due_at`` and notes the version among those that could not replay the run. A worker of
another version takes it up again by itself (see ``durable.log.blocked``);
``client.resume`` does so on demand.
"""

from __future__ import annotations

from durable.engine.steps import error_info
from durable.errors import NonDeterminismError
from durable.events import BlockedData, NewEvent
from durable.events import EventType as T

__all__ = ["arguments_changed", "blocked_event", "tried_versions"]


def tried_versions(column: str | None) -> list[str]:
    """The versions of a ``blocked_versions`` column (each between newlines; ``""`` is a
    worker that declares none)."""
    if column is None or len(column) < 2:
        return []
    return column[1:-1].split("\n")


def arguments_changed(run_id: str, workflow: str, exc: Exception) -> NonDeterminismError:
    """The mismatch of a run whose recorded arguments no longer decode into its
    workflow's signature."""
    return NonDeterminismError(
        f"run {run_id!r}: its recorded arguments no longer decode into the signature of "
        f"workflow {workflow!r}: {exc}",
        called=f"workflow {workflow!r}",
        recorded="arguments that do not decode into its signature",
    )


def blocked_event(
    exc: NonDeterminismError, version: str | None, blocked_versions: str | None
) -> NewEvent:
    """The ``run_blocked`` event of a run the code of ``version`` cannot replay."""
    tried = tried_versions(blocked_versions)
    mine = version or ""
    if mine not in tried:
        tried.append(mine)
    data = BlockedData(
        error=error_info(exc),
        position=exc.position,
        called=exc.called,
        recorded=exc.recorded,
        version=version,
        tried=tuple(tried),
    )
    return NewEvent(T.RUN_BLOCKED, data)
