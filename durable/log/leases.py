"""The lease statements of :class:`~durable.log.sqlstore.SqlStore`: take, heartbeat, release.

Which runs a worker may take (due, within its queues' limits, or held by owners known to be
gone), under a new epoch each, and the stall limit on runs taken over without progress.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from typing import Any, NamedTuple

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from durable.events import (
    ErrorInfo,
    EventType,
    Failure,
    LeaseData,
    NewEvent,
    SuspendData,
    encode_data,
)
from durable.log.dialect import RawTx
from durable.log.projection import assignments, project
from durable.log.schema import events, runs
from durable.log.sqlbase import _RUN_COLUMNS, _TERMINAL, SqlBase, _run, insert_events
from durable.log.store import AppendRequest, Lease, QueueLimit, RunRow
from durable.states import SuspendReason

T = EventType


_CANDIDATE = (
    runs.c.id,
    runs.c.status,
    runs.c.lease_owner,
    runs.c.lease_epoch,
    runs.c.last_seq,
    runs.c.stalls,
)
"""What the lease needs to know of a candidate run before taking it."""


_BYTES = sa.LargeBinary()

_LEASE_ENDS = [
    T.RUN_COMPLETED.value,
    T.RUN_FAILED.value,
    T.RUN_CANCELLED.value,
    T.RUN_SUSPENDED.value,
]
"""Events with which a lease's holder ends its own lease."""


class _Cand(NamedTuple):
    """A row of :data:`_CANDIDATE`."""

    id: str
    status: str
    lease_owner: str | None
    lease_epoch: int
    last_seq: int
    stalls: int


def _binds(prefix: str, n: int) -> list[Any]:
    """``n`` bind parameters named ``prefix0 .. prefixN-1`` (an IN list of a known length)."""
    return [sa.bindparam(f"{prefix}{i}") for i in range(n)]


def _named(prefix: str, values: Sequence[Any]) -> dict[str, Any]:
    """The parameters of :func:`_binds`."""
    return {f"{prefix}{i}": v for i, v in enumerate(values)}


def _lease_values() -> dict[str, Any]:
    """The ``SET`` of taking a lease (binds ``owner``, ``now``, ``expires``)."""
    now: Any = sa.bindparam("now")
    expires: Any = sa.bindparam("expires")
    return {
        "status": "running",
        "lease_owner": sa.bindparam("owner"),
        "lease_epoch": runs.c.lease_epoch + 1,
        "lease_expires_at": expires,
        "due_at": expires,
        "wake_at": None,
        "waiting_for": None,
        "started_at": sa.func.coalesce(runs.c.started_at, now),
        "last_seq": runs.c.last_seq + 1,
        "updated_at": now,
    }


def _is_takeover(cand: Any, reclaim: Sequence[str]) -> bool:
    """A run still ``running`` under another worker's (expired) lease."""
    return bool(cand.status == "running" and cand.lease_owner not in reclaim)


