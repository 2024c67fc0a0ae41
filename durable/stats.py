"""``durable.WorkflowStats``: processing time, success rate, errors and queue depth per
workflow and queue, computed from the log's aggregates (``Store.run_stats``)."""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from durable.log.store import RunStats
from durable.types import Status

__all__ = ["WorkflowStats", "percentile", "workflow_stats"]


@dataclass(frozen=True, slots=True)
class WorkflowStats:
    """What the runs of one workflow on one queue did in a window of time, and what waits."""

    workflow: str
    """The workflow's name."""
    queue: str
    """The queue."""
    window_seconds: float | None
    """The window the counts cover (``None``: since the log began)."""
    completed: int = 0
    """Runs that completed in the window."""
    failed: int = 0
    """Runs that failed in the window."""
    cancelled: int = 0
    """Runs cancelled in the window."""
    p50_seconds: float | None = None
    """Median processing time of the completed runs (first taken by a worker to the end)."""
    p95_seconds: float | None = None
    """95th percentile of the same."""
    pending: int = 0
    """Runs waiting for a worker now: the queue depth."""
    running: int = 0
    """Runs a worker executes now."""
    sleeping: int = 0
    """Runs sleeping, waiting for a signal, a child or a retry now."""
    top_errors: tuple[tuple[str, int], ...] = ()
    """The error types of the window's failed runs, most frequent first, with their counts."""
    blocked: int = 0
    """Runs parked now because a worker's code could not replay them."""

    @property
    def finished(self) -> int:
        """Runs that ended in the window."""
        return self.completed + self.failed + self.cancelled

    @property
    def success_rate(self) -> float | None:
        """completed / (completed + failed); cancelled runs count for neither."""
        n = self.completed + self.failed
        return self.completed / n if n else None

    @property
    def errors_per_hour(self) -> float | None:
        """Failed runs per hour over the window (``None`` without a window)."""
        if not self.window_seconds:
            return None
        return self.failed * 3600.0 / self.window_seconds


def percentile(values: Sequence[float], q: float) -> float | None:
    """The ``q`` quantile (0..1) of ``values``, linearly interpolated; ``None`` if empty."""
    if not values:
        return None
    xs = sorted(values)
    k = (len(xs) - 1) * q
    lo, hi = math.floor(k), math.ceil(k)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


def workflow_stats(raw: RunStats) -> list[WorkflowStats]:
    """One :class:`WorkflowStats` per (workflow, queue) seen, sorted by workflow and queue."""
    window = None if raw.window_start is None else raw.now - raw.window_start
    counts: dict[tuple[str, str], Counter[Status]] = defaultdict(Counter)
    for w, q, status, n in (*raw.finished, *raw.unfinished):
        counts[(w, q)][Status(status)] += n
    durations: dict[tuple[str, str], list[float]] = defaultdict(list)
    for w, q, seconds in raw.durations:
        durations[(w, q)].append(max(seconds, 0.0))
    errors: dict[tuple[str, str], Counter[str]] = defaultdict(Counter)
    for w, q, error_type, n in raw.errors:
        errors[(w, q)][error_type] += n
    out = []
    for key in sorted(counts):
        c, d = counts[key], durations.get(key, [])
        out.append(
            WorkflowStats(
                workflow=key[0],
                queue=key[1],
                window_seconds=window,
                completed=c[Status.COMPLETED],
                failed=c[Status.FAILED],
                cancelled=c[Status.CANCELLED],
                p50_seconds=percentile(d, 0.5),
                p95_seconds=percentile(d, 0.95),
                pending=c[Status.PENDING],
                running=c[Status.RUNNING],
                sleeping=c[Status.SLEEPING],
                top_errors=tuple(errors[key].most_common()),
                blocked=c[Status.BLOCKED],
            )
        )
    return out
