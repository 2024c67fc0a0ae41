"""Moving a virtual clock forward (``durable.testing``), as one write transaction of the log.

A lease expires on the log's clock: a jump of the clock by 30 days would expire every lease
held at that instant, and the worker holding it would see its own run taken over. So a jump
happens inside one write transaction that also pushes forward, by the same amount, every
held lease (and the ``due_at`` of a running run, which is its lease expiry), every worker's
last heartbeat and every watch's mark. Under SQLite's write lock no lease can be taken or
renewed in between: each transaction sees either the old clock and the old expiries or the
new clock and the pushed ones.

A jump to the next due run reads that run's ``due_at`` inside the same transaction, so a
signal (or a start, a cancel) committed just before it is seen: the clock never jumps past a
run that had become due meanwhile.
"""

from __future__ import annotations

from collections.abc import Callable

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from durable.log.db import Db
from durable.log.rows import status_is
from durable.log.schema import runs, workers
from durable.states import Status

__all__ = ["shift_held", "skip_to_next_due"]


def shift_held(db: Db, seconds: float, move: Callable[[float], None]) -> None:
    """Call ``move(seconds)`` (which moves the clock) inside a write transaction that pushes
    every held lease, heartbeat and watch mark ``seconds`` forward with it."""
    with db.write() as c:
        move(seconds)
        _push(c, seconds)


def skip_to_next_due(db: Db, now: Callable[[], float], move: Callable[[float], None]) -> bool:
    """Move the clock (``move(seconds)``) to the earliest ``due_at`` of the log, read in the
    transaction, if it is still ahead of ``now()``; push what :func:`shift_held` pushes.
    Returns whether some run is due by then (false: none is due at all)."""
    with db.write() as c:
        earliest = c.execute(
            sa.select(sa.func.min(runs.c.due_at)).where(runs.c.due_at.is_not(None))
        ).scalar()
        if earliest is None:
            return False
        ahead = float(earliest) - now() + 1e-6
        if ahead > 0:
            move(ahead)
            _push(c, ahead)
        return True


def _push(c: Connection, seconds: float) -> None:
    c.execute(
        sa.update(runs)
        .where(status_is(Status.RUNNING))
        .values(
            lease_expires_at=runs.c.lease_expires_at + seconds,
            due_at=runs.c.due_at + seconds,
        )
    )
    c.execute(
        sa.update(runs)
        .where(runs.c.watched_until.is_not(None))
        .values(watched_until=runs.c.watched_until + seconds)
    )
    c.execute(sa.update(workers).values(last_seen=workers.c.last_seen + seconds))
