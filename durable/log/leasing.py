"""What taking runs means on every backend: which runs are runnable, how a lease is set, the
``lease_taken`` events, a queue's room under its limits, and the recovery limit.

Each backend takes runs its own way (:class:`Leasing`, chosen once when the store opens):
SQLite in ``leasing_sqlite.py``, Postgres in ``leasing_postgres.py``. Both may use
:class:`CandidateTaker`, which first locks the candidates and then takes them.

Taking a run sets its lease (owner, expiry, a new epoch), marks it ``running``, stamps
``started_at`` at its first take, and sets ``deadline_at`` from the workflow's ``timeout`` if
the run has none yet: a run's timeout counts from its first start (see ``runs.py``).
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from durable.events import ErrorInfo, EventType, Failure, LeaseData, NewEvent, encode_data
from durable.log.blocked import not_failed_by, version_key
from durable.log.db import Db
from durable.log.dialect import RawTx
from durable.log.rows import RUN_COLUMNS, binds, insert_events, named, run_row, status_is
from durable.log.runs import Runs
from durable.log.schema import runs
from durable.log.store import Lease, QueueLimit, RunRow
from durable.states import Status

__all__ = [
    "CANDIDATE",
    "Candidate",
    "CandidateTaker",
    "LeaseAsk",
    "Leasing",
    "lease_values",
    "recovery_limit",
    "room",
    "runnable",
]

T = EventType

_RUNNING = Status.RUNNING.value

CANDIDATE = (
    runs.c.id,
    runs.c.status,
    runs.c.lease_owner,
    runs.c.lease_epoch,
    runs.c.last_seq,
    runs.c.stalls,
)
"""What a lease needs to know of a candidate run before taking it."""


class Candidate(NamedTuple):
    """A row of :data:`CANDIDATE`."""

    id: str
    status: str
    lease_owner: str | None
    lease_epoch: int
    last_seq: int
    stalls: int


@dataclass(frozen=True, slots=True)
class LeaseAsk:
    """One call of :meth:`Store.lease`, checked: ``limit`` > 0, ``workflows`` not empty."""

    owner: str
    ttl: float
    workflows: Sequence[str]
    queues: Sequence[str] | None
    limit: int
    reclaim: Sequence[str]
    limited: dict[str, QueueLimit]
    """The limits of the queues (among ``queues``) that have any."""
    version: str | None = None
    """The code version of the asking worker: it never takes a run that this version could
    not replay (``blocked_versions``)."""

    def free_queues(self) -> list[str] | None:
        """The queues without limits (``None``: every queue but the limited ones)."""
        return None if self.queues is None else [q for q in self.queues if q not in self.limited]


class Leasing(abc.ABC):
    """How one backend takes runs (the rest of the lease contract is :class:`Leases`')."""

    @abc.abstractmethod
    def lease(self, ask: LeaseAsk) -> list[Lease]:
        """Take up to ``ask.limit`` runnable runs (see :meth:`Store.lease`)."""


def lease_values() -> dict[str, Any]:
    """The ``SET`` of taking a lease (binds ``owner``, ``now``, ``expires``)."""
    now: Any = sa.bindparam("now")
    expires: Any = sa.bindparam("expires")
    return {
        "status": Status.RUNNING.value,
        "lease_owner": sa.bindparam("owner"),
        "lease_epoch": runs.c.lease_epoch + 1,
        "lease_expires_at": expires,
        "due_at": expires,
        "wake_at": None,
        "waiting_for": None,
        "started_at": sa.func.coalesce(runs.c.started_at, now),
        "deadline_at": sa.func.coalesce(runs.c.deadline_at, now + runs.c.timeout),
        "last_seq": runs.c.last_seq + 1,
        "updated_at": now,
    }


def runnable(
    workflows: Sequence[str],
    queues: Sequence[str] | None,
    exclude: Sequence[str] = (),
    version: str | None = None,
) -> tuple[Hashable, Callable[[], Any], dict[str, Any]]:
    """Runs whose ``due_at`` has come, highest priority first, FIFO within it, locked
    ``FOR UPDATE SKIP LOCKED``, but those that code ``version`` could not replay: a prepared
    statement (key, builder, parameters), to which the caller adds ``now`` and ``lim``."""
    nw, nq, nx = len(workflows), None if queues is None else len(queues), len(exclude)

    def build() -> Any:
        q = sa.select(*CANDIDATE).where(
            runs.c.due_at <= sa.bindparam("now"),
            runs.c.workflow.in_(binds("w", nw)),
            not_failed_by(sa.bindparam("mine")),
        )
        if nq is not None:
            q = q.where(runs.c.queue.in_(binds("q", nq)))
        if nx:
            q = q.where(runs.c.queue.notin_(binds("x", nx)))
        return (
            q.order_by(runs.c.priority.desc(), runs.c.due_at, runs.c.id)
            .limit(sa.bindparam("lim", type_=sa.Integer))
            .with_for_update(skip_locked=True)
        )

    params = {**named("w", workflows), **named("x", exclude), "mine": version_key(version)}
    if queues is not None:
        params.update(named("q", queues))
    return ("runnable", nw, nq, nx), build, params


def room(c: Connection | RawTx, queue: str, lim: QueueLimit, now: float) -> int:
    """How many more runs of ``queue`` may be taken now, over every worker (the caller holds
    the queue's lock until its transaction ends, so that the count cannot go stale)."""
    out = 1 << 30
    if lim.concurrency is not None:
        running = c.execute(
            sa.select(sa.func.count())
            .select_from(runs)
            .where(runs.c.queue == queue, status_is(Status.RUNNING), runs.c.lease_expires_at > now)
        ).scalar_one()
        out = min(out, lim.concurrency - int(running))
    if lim.rate is not None:
        n, per = lim.rate
        started = c.execute(
            sa.select(sa.func.count())
            .select_from(runs)
            .where(runs.c.queue == queue, runs.c.started_at > now - per)
        ).scalar_one()
        out = min(out, n - int(started))
    return out


def recovery_limit(stalls: int) -> NewEvent:
    """The ``run_failed`` that ends a run whose lease expired ``stalls`` times without
    progress (the limit is the App's ``max_takeovers_without_progress``)."""
    err = ErrorInfo(
        type="RecoveryLimitExceeded",
        message=f"the run's lease expired {stalls} times without progress",
        module="durable",
    )
    return NewEvent(T.RUN_FAILED, Failure(error=err))


def _reclaimable(ask: LeaseAsk) -> Any:
    """Running runs leased by owners that are known to be gone."""
    conds: list[Any] = [runs.c.workflow.in_(list(ask.workflows))]
    if ask.queues is not None:
        conds.append(runs.c.queue.in_(list(ask.queues)))
    conds.append(not_failed_by(version_key(ask.version)))
    return (
        sa.select(*CANDIDATE)
        .where(status_is(Status.RUNNING), runs.c.lease_owner.in_(list(ask.reclaim)), *conds)
        .order_by(runs.c.priority.desc(), runs.c.due_at, runs.c.id)
        .limit(ask.limit)
        .with_for_update(skip_locked=True)
    )


class CandidateTaker:
    """Take runs in two steps inside one transaction: lock the candidates (``SELECT ... FOR
    UPDATE SKIP LOCKED``; on SQLite the write lock is held already), then set their leases in
    one ``UPDATE`` and append their ``lease_taken`` events in one ``INSERT``."""

    def __init__(
        self,
        db: Db,
        runs_part: Runs,
        max_stalls: int,
        lock_queue: Callable[[RawTx, str], None],
    ) -> None:
        self._db = db
        self._prep = db.prep
        self._runs = runs_part
        self._max_stalls = max_stalls
        self._lock_queue = lock_queue

    def take(self, c: RawTx, ask: LeaseAsk, now: float) -> list[Lease]:
        """Lease what ``ask`` finds runnable; end the runs taken over once too often."""
        limit = ask.limit
        candidates: list[Candidate] = []
        if ask.reclaim:
            candidates += [Candidate(*r) for r in c.execute(_reclaimable(ask))]
        taken = {r.id for r in candidates}
        free = ask.free_queues()
        if len(candidates) < limit and (free is None or free):
            key, build, params = runnable(
                ask.workflows, free, exclude=list(ask.limited), version=ask.version
            )
            params.update(now=now, lim=limit)
            found = self._prep.all(c, key, build, params)
            candidates += [Candidate(*r) for r in found if r[0] not in taken]
            candidates = candidates[:limit]
        for name, lim in ask.limited.items():
            self._lock_queue(c, name)
            now = self._db.now(c)  # after the wait for the lock: counts and stamps are fresh
            left = min(limit - len(candidates), room(c, name, lim, now))
            if left <= 0:
                continue
            key, build, params = runnable(ask.workflows, [name], version=ask.version)
            params.update(now=now, lim=left)
            taken = {r.id for r in candidates}
            found = self._prep.all(c, key, build, params)
            candidates += [Candidate(*r) for r in found if r[0] not in taken][:left]
        keep: list[Candidate] = []
        for x in candidates:
            if self._takeover(x, ask) and x.stalls + 1 > self._max_stalls:
                self._runs.end(c, x.id, recovery_limit(x.stalls + 1), now)
            else:
                keep.append(x)
        leased = self._take(c, keep, ask, now)
        if not leased:
            return []
        rows = self._read_rows(c, [rid for rid, _, _ in leased])
        return [Lease(rows[rid], epoch, takeover, now) for rid, epoch, takeover in leased]

    @staticmethod
    def _takeover(cand: Candidate, ask: LeaseAsk) -> bool:
        """A run still ``running`` under a lease whose holder stopped: expired, or reclaimed
        by a restart under the same identity (as on Postgres: both count as a stall)."""
        return cand.status == _RUNNING

    def _take(
        self, c: RawTx, cands: list[Candidate], ask: LeaseAsk, now: float
    ) -> list[tuple[str, int, bool]]:
        """Set the leases of the (already locked) candidates under new epochs in one
        statement, and append their ``lease_taken`` events in another."""
        if not cands:
            return []
        seen = {x.id: x for x in cands}
        takeovers = [x.id for x in cands if self._takeover(x, ask)]
        ids = list(seen)
        n, nt = len(ids), len(takeovers)

        def build() -> Any:
            stalls: Any = runs.c.stalls
            if nt:
                stalls = sa.case(
                    (runs.c.id.in_(binds("t", nt)), runs.c.stalls + 1), else_=runs.c.stalls
                )
            return (
                sa.update(runs)
                .where(runs.c.id.in_(binds("r", n)))
                .values(stalls=stalls, **lease_values())
                .returning(runs.c.id, runs.c.lease_epoch, runs.c.last_seq)
            )

        params = {
            **named("r", ids),
            **named("t", takeovers),
            "owner": ask.owner,
            "now": now,
            "expires": now + ask.ttl,
        }
        rows = self._prep.all(c, ("take", n, nt), build, params)
        taken = [(str(r[0]), int(r[1]), int(r[2])) for r in rows]
        if taken:
            self._prep.run(
                c,
                "insert_events",
                insert_events,
                [
                    {
                        "run_id": rid,
                        "seq": seq,
                        "type": T.LEASE_TAKEN.value,
                        "position": None,
                        "name": None,
                        "attempt": None,
                        "epoch": epoch,
                        "at": now,
                        "outcome": None,
                        "data": encode_data(
                            LeaseData(owner=ask.owner, takeover=self._takeover(seen[rid], ask))
                        ),
                        "append_id": None,
                    }
                    for rid, epoch, seq in taken
                ],
            )
        order = {x.id: i for i, x in enumerate(cands)}
        taken.sort(key=lambda t: order[t[0]])
        return [(rid, epoch, self._takeover(seen[rid], ask)) for rid, epoch, _ in taken]

    def _read_rows(self, c: RawTx, ids: list[str]) -> dict[str, RunRow]:
        """The rows of the runs just taken, by id."""
        found = self._prep.all(
            c,
            ("select_runs", len(ids)),
            lambda: sa.select(*RUN_COLUMNS).where(runs.c.id.in_(binds("r", len(ids)))),
            named("r", ids),
        )
        return {r[0]: run_row(r) for r in found}
