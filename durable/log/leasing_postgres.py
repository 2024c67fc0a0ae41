"""Leasing on Postgres: one statement takes the due runs and journals their leases.

Without owners to reclaim, the runs of the queues without limits are taken by one statement
that selects them ``FOR UPDATE SKIP LOCKED`` (concurrent workers skip each other's rows
instead of waiting), sets their leases, and inserts their ``lease_taken`` events::

    WITH t AS (UPDATE runs ... FROM (SELECT ... FOR UPDATE SKIP LOCKED) cand RETURNING ...),
         ins AS (INSERT INTO events SELECT ... FROM t)
    SELECT ... FROM t

A queue with limits is decided under a transaction-scoped advisory lock of its own
(``pg_advisory_xact_lock``), so that two workers never count its room at once; its runs are
then taken by the same statement. A lease that reclaims runs of owners known to be gone uses
:class:`~durable.log.leasing.CandidateTaker` (select the candidates, then take them), with
the same queue locks. There is no look before the lease: ``SKIP LOCKED`` makes it cheap.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from durable.events import EventType, LeaseData, encode_data
from durable.log.db import Db
from durable.log.dialect import RawTx, cursor
from durable.log.leasing import (
    CandidateTaker,
    LeaseAsk,
    Leasing,
    lease_values,
    recovery_limit,
    room,
    runnable,
)
from durable.log.rows import RUN_COLUMNS, run_row
from durable.log.runs import Runs
from durable.log.schema import events, runs
from durable.log.store import Lease, RunRow
from durable.states import Status

__all__ = ["PostgresLeasing", "lock_queue"]

T = EventType

_BYTES = sa.LargeBinary()
_RUNNING = Status.RUNNING.value


def lock_queue(c: RawTx, queue: str) -> None:
    """Serialize lease decisions about one queue's limits (until the transaction ends)."""
    cursor(c).execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"durable_queue:{queue}",))


class PostgresLeasing(Leasing):
    """Take due runs in one statement each (per queue with limits, and one for the rest)."""

    def __init__(self, db: Db, runs_part: Runs, max_stalls: int) -> None:
        self._db = db
        self._prep = db.prep
        self._runs = runs_part
        self._max_stalls = max_stalls
        self._taker = CandidateTaker(db, runs_part, max_stalls, lock_queue)

    def lease(self, ask: LeaseAsk) -> list[Lease]:
        db = self._db
        with db.raw() as c:
            now = db.now(c)
            if ask.reclaim:
                return self._taker.take(c, ask, now)
            rows: dict[str, RunRow] = {}
            leased: list[tuple[str, int, bool]] = []
            free = ask.free_queues()
            if free is None or free:
                q = runnable(ask.workflows, free, exclude=list(ask.limited), version=ask.version)
                q[2].update(now=now, lim=ask.limit)
                leased += self._take_runnable(c, q, ask, now, rows)
            for name, lim in ask.limited.items():
                lock_queue(c, name)
                now = db.now(c)  # after the wait for the lock: counts and stamps are fresh
                left = min(ask.limit - len(leased), room(c, name, lim, now))
                if left <= 0:
                    continue
                q = runnable(ask.workflows, [name], version=ask.version)
                q[2].update(now=now, lim=left)
                leased += self._take_runnable(c, q, ask, now, rows)
        return [Lease(rows[rid], epoch, takeover, now) for rid, epoch, takeover in leased]

    def _take_runnable(
        self, c: RawTx, q: Any, ask: LeaseAsk, now: float, rows_out: dict[str, RunRow]
    ) -> list[tuple[str, int, bool]]:
        """Lease what ``q`` (a :func:`~durable.log.leasing.runnable` statement) finds and
        append the ``lease_taken`` events, in one statement; the leased rows go into
        ``rows_out``. End the runs taken over once too often."""
        key, build_runnable, params = q

        def build() -> Any:
            cand = build_runnable().subquery("cand")
            took = (
                sa.update(runs)
                .where(runs.c.id == cand.c.id)
                .values(
                    stalls=sa.case(
                        (cand.c.status == _RUNNING, runs.c.stalls + 1), else_=runs.c.stalls
                    ),
                    **lease_values(),
                )
                .returning(*RUN_COLUMNS, cand.c.status.label("old_status"))
                .cte("t")
            )
            data = sa.case(
                (took.c.old_status == _RUNNING, sa.bindparam("data_takeover", type_=_BYTES)),
                else_=sa.bindparam("data_fresh", type_=_BYTES),
            )
            marks = sa.select(
                took.c.id,
                took.c.last_seq,
                sa.literal_column(f"'{T.LEASE_TAKEN.value}'"),
                took.c.lease_epoch,
                sa.bindparam("now"),
                data,
            )
            ins = (
                events.insert()
                .from_select(["run_id", "seq", "type", "epoch", "at", "data"], marks)
                .cte("ins")
            )
            cols = [took.c[col.name] for col in RUN_COLUMNS]
            return sa.select(*cols, took.c.old_status).add_cte(ins)

        params = {
            **params,
            "owner": ask.owner,
            "expires": now + ask.ttl,
            "data_takeover": encode_data(LeaseData(owner=ask.owner, takeover=True)),
            "data_fresh": encode_data(LeaseData(owner=ask.owner, takeover=False)),
        }
        found = self._prep.all(c, ("take_runnable", key), build, params)
        taken: list[tuple[str, int, bool]] = []
        for r in found:
            row, takeover = run_row(r[:-1]), r[-1] == _RUNNING
            if takeover and row.stalls > self._max_stalls:
                self._runs.end(c, row.id, recovery_limit(row.stalls), now)
                continue
            rows_out[row.id] = row
            taken.append((row.id, row.lease_epoch, takeover))
        return taken
