"""Bounded queues: the room a start checks inside its insert's transaction.

A queue declared with ``max_pending=N`` holds at most ``N`` runs **not yet started**: runs
``pending`` that no worker has ever taken (``started_at`` is null), delayed ones included. A
run leaves that count when a worker first takes it, or when it ends (a cancel) before that;
a run handed back to the queue after its first take (a retry, a worker's clean stop, a
resume) has started and is not counted.

A start that is bounded (its :class:`~durable.log.store.NewRun` carries ``max_pending``)
inserts its runs, counts the queue, and raises :class:`~durable.QueueFullError` if the
count is over the limit and it created a run: the transaction rolls back, so nothing is
written, and a batch is written whole or not at all. An idempotent start of an id that
exists creates nothing and is never refused. The count and the insert are one decision
among concurrent starters from any number of processes: SQLite's write transactions are
serialized (``BEGIN IMMEDIATE``); on Postgres the start takes a transaction-scoped advisory
lock per bounded queue (before its insert) that only bounded starts take, so unbounded
starts pay nothing. The count reads the ``(queue, status, started_at)`` index alone (no
table row), so a start into a queue near a limit of ``N`` reads about ``N`` index entries.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import sqlalchemy as sa

from durable.errors import QueueFullError
from durable.log.db import Db
from durable.log.dialect import RawTx
from durable.log.rows import status_is
from durable.log.schema import runs
from durable.log.store import NewRun
from durable.states import Status

__all__ = ["Bounds"]


def _count_pending() -> Any:
    """How many runs of ``:queue`` are not yet started (read from the queue index alone)."""
    return sa.select(sa.func.count()).where(
        runs.c.queue == sa.bindparam("queue"),
        status_is(Status.PENDING),
        runs.c.started_at.is_(None),
    )


class Bounds:
    """The limits one start (one run, or a batch) must respect: ``{queue: max_pending}``."""

    __slots__ = ("_limits",)

    def __init__(self, new: Iterable[NewRun]) -> None:
        limits: dict[str, int] = {}
        for run in new:
            if run.max_pending is not None:
                limits[run.queue] = run.max_pending
        self._limits = limits

    def __bool__(self) -> bool:
        return bool(self._limits)

    def lock(self, db: Db, c: RawTx) -> None:
        """Serialize this start with the others into the same bounded queues (first thing
        in the transaction, in one order of queues, so that two batches never deadlock)."""
        if self._limits:
            db.dialect.lock_pending(c, sorted(self._limits))

    def check(self, db: Db, c: RawTx, created: Sequence[NewRun]) -> None:
        """After the insert: raise :class:`QueueFullError` (rolling the transaction back)
        if a queue that this start added runs to now holds more than its limit."""
        for queue in sorted({r.queue for r in created if r.queue in self._limits}):
            limit = self._limits[queue]
            row = db.prep.first(c, "count_pending", _count_pending, {"queue": queue})
            if int(row[0]) > limit:
                raise QueueFullError(queue, limit)
