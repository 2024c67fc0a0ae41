"""The pages about the whole log: queues, statistics, schedules.

Everything is read through the public client: ``Client.stats`` (the log's aggregates) and
``Client.list_runs`` (the workers page reads ``Client.workers`` itself; the schedules page
``Client.schedules``).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from durable import Client, RunInfo, ScheduleInfo, Status, WorkflowStats

__all__ = ["QueueRow", "queue_rows", "schedules"]

OLDEST_SCAN = 5000
"""At most this many pending runs of a queue are read to find its oldest one."""


@dataclass(slots=True)
class QueueRow:
    """One queue: what waits on it and what runs."""

    queue: str
    pending: int = 0
    running: int = 0
    sleeping: int = 0
    blocked: int = 0
    """Runs parked because a worker's code could not replay them."""
    workflows: list[str] = field(default_factory=list)
    oldest_due: dt.datetime | None = None
    """When the longest-waiting run that is due now became due."""
    delayed: int = 0
    """Pending runs whose start is delayed into the future."""
    scanned_all: bool = True

    def oldest_age(self, now: dt.datetime) -> float | None:
        """Seconds the longest-waiting due run has waited."""
        return (now - self.oldest_due).total_seconds() if self.oldest_due else None


def _due(run: RunInfo) -> dt.datetime:
    return run.wake_at or run.created_at


def queue_rows(client: Client, stats: list[WorkflowStats], now: dt.datetime) -> list[QueueRow]:
    """One row per queue seen in the log, busiest first."""
    rows: dict[str, QueueRow] = {}
    for s in stats:
        row = rows.setdefault(s.queue, QueueRow(s.queue))
        row.pending += s.pending
        row.running += s.running
        row.sleeping += s.sleeping
        row.blocked += s.blocked
        if s.pending or s.running or s.sleeping or s.blocked:
            row.workflows.append(s.workflow)
    for row in rows.values():
        if not row.pending:
            continue
        pending = client.list_runs(Status.PENDING, queue=row.queue, limit=OLDEST_SCAN)
        row.scanned_all = len(pending) < OLDEST_SCAN
        due = [_due(r) for r in pending if _due(r) <= now]
        row.delayed = len(pending) - len(due)
        row.oldest_due = min(due) if due else None
    return sorted(rows.values(), key=lambda r: (-(r.pending + r.running), r.queue))


def schedules(client: Client) -> list[ScheduleInfo]:
    """The log's schedules, by name."""
    return client.schedules()