class LeaseOps(SqlBase):
    """Leases: a mixin of :class:`~durable.log.sqlstore.SqlStore`."""

    # -- leases --------------------------------------------------------------------------

    def lease(
        self,
        owner: str,
        ttl: float,
        workflows: Sequence[str],
        queues: Sequence[str] | None,
        limit: int,
        reclaim: Sequence[str] = (),
        limits: dict[str, QueueLimit] | None = None,
    ) -> list[Lease]:
        if limit <= 0 or not workflows:
            return []
        if not reclaim and self._d.probe_before_lease:
            # Look before taking the write lock: idle workers then never contend for it.
            with self._raw(write=False) as c:
                key, build, params = self._runnable(workflows, queues)
                params.update(now=self._d.now(c), lim=1)
                if self._prep.first(c, key, build, params) is None:
                    return []
        limited = {
            q: lim
            for q, lim in (limits or {}).items()
            if (queues is None or q in queues) and (lim.concurrency or lim.rate)
        }
        with self._raw() as c:
            now = self._d.now(c)
            rows: dict[str, RunRow] = {}
            candidates: list[Any] = []
            if reclaim:
                candidates += [
                    _Cand(*r)
                    for r in c.execute(self._reclaimable(workflows, queues, reclaim, limit))
                ]
            taken = {r.id for r in candidates}
            free_queues = None if queues is None else [q for q in queues if q not in limited]
            one_statement = self._d.update_from_returning and not reclaim
            leased_now: list[tuple[str, int, bool]] = []
            if len(candidates) < limit and (free_queues is None or free_queues):
                q = self._runnable(workflows, free_queues, exclude=list(limited))
                q[2].update(now=now, lim=limit)
                if one_statement:
                    leased_now += self._take_runnable(c, q, owner, ttl, now, rows)
                else:
                    candidates += [_Cand(*r) for r in self._prep.all(c, *q) if r[0] not in taken]
                    candidates = candidates[:limit]
            for name, lim in limited.items():
                self._d.lock_queue(c, name)
                now = self._d.now(c)  # after the wait for the lock: counts and stamps are fresh
                room = min(limit - len(candidates) - len(leased_now), self._room(c, name, lim, now))
                if room <= 0:
                    continue
                q = self._runnable(workflows, [name])
                q[2].update(now=now, lim=room)
                if one_statement:
                    leased_now += self._take_runnable(c, q, owner, ttl, now, rows)
                    continue
                taken = {r.id for r in candidates}
                candidates += [_Cand(*r) for r in self._prep.all(c, *q) if r[0] not in taken][:room]
            stalled = [
                x for x in candidates if _is_takeover(x, reclaim) and x.stalls + 1 > self.max_stalls
            ]
            for x in stalled:
                self._fail_stalled(c, x, now)
            gone = {x.id for x in stalled}
            leased = leased_now + self._take(
                c, [x for x in candidates if x.id not in gone], owner, ttl, now, reclaim
            )
            if not leased:
                return []
            ids = [x[0] for x in leased if x[0] not in rows]
            if ids:
                rows.update(
                    (r[0], _run(r))
                    for r in self._prep.all(
                        c,
                        ("select_runs", len(ids)),
                        lambda: sa.select(*_RUN_COLUMNS).where(
                            runs.c.id.in_(_binds("r", len(ids)))
                        ),
                        _named("r", ids),
                    )
                )
        return [Lease(rows[rid], epoch, takeover, now) for rid, epoch, takeover in leased]

    def _room(self, c: Connection | RawTx, queue: str, lim: QueueLimit, now: float) -> int:
        """How many more runs of ``queue`` may be taken now, over every worker (the queue's
        lock is held until the transaction ends, so the count cannot go stale)."""
        room = 1 << 30
        if lim.concurrency is not None:
            running = c.execute(
                sa.select(sa.func.count())
                .select_from(runs)
                .where(
                    runs.c.queue == queue,
                    runs.c.status == "running",
                    runs.c.lease_expires_at > now,
                )
            ).scalar_one()
            room = min(room, lim.concurrency - int(running))
        if lim.rate is not None:
            n, per = lim.rate
            started = c.execute(
                sa.select(sa.func.count())
                .select_from(runs)
                .where(runs.c.queue == queue, runs.c.started_at > now - per)
            ).scalar_one()
            room = min(room, n - int(started))
        return room

    @staticmethod
    def _filters(workflows: Sequence[str], queues: Sequence[str] | None) -> list[Any]:
        conds: list[Any] = [runs.c.workflow.in_(list(workflows))]
        if queues is not None:
            conds.append(runs.c.queue.in_(list(queues)))
        return conds

    @staticmethod
    def _runnable(
        workflows: Sequence[str], queues: Sequence[str] | None, exclude: Sequence[str] = ()
    ) -> tuple[Hashable, Callable[[], Any], dict[str, Any]]:
        """Runs whose ``due_at`` has come, highest priority first, FIFO within it: a prepared
        statement (key, builder, parameters), to which the caller adds ``now`` and ``lim``."""
        nw, nq, nx = len(workflows), None if queues is None else len(queues), len(exclude)

        def build() -> Any:
            q = sa.select(*_CANDIDATE).where(
                runs.c.due_at <= sa.bindparam("now"), runs.c.workflow.in_(_binds("w", nw))
            )
            if nq is not None:
                q = q.where(runs.c.queue.in_(_binds("q", nq)))
            if nx:
                q = q.where(runs.c.queue.notin_(_binds("x", nx)))
            return (
                q.order_by(runs.c.priority.desc(), runs.c.due_at, runs.c.id)
                .limit(sa.bindparam("lim", type_=sa.Integer))
                .with_for_update(skip_locked=True)
            )

        params = {**_named("w", workflows), **_named("x", exclude)}
        if queues is not None:
            params.update(_named("q", queues))
        return ("runnable", nw, nq, nx), build, params

    def _reclaimable(
        self,
        workflows: Sequence[str],
        queues: Sequence[str] | None,
        owners: Sequence[str],
        limit: int,
    ) -> Any:
        """Running runs leased by owners that are known to be gone."""
        return (
            sa.select(*_CANDIDATE)
            .where(
                runs.c.status == "running",
                runs.c.lease_owner.in_(list(owners)),
                *self._filters(workflows, queues),
            )
            .order_by(runs.c.priority.desc(), runs.c.due_at, runs.c.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )

    def _take(
        self,
        c: Connection | RawTx,
        cands: list[Any],
        owner: str,
        ttl: float,
        now: float,
        reclaim: Sequence[str],
    ) -> list[tuple[str, int, bool]]:
        """Set the leases of the (already locked) candidates under new epochs in one
        statement, and append their ``lease_taken`` events in another."""
        if not cands:
            return []
        seen = {x.id: x for x in cands}
        takeovers = [x.id for x in cands if _is_takeover(x, reclaim)]
        ids = list(seen)
        n, nt = len(ids), len(takeovers)

        def build() -> Any:
            stalls: Any = runs.c.stalls
            if nt:
                stalls = sa.case(
                    (runs.c.id.in_(_binds("t", nt)), runs.c.stalls + 1), else_=runs.c.stalls
                )
            return (
                sa.update(runs)
                .where(runs.c.id.in_(_binds("r", n)))
                .values(stalls=stalls, **_lease_values())
                .returning(runs.c.id, runs.c.lease_epoch, runs.c.last_seq)
            )

        params = {
            **_named("r", ids),
            **_named("t", takeovers),
            "owner": owner,
            "now": now,
            "expires": now + ttl,
        }
        rows = self._prep.all(c, ("take", n, nt), build, params)
        taken = [(str(r[0]), int(r[1]), int(r[2])) for r in rows]
        self._lease_taken(
            c,
            [(rid, epoch, seq, _is_takeover(seen[rid], reclaim)) for rid, epoch, seq in taken],
            owner,
            now,
        )
        order = {x.id: i for i, x in enumerate(cands)}
        taken.sort(key=lambda t: order[t[0]])
        return [(rid, epoch, _is_takeover(seen[rid], reclaim)) for rid, epoch, _ in taken]

    def _take_runnable(
        self,
        c: Connection | RawTx,
        runnable: Any,
        owner: str,
        ttl: float,
        now: float,
        rows_out: dict[str, RunRow],
    ) -> list[tuple[str, int, bool]]:
        """Lease what ``runnable`` (a ``FOR UPDATE SKIP LOCKED`` select) finds and append the
        ``lease_taken`` events, in one statement (Postgres: ``WITH t AS (UPDATE ... FROM
        (select) RETURNING *), ins AS (INSERT INTO events SELECT FROM t) SELECT FROM t``);
        the leased rows go into ``rows_out``. Fail the runs taken over once too often."""
        key, build_runnable, params = runnable

        def build() -> Any:
            cand = build_runnable().subquery("cand")
            took = (
                sa.update(runs)
                .where(runs.c.id == cand.c.id)
                .values(
                    stalls=sa.case(
                        (cand.c.status == "running", runs.c.stalls + 1), else_=runs.c.stalls
                    ),
                    **_lease_values(),
                )
                .returning(*_RUN_COLUMNS, cand.c.status.label("old_status"))
                .cte("t")
            )
            data = sa.case(
                (took.c.old_status == "running", sa.bindparam("data_takeover", type_=_BYTES)),
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
            cols = [took.c[col.name] for col in _RUN_COLUMNS]
            return sa.select(*cols, took.c.old_status).add_cte(ins)

        params = {
            **params,
            "owner": owner,
            "expires": now + ttl,
            "data_takeover": encode_data(LeaseData(owner=owner, takeover=True)),
            "data_fresh": encode_data(LeaseData(owner=owner, takeover=False)),
        }
        found = self._prep.all(c, ("take_runnable", key), build, params)
        taken: list[tuple[str, int, bool]] = []
        for r in found:
            row, takeover = _run(r[:-1]), r[-1] == "running"
            if takeover and row.stalls > self.max_stalls:
                err = ErrorInfo(
                    type="RecoveryLimitExceeded",
                    message=f"the run's lease expired {row.stalls} times without progress",
                    module="durable",
                )
                self._end(c, row.id, now, NewEvent(T.RUN_FAILED, Failure(error=err)))
                continue
            rows_out[row.id] = row
            taken.append((row.id, row.lease_epoch, takeover))
        return taken

    def _lease_taken(
        self, c: Connection | RawTx, taken: list[tuple[str, int, int, bool]], owner: str, now: float
    ) -> None:
        """Append ``lease_taken`` (run, epoch, seq, takeover) events, in one executemany."""
        if not taken:
            return
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
                    "data": encode_data(LeaseData(owner=owner, takeover=takeover)),
                    "append_id": None,
                }
                for rid, epoch, seq, takeover in taken
            ],
        )

    def _fail_stalled(self, c: Connection | RawTx, cand: Any, now: float) -> None:
        """Fail a run that was taken over too often without progress."""
        err = ErrorInfo(
            type="RecoveryLimitExceeded",
            message=f"the run's lease expired {cand.stalls + 1} times without progress",
            module="durable",
        )
        self._end(c, cand.id, now, NewEvent(T.RUN_FAILED, Failure(error=err)))

    def _end(self, c: Connection | RawTx, run_id: str, now: float, event: NewEvent) -> Any:
        """End a run outside its lease (cancel, stall limit): new epoch, one final event."""
        raw = encode_data(event.data)
        proj = project([event], [raw], now)
        vals = assignments(proj.values, {**proj.increments, "last_seq": 1})
        res = c.execute(
            sa.update(runs)
            .where(runs.c.id == run_id, runs.c.status.notin_(_TERMINAL))
            .values(**vals)
            .returning(runs.c.last_seq, runs.c.lease_epoch, runs.c.parent_id)
        ).first()
        if res is None:
            return None
        c.execute(
            events.insert().values(
                run_id=run_id,
                seq=res.last_seq,
                type=event.type,
                position=event.position,
                name=event.name,
                attempt=event.attempt,
                epoch=res.lease_epoch,
                at=now,
                data=raw,
            )
        )
        if res.parent_id is not None:
            self._wake_parent(c, res.parent_id, now)
        return res

    def heartbeat(self, owner: str, ttl: float, held: dict[str, int]) -> set[str]:
        if not held:
            return set()
        with self._raw() as c:
            now = self._d.now(c)
            rows = c.execute(
                sa.update(runs)
                .where(
                    runs.c.lease_owner == owner,
                    runs.c.status == "running",
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
        self.append(reqs)

    def owners_running(self, workflows: Sequence[str]) -> list[str]:
        q = (
            sa.select(runs.c.lease_owner)
            .where(runs.c.status == "running", runs.c.workflow.in_(list(workflows)))
            .distinct()
        )
        with self._read() as c:
            return [r[0] for r in c.execute(q) if r[0] is not None]

    def next_due(self, workflows: Sequence[str], queues: Sequence[str] | None) -> float | None:
        if not workflows:
            return None
        nw, nq = len(workflows), None if queues is None else len(queues)

        def build() -> Any:
            q = sa.select(sa.func.min(runs.c.due_at)).where(
                runs.c.due_at.is_not(None), runs.c.workflow.in_(_binds("w", nw))
            )
            return q if nq is None else q.where(runs.c.queue.in_(_binds("q", nq)))

        params = _named("w", workflows)
        if queues is not None:
            params.update(_named("q", queues))
        with self._raw(write=False) as c:
            row = self._prep.first(c, ("next_due", nw, nq), build, params)
            v = row[0] if row is not None else None
        return float(v) if v is not None else None

    def listen(self, on_notify: Callable[[str], None]) -> Any:
        """Push wake-ups (a run started, signalled, resumed or due) to ``on_notify``;
        returns an object with ``stop()``, or ``None`` where the store cannot push."""
        return self._d.listen(on_notify)
