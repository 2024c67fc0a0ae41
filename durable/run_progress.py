"""A run's progress and time left, derived from its ``runs`` row when it is read.

The row follows what the run does as its journal grows (the log's projection): the run-level
progress the workflow reports, the steps completed, the step in flight and the progress
reported below the run's level. What the row cannot know, how many steps the run will take,
is the number the last completed run of the same workflow took; the reader looks it up
(:meth:`~durable.log.store.Store.steps_of_last_completed`) and passes it here.
"""

from __future__ import annotations

from durable.log.store import RunRow
from durable.types import Status

__all__ = ["UNFINISHED_CAP", "progress_of"]

UNFINISHED_CAP = 0.99
"""The most a derived progress shows before the run completes: a run may take more steps
than the one it is measured against."""


def progress_of(
    row: RunRow, expected_steps: int | None, now: float
) -> tuple[float | None, float | None]:
    """``(progress, eta)`` of a run: see :attr:`RunInfo.progress` and :attr:`RunInfo.eta`.

    ``progress``: 1.0 when completed; ``None`` before a worker first takes the run; else the
    run-level value the workflow reported last, or else ``(steps completed + the progress of
    the work in flight) / expected_steps`` (at most :data:`UNFINISHED_CAP`), or else 0.0.
    ``eta``: for an unfinished run with some progress, the time since its first start scaled
    by what is left, ``elapsed * (1 - p) / p``; 0.0 once completed; else ``None``.
    """
    status = row.status
    if status is Status.COMPLETED:
        return 1.0, 0.0
    if row.started_at is None:
        return None, None
    if row.progress is not None:
        p = row.progress
    elif expected_steps:
        done = row.steps_completed + (row.step_progress or 0.0)
        p = min(done / expected_steps, UNFINISHED_CAP)
    else:
        p = 0.0
    p = min(max(p, 0.0), 1.0)
    if status.is_terminal or p <= 0.0:
        return p, None
    elapsed = max(now - row.started_at, 0.0)
    return p, elapsed * (1.0 - p) / p
