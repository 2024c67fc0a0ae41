"""Leasing on SQLite: look first, then take under the one write lock.

Every write transaction holds SQLite's write lock from its ``BEGIN IMMEDIATE``, so that the
candidates a lease selects cannot be taken by another worker before it updates them, and a
queue's limits are counted with no other writer about (no lock of its own). An idle worker
first looks for a due run in a read, which takes no lock: idle workers then never contend for
the write lock.
"""

from __future__ import annotations

from durable.log.db import Db
from durable.log.dialect import RawTx
from durable.log.leasing import CandidateTaker, LeaseAsk, Leasing, runnable
from durable.log.runs import Runs
from durable.log.store import Lease

__all__ = ["SqliteLeasing"]


def _no_queue_lock(_c: RawTx, _queue: str) -> None:
    """Nothing: the write transaction excludes every other writer already."""


class SqliteLeasing(Leasing):
    """A read that looks for a due run, then :class:`CandidateTaker` in a write."""

    def __init__(self, db: Db, runs_part: Runs, max_stalls: int) -> None:
        self._db = db
        self._prep = db.prep
        self._taker = CandidateTaker(db, runs_part, max_stalls, _no_queue_lock)

    def lease(self, ask: LeaseAsk) -> list[Lease]:
        db = self._db
        if not ask.reclaim:
            # Look before taking the write lock: idle workers then never contend for it.
            with db.raw(write=False) as c:
                key, build, params = runnable(ask.workflows, ask.queues, version=ask.version)
                params.update(now=db.now(c), lim=1)
                if self._prep.first(c, key, build, params) is None:
                    return []
        with db.raw() as c:
            return self._taker.take(c, ask, db.now(c))
