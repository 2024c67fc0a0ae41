"""Leases: taking runs (through the backend's :class:`~durable.log.leasing.Leasing`),
extending them, handing them back, and what workers ask about them (owners, the next due).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from durable.events import EventType, NewEvent, SuspendData
from durable.log.blocked import not_failed_by, version_key
from durable.log.db import Db
from durable.log.journal import Journal
from durable.log.leasing import LeaseAsk, Leasing
from durable.log.rows import binds, named, status_is
from durable.log.schema import events, runs
from durable.log.store import AppendRequest, Lease, QueueLimit
from durable.states import Status, SuspendReason

__all__ = ["Leases"]

T = EventType

_LEASE_ENDS = [
    T.RUN_COMPLETED.value,
    T.RUN_FAILED.value,
    T.RUN_CANCELLED.value,
    T.RUN_SUSPENDED.value,
]
"""Events with which a lease's holder ends its own lease."""


class Leases:
    """Take, extend and hand back leases."""

    def __init__(self, db: Db, leasing: Leasing, journal: Journal) -> None:
        self._db = db
        self._prep = db.prep
        self._leasing = leasing
        self._journal = journal

    def lease(
        self,
        owner: str,
        ttl: float,
        workflows: Sequence[str],
        queues: Sequence[str] | None,
        limit: int,
        reclaim: Sequence[str] = (),
        limits: dict[str, QueueLimit] | None = None,
        version: str | None = None,
    ) -> list[Lease]:
        """See :meth:`Store.lease`."""
        if limit <= 0 or not workflows:
            return []
        limited = {
            q: lim
            for q, lim in (limits or {}).items()
            if (queues is None or q in queues) and (lim.concurrency or lim.rate)
        }
        ask = LeaseAsk(owner, ttl, workflows, queues, limit, reclaim, limited, version)
        return self._leasing.lease(ask)

    def heartbeat(self, owner: str, ttl: float, held: dict[str, int]) -> set[str]:
        """See :meth:`Store.heartbeat`."""
        if not held:
            return set()
        db = self._db
        with db.raw() as c:
            now = db.now(c)
            rows = c.execute(
                sa.update(runs)
                .where(
                    runs.c.lease_owner == owner,
                    status_is(Status.RUNNING),
                    sa.tuple_(runs.c.id, runs.c.lease_epoch).in_(list(held.items())),
                )
                .values(lease_expires_at=now + ttl, due_at=now + ttl)
                .returning(runs.c.id, runs.c.lease_epoch)
            ).all()
            still = {r[0]: int(r[1]) for r in rows}
            missed = [rid for rid, ep in held.items() if still.get(rid) != ep]
            if not missed:
                return set()
            # Not extended: taken over or cancelled (the run moved to a newer epoch), or
            # ended or suspended by this very lease a moment ago: only the first is lost.
            # This lease's own last event tells them apart.
            own_end = {
                r[0]
                for r in c.execute(
                    sa.select(events.c.run_id).where(
                        sa.tuple_(events.c.run_id, events.c.epoch).in_(
                            [(rid, held[rid]) for rid in missed]
                        ),
                        events.c.type.in_(_LEASE_ENDS),
                    )
                )
            }
        return {rid for rid in missed if rid not in own_end}

    def release(self, held: dict[str, int]) -> None:
        """See :meth:`Store.release`."""
        if not held:
            return
        reqs = [
            AppendRequest(
                rid,
                ep,
                [NewEvent(T.RUN_SUSPENDED, SuspendData(reason=SuspendReason.RELEASED))],
            )
            for rid, ep in held.items()
        ]
        self._journal.append(reqs)

    def owners_running(self, workflows: Sequence[str]) -> list[str]:
        """See :meth:`Store.owners_running`."""
        q = (
            sa.select(runs.c.lease_owner)
            .where(status_is(Status.RUNNING), runs.c.workflow.in_(list(workflows)))
            .distinct()
        )
        with self._db.read() as c:
            return [r[0] for r in c.execute(q) if r[0] is not None]

    def next_due(
        self, workflows: Sequence[str], queues: Sequence[str] | None, version: str | None = None
    ) -> float | None:
        """See :meth:`Store.next_due`."""
        if not workflows:
            return None
        nw, nq = len(workflows), None if queues is None else len(queues)

        def build() -> Any:
            q = sa.select(sa.func.min(runs.c.due_at)).where(
                runs.c.due_at.is_not(None),
                runs.c.workflow.in_(binds("w", nw)),
                not_failed_by(sa.bindparam("mine")),
            )
            return q if nq is None else q.where(runs.c.queue.in_(binds("q", nq)))

        params = {**named("w", workflows), "mine": version_key(version)}
        if queues is not None:
            params.update(named("q", queues))
        with self._db.raw(write=False) as c:
            row = self._prep.first(c, ("next_due", nw, nq), build, params)
            v = row[0] if row is not None else None
        return float(v) if v is not None else None
