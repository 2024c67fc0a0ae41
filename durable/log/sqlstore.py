"""The log on SQLAlchemy Core: one implementation of :class:`Store` for every dialect.

Dialect specifics (how a write transaction begins, the clock, the upsert) come from a
:class:`Dialect` object (``sqlite.py``; ``postgres.py`` later). Every statement is a small named
method here, so that reading this file is reading the log's SQL.
"""

from __future__ import annotations

import abc
import contextlib
import uuid
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import msgspec
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from durable.errors import StoreError
from durable.events import (
    OUTCOME_KIND,
    ErrorInfo,
    EventType,
    Failure,
    MarkData,
    NewEvent,
    RunStartedData,
    SignalData,
    SuspendData,
    encode_data,
)
from durable.log._dberrors import translate_errors
from durable.log.prepared import Prepared
from durable.log.projection import TERMINAL_STATUSES, assignments, project
from durable.log.schema import events, runs, signals
from durable.log.store import (
    AppendRequest,
    AppendResult,
    JournalRow,
    Lease,
    NewRun,
    QueueLimit,
    RunFilter,
    RunRow,
    Store,
)

__all__ = ["Dialect", "SqlStore"]

T = EventType
_RUN_COLUMNS = [runs.c[f] for f in RunRow.__slots__]
_EVENT_COLUMNS = [events.c[f] for f in JournalRow.__slots__]
_TERMINAL = list(TERMINAL_STATUSES)


_NOT_ENDED = sa.and_(*(runs.c.status != sa.literal_column(f"'{s}'") for s in _TERMINAL))


def _fenced_update(values: tuple[str, ...], increments: tuple[str, ...]) -> sa.Executable:
    """``UPDATE runs SET <projection> WHERE id AND lease_epoch AND not ended RETURNING``."""
    sets: dict[str, Any] = {k: sa.bindparam(f"v_{k}") for k in values}
    for k in increments:
        sets[k] = runs.c[k] + sa.bindparam(f"i_{k}")
    return (
        sa.update(runs)
        .where(
            runs.c.id == sa.bindparam("w_id"),
            runs.c.lease_epoch == sa.bindparam("w_epoch"),
            _NOT_ENDED,
        )
        .values(**sets)
        .returning(runs.c.last_seq, runs.c.parent_id)
    )


def _insert_events() -> sa.Executable:
    """``INSERT INTO events`` of one row (run as an executemany)."""
    return events.insert().values({c.name: sa.bindparam(c.name) for c in events.c})


def _is_takeover(cand: Any, reclaim: Sequence[str]) -> bool:
    """A run still ``running`` under another worker's (expired) lease."""
    return bool(cand.status == "running" and cand.lease_owner not in reclaim)


class Dialect(abc.ABC):
    """What differs between stores: engines, transactions, the clock, the upsert."""

    write_engine: Engine
    read_engine: Engine

    @abc.abstractmethod
    def now(self, conn: Connection) -> float:
        """The database's clock, in Unix seconds, read inside the transaction."""

    @abc.abstractmethod
    def insert_ignore(self, table: sa.Table, index: list[str]) -> Any:
        """An ``INSERT`` that does nothing when the key in ``index`` exists."""

    def dispose(self) -> None:
        """Close every pooled connection."""
        self.write_engine.dispose()
        self.read_engine.dispose()

    def lock_schema(self, conn: Connection) -> None:  # noqa: B027 - a no-op by default
        """Serialize schema creation among processes (a no-op where writes already are)."""

    update_from_returning = False
    """Whether ``UPDATE ... FROM (subquery) RETURNING`` may return the subquery's columns
    (Postgres: the lease is then one statement)."""

    def lock_queue(self, conn: Connection, queue: str) -> None:  # noqa: B027 - a no-op
        """Serialize lease decisions about one queue's limits among concurrent workers."""

    def notify(self, conn: Connection, queue: str) -> None:  # noqa: B027 - a no-op by default
        """Wake idle workers of other processes when this transaction commits (if the
        store can push; elsewhere they find the work at their next poll)."""

    def listen(self, on_notify: Callable[[str], None]) -> Any:
        """Start pushing wake-ups to ``on_notify``; ``None`` if the store cannot."""
        return None


def _run(row: Any) -> RunRow:
    return RunRow(*row)


def _journal(row: Any) -> JournalRow:
    return JournalRow(*row)


class SqlStore(Store):
    """The event log on a SQLAlchemy engine (see :class:`Store` for each method's promise)."""

    def __init__(self, url: str, dialect: Dialect, max_stalls: int = 10) -> None:
        self.url = url
        self._d = dialect
        self.max_stalls = max_stalls
        self._prep = Prepared(dialect.write_engine.dialect)

    def close(self) -> None:
        self._d.dispose()

    @contextlib.contextmanager
    def _write(self) -> Iterator[Connection]:
        with translate_errors(), self._d.write_engine.begin() as conn:
            yield conn

    @contextlib.contextmanager
    def _read(self) -> Iterator[Connection]:
        with translate_errors(), self._d.read_engine.connect() as conn:
            yield conn

    # -- runs ----------------------------------------------------------------------------

    def create_run(self, run: NewRun) -> tuple[RunRow, bool]:
        with self._write() as c:
            now = self._d.now(c)
            created = self._insert_run(c, run, now)
            row = c.execute(sa.select(*_RUN_COLUMNS).where(runs.c.id == run.id)).one()
            if created:
                self._d.notify(c, run.queue)
        return _run(row), created

    def _insert_run(self, c: Connection, run: NewRun, now: float) -> bool:
        """Insert a run and its ``run_started`` (seq 1); False if the id exists."""
        values = {
            "id": run.id,
            "workflow": run.workflow,
            "queue": run.queue,
            "status": "pending",
            "priority": run.priority,
            "input": run.input,
            "parent_id": run.parent_id,
            "due_at": now + max(run.delay, 0.0),
            "wake_at": now + run.delay if run.delay > 0 else None,
            "timeout": run.timeout,
            "deadline_at": now + run.timeout if run.timeout else None,
            "lease_epoch": 0,
            "last_seq": 1,
            "attempt": 1,
            "steps_completed": 0,
            "stalls": 0,
            "trace_context": run.trace_context,
            "created_at": now,
            "updated_at": now,
        }
        ins = self._d.insert_ignore(runs, ["id"]).values(**values).returning(runs.c.id)
        if c.execute(ins).first() is None:
            return False
        data = RunStartedData(
            input=msgspec.Raw(run.input),
            workflow=run.workflow,
            parent_id=run.parent_id,
            forked_from=run.forked_from,
        )
        c.execute(
            events.insert().values(
                run_id=run.id,
                seq=1,
                type=T.RUN_STARTED.value,
                epoch=0,
                at=now,
                data=encode_data(data),
            )
        )
        return True

    def get_run(self, run_id: str) -> RunRow | None:
        with self._read() as c:
            row = c.execute(sa.select(*_RUN_COLUMNS).where(runs.c.id == run_id)).first()
        return _run(row) if row is not None else None

    def get_runs(self, run_ids: Sequence[str]) -> list[RunRow]:
        if not run_ids:
            return []
        with self._read() as c:
            rows = c.execute(sa.select(*_RUN_COLUMNS).where(runs.c.id.in_(list(run_ids))))
            return [_run(r) for r in rows]

    def list_runs(self, flt: RunFilter) -> list[RunRow]:
        q = sa.select(*_RUN_COLUMNS)
        if flt.status is not None:
            q = q.where(runs.c.status == flt.status)
        if flt.statuses:
            q = q.where(runs.c.status.in_(list(flt.statuses)))
        if flt.workflow is not None:
            q = q.where(runs.c.workflow == flt.workflow)
        if flt.queue is not None:
            q = q.where(runs.c.queue == flt.queue)
        if flt.parent_id is not None:
            q = q.where(runs.c.parent_id == flt.parent_id)
        q = q.order_by(runs.c.created_at.desc(), runs.c.id.desc()).limit(flt.limit)
        with self._read() as c:
            return [_run(r) for r in c.execute(q)]

    def read_journal(self, run_id: str, after_seq: int = 0) -> list[JournalRow]:
        q = (
            sa.select(*_EVENT_COLUMNS)
            .where(events.c.run_id == run_id, events.c.seq > after_seq)
            .order_by(events.c.seq)
        )
        with self._read() as c:
            return [_journal(r) for r in c.execute(q)]

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
        if not reclaim:
            # Look before taking the write lock: idle workers then never contend for it.
            with self._read() as c:
                probe = self._runnable(workflows, queues, self._d.now(c), 1)
                if c.execute(probe).first() is None:
                    return []
        limited = {
            q: lim
            for q, lim in (limits or {}).items()
            if (queues is None or q in queues) and (lim.concurrency or lim.rate)
        }
        with self._write() as c:
            now = self._d.now(c)
            candidates: list[Any] = []
            if reclaim:
                candidates += c.execute(self._reclaimable(workflows, queues, reclaim, limit))
            taken = {r.id for r in candidates}
            free_queues = None if queues is None else [q for q in queues if q not in limited]
            one_statement = self._d.update_from_returning and not reclaim
            leased_now: list[tuple[str, int, bool]] = []
            if len(candidates) < limit and (free_queues is None or free_queues):
                q = self._runnable(
                    workflows, free_queues, now, limit, exclude=list(limited) if limited else ()
                )
                if one_statement:
                    leased_now += self._take_runnable(c, q, owner, ttl, now)
                else:
                    candidates += [r for r in c.execute(q) if r.id not in taken]
                    candidates = candidates[:limit]
            for name, lim in limited.items():
                self._d.lock_queue(c, name)
                now = self._d.now(c)  # after the wait for the lock: counts and stamps are fresh
                room = min(limit - len(candidates) - len(leased_now), self._room(c, name, lim, now))
                if room <= 0:
                    continue
                q = self._runnable(workflows, [name], now, room)
                if one_statement:
                    leased_now += self._take_runnable(c, q, owner, ttl, now)
                    continue
                taken = {r.id for r in candidates}
                candidates += [r for r in c.execute(q) if r.id not in taken][:room]
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
            rows = {
                r.id: _run(r)
                for r in c.execute(
                    sa.select(*_RUN_COLUMNS).where(runs.c.id.in_([x[0] for x in leased]))
                )
            }
        return [Lease(rows[rid], epoch, takeover, now) for rid, epoch, takeover in leased]

    def _room(self, c: Connection, queue: str, lim: QueueLimit, now: float) -> int:
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

    def _runnable(
        self,
        workflows: Sequence[str],
        queues: Sequence[str] | None,
        now: float,
        limit: int,
        exclude: Sequence[str] = (),
    ) -> Any:
        """Runs whose ``due_at`` has come, highest priority first, FIFO within it."""
        return (
            sa.select(
                runs.c.id,
                runs.c.status,
                runs.c.lease_owner,
                runs.c.lease_epoch,
                runs.c.last_seq,
                runs.c.stalls,
            )
            .where(runs.c.due_at <= now, *self._filters(workflows, queues))
            .where(runs.c.queue.notin_(list(exclude)) if exclude else sa.true())
            .order_by(runs.c.priority.desc(), runs.c.due_at, runs.c.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )

    def _reclaimable(
        self,
        workflows: Sequence[str],
        queues: Sequence[str] | None,
        owners: Sequence[str],
        limit: int,
    ) -> Any:
        """Running runs leased by owners that are known to be gone."""
        return (
            sa.select(
                runs.c.id,
                runs.c.status,
                runs.c.lease_owner,
                runs.c.lease_epoch,
                runs.c.last_seq,
                runs.c.stalls,
            )
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
        c: Connection,
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
        stalls: Any = runs.c.stalls
        if takeovers:
            stalls = sa.case((runs.c.id.in_(takeovers), runs.c.stalls + 1), else_=runs.c.stalls)
        rows = c.execute(
            sa.update(runs)
            .where(runs.c.id.in_(list(seen)))
            .values(
                status="running",
                lease_owner=owner,
                lease_epoch=runs.c.lease_epoch + 1,
                lease_expires_at=now + ttl,
                due_at=now + ttl,
                wake_at=None,
                waiting_for=None,
                started_at=sa.func.coalesce(runs.c.started_at, now),
                last_seq=runs.c.last_seq + 1,
                stalls=stalls,
                updated_at=now,
            )
            .returning(runs.c.id, runs.c.lease_epoch, runs.c.last_seq)
        ).all()
        taken = [(str(r[0]), int(r[1]), int(r[2])) for r in rows]
        if taken:
            c.execute(
                events.insert(),
                [
                    {
                        "run_id": rid,
                        "seq": seq,
                        "type": T.LEASE_TAKEN.value,
                        "epoch": epoch,
                        "at": now,
                        "data": encode_data(
                            MarkData(owner=owner, takeover=_is_takeover(seen[rid], reclaim))
                        ),
                    }
                    for rid, epoch, seq in taken
                ],
            )
        order = {x.id: i for i, x in enumerate(cands)}
        taken.sort(key=lambda t: order[t[0]])
        return [(rid, epoch, _is_takeover(seen[rid], reclaim)) for rid, epoch, _ in taken]

    def _take_runnable(
        self, c: Connection, runnable: Any, owner: str, ttl: float, now: float
    ) -> list[tuple[str, int, bool]]:
        """Lease what ``runnable`` (a ``FOR UPDATE SKIP LOCKED`` select) finds, in one
        ``UPDATE ... FROM (select) RETURNING`` statement; fail the runs taken over once too
        often; append the ``lease_taken`` events."""
        cand = runnable.subquery("cand")
        rows = c.execute(
            sa.update(runs)
            .where(runs.c.id == cand.c.id)
            .values(
                status="running",
                lease_owner=owner,
                lease_epoch=runs.c.lease_epoch + 1,
                lease_expires_at=now + ttl,
                due_at=now + ttl,
                wake_at=None,
                waiting_for=None,
                started_at=sa.func.coalesce(runs.c.started_at, now),
                last_seq=runs.c.last_seq + 1,
                stalls=sa.case(
                    (cand.c.status == "running", runs.c.stalls + 1), else_=runs.c.stalls
                ),
                updated_at=now,
            )
            .returning(runs.c.id, runs.c.lease_epoch, runs.c.last_seq, runs.c.stalls, cand.c.status)
        ).all()
        taken: list[tuple[str, int, bool]] = []
        events_rows = []
        for rid, epoch, seq, stalls, old_status in rows:
            takeover = old_status == "running"
            events_rows.append(
                {
                    "run_id": rid,
                    "seq": seq,
                    "type": T.LEASE_TAKEN.value,
                    "epoch": epoch,
                    "at": now,
                    "data": encode_data(MarkData(owner=owner, takeover=takeover)),
                }
            )
            if takeover and stalls > self.max_stalls:
                continue  # failed below, after its lease_taken
            taken.append((str(rid), int(epoch), takeover))
        if events_rows:
            c.execute(events.insert(), events_rows)
        for rid, _epoch, _seq, stalls, old_status in rows:
            if old_status == "running" and stalls > self.max_stalls:
                err = ErrorInfo(
                    type="RecoveryLimitExceeded",
                    message=f"the run's lease expired {stalls} times without progress",
                    module="durable",
                )
                self._end(c, rid, now, NewEvent(T.RUN_FAILED.value, Failure(error=err)))
        return taken

    def _fail_stalled(self, c: Connection, cand: Any, now: float) -> None:
        """Fail a run that was taken over too often without progress."""
        err = ErrorInfo(
            type="RecoveryLimitExceeded",
            message=f"the run's lease expired {cand.stalls + 1} times without progress",
            module="durable",
        )
        self._end(c, cand.id, now, NewEvent(T.RUN_FAILED.value, Failure(error=err)))

    def _end(self, c: Connection, run_id: str, now: float, event: NewEvent) -> Any:
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
        with self._write() as c:
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
        return {rid for rid, ep in held.items() if still.get(rid) != ep}

    def release(self, held: dict[str, int]) -> None:
        if not held:
            return
        reqs = [
            AppendRequest(
                rid,
                ep,
                [NewEvent(T.RUN_SUSPENDED.value, SuspendData(reason="released"))],
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
        q = sa.select(sa.func.min(runs.c.due_at)).where(
            runs.c.due_at.is_not(None), *self._filters(workflows, queues)
        )
        with self._read() as c:
            v = c.execute(q).scalar()
        return float(v) if v is not None else None

    def listen(self, on_notify: Callable[[str], None]) -> Any:
        """Push wake-ups (a run started, signalled, resumed or due) to ``on_notify``;
        returns an object with ``stop()``, or ``None`` where the store cannot push."""
        return self._d.listen(on_notify)

    # -- journal -------------------------------------------------------------------------

    def append(self, requests: Sequence[AppendRequest]) -> list[AppendResult]:
        if not requests:
            return []
        try:
            with self._write() as c:
                now = self._d.now(c)
                return [self._append_one(c, r, now) for r in requests]
        except Exception as exc:
            if len(requests) == 1:
                return [AppendResult(ok=False, error=exc)]
        # One request broke the batch: isolate it, so that the others still commit.
        out: list[AppendResult] = []
        failed: set[str] = set()
        for r in requests:
            if r.run_id in failed:  # never write past a failed append of the same run
                out.append(AppendResult(ok=False, error=StoreError("an earlier append failed")))
                continue
            try:
                with self._write() as c:
                    out.append(self._append_one(c, r, self._d.now(c)))
            except Exception as exc:
                out.append(AppendResult(ok=False, error=exc))
            if out[-1].error is not None or not out[-1].ok:
                failed.add(r.run_id)
        return out

    def _append_one(self, c: Connection, req: AppendRequest, now: float) -> AppendResult:
        if not req.append_id:
            req.append_id = uuid.uuid4().hex
        elif req.retried:
            done = c.execute(
                sa.select(sa.func.max(events.c.seq)).where(
                    events.c.run_id == req.run_id, events.c.append_id == req.append_id
                )
            ).scalar()
            if done is not None:  # the first try committed; only its answer was lost
                return AppendResult(ok=True, last_seq=int(done))
        evs = list(req.events)
        signal: tuple[int, bytes | None] | None = None
        if req.consume_signal is not None:
            name, position = req.consume_signal
            sig = c.execute(
                sa.select(signals.c.id, signals.c.payload)
                .where(
                    signals.c.run_id == req.run_id,
                    signals.c.name == name,
                    signals.c.consumed_seq.is_(None),
                )
                .order_by(signals.c.id)
                .limit(1)
            ).first()
            if sig is not None:
                signal = (int(sig.id), sig.payload)
                payload = msgspec.Raw(sig.payload) if sig.payload is not None else None
                evs.insert(
                    0,
                    NewEvent(
                        T.SIGNAL_RECEIVED.value,
                        SignalData(payload=payload, signal_id=int(sig.id)),
                        position=position,
                        name=name,
                    ),
                )
        encoded = [encode_data(e.data) for e in evs]
        proj = project(evs, encoded, now)
        n = len(evs)
        values = proj.values
        if proj.releases:
            due = self._due_on_suspend(c, req, proj.waiting_for, proj.wake_at, now)
            values["due_at"] = due
            if due is not None and due <= now:
                self._d.notify(c, "")
        increments = {**proj.increments, "last_seq": n}
        res = self._prep.run(
            c,
            ("append", tuple(values), tuple(increments)),
            lambda: _fenced_update(tuple(values), tuple(increments)),
            {
                **{f"v_{k}": v for k, v in values.items()},
                **{f"i_{k}": v for k, v in increments.items()},
                "w_id": req.run_id,
                "w_epoch": req.epoch,
            },
        ).first()
        if res is None:
            return AppendResult(ok=False)
        last, parent_id = int(res[0]), res[1]  # type: ignore[misc]
        if n:
            first = last - n + 1
            self._prep.run(
                c,
                "insert_events",
                _insert_events,
                [
                    {
                        "run_id": req.run_id,
                        "seq": first + i,
                        "type": e.type,
                        "position": e.position,
                        "name": e.name,
                        "attempt": e.attempt,
                        "epoch": req.epoch,
                        "at": now,
                        "outcome": OUTCOME_KIND.get(e.type),
                        "data": raw,
                        "append_id": req.append_id,
                    }
                    for i, (e, raw) in enumerate(zip(evs, encoded, strict=True))
                ],
            )
            if signal is not None:
                c.execute(
                    sa.update(signals).where(signals.c.id == signal[0]).values(consumed_seq=first)
                )
        for child in req.new_runs:
            self._insert_run(c, child, now)
        if proj.ends:
            self._d.notify(c, "")  # a queue slot frees up: workers blocked by a limit retry
            if parent_id is not None:
                self._wake_parent(c, parent_id, now)
        return AppendResult(ok=True, last_seq=last, signal=signal)

    def _due_on_suspend(
        self,
        c: Connection,
        req: AppendRequest,
        waiting_for: str | None,
        wake_at: float | None,
        now: float,
    ) -> float | None:
        """When a run that hands its lease back becomes due: now if what it waits for is
        already there (a signal in the inbox, an ended child), else at ``wake_at``."""
        if wake_at is None and waiting_for is None:
            return now  # released by a stopping worker
        if waiting_for is not None and waiting_for.startswith("signal:"):
            name = waiting_for[len("signal:") :]
            hit = c.execute(
                sa.select(signals.c.id)
                .where(
                    signals.c.run_id == req.run_id,
                    signals.c.name == name,
                    signals.c.consumed_seq.is_(None),
                )
                .limit(1)
            ).first()
            if hit is not None:
                return now
        elif waiting_for == "children" and req.wait_children:
            hit = c.execute(
                sa.select(runs.c.id)
                .where(runs.c.id.in_(list(req.wait_children)), runs.c.status.in_(_TERMINAL))
                .limit(1)
            ).first()
            if hit is not None:
                return now
        return wake_at

    def _wake_parent(self, c: Connection, parent_id: str, now: float) -> None:
        """Make a parent that waits for its children due now (always touching its row, so
        that a concurrent suspend of the parent and this wake-up serialize)."""
        waiting = sa.and_(runs.c.status == "sleeping", runs.c.waiting_for == "children")
        c.execute(
            sa.update(runs)
            .where(runs.c.id == parent_id)
            .values(due_at=sa.case((waiting, now), else_=runs.c.due_at))
        )
        self._d.notify(c, "")

    # -- clients -------------------------------------------------------------------------

    def cancel(self, run_id: str, reason: str) -> RunRow | None:
        with self._write() as c:
            now = self._d.now(c)
            row = c.execute(sa.select(*_RUN_COLUMNS).where(runs.c.id == run_id)).first()
            if row is None:
                return None
            self._cancel_tree(c, run_id, reason, now)
            return _run(c.execute(sa.select(*_RUN_COLUMNS).where(runs.c.id == run_id)).one())

    def _cancel_tree(self, c: Connection, run_id: str, reason: str, now: float) -> None:
        ev = NewEvent(T.RUN_CANCELLED.value, MarkData(text=reason))
        raw = encode_data(ev.data)
        res = c.execute(
            sa.update(runs)
            .where(runs.c.id == run_id, runs.c.status.notin_(_TERMINAL))
            .values(
                status="cancelled",
                lease_epoch=runs.c.lease_epoch + 1,
                lease_owner=None,
                lease_expires_at=None,
                due_at=None,
                wake_at=None,
                waiting_for=None,
                finished_at=now,
                updated_at=now,
                last_seq=runs.c.last_seq + 1,
            )
            .returning(runs.c.last_seq, runs.c.lease_epoch, runs.c.parent_id)
        ).first()
        if res is None:
            return
        c.execute(
            events.insert().values(
                run_id=run_id,
                seq=res.last_seq,
                type=ev.type,
                epoch=res.lease_epoch,
                at=now,
                data=raw,
            )
        )
        children = c.execute(
            sa.select(runs.c.id).where(runs.c.parent_id == run_id, runs.c.status.notin_(_TERMINAL))
        ).all()
        for (child_id,) in children:
            self._cancel_tree(c, child_id, f"parent {run_id} cancelled", now)
        if res.parent_id is not None:
            self._wake_parent(c, res.parent_id, now)

    def resume(self, run_id: str) -> RunRow | None:
        with self._write() as c:
            now = self._d.now(c)
            row = c.execute(sa.select(*_RUN_COLUMNS).where(runs.c.id == run_id)).first()
            if row is None:
                return None
            if row.status in ("failed", "cancelled"):
                res = c.execute(
                    sa.update(runs)
                    .where(runs.c.id == run_id, runs.c.status.in_(["failed", "cancelled"]))
                    .values(
                        status="pending",
                        lease_epoch=runs.c.lease_epoch + 1,
                        attempt=runs.c.attempt + 1,
                        due_at=now,
                        finished_at=None,
                        error_type=None,
                        error_message=None,
                        output=None,
                        stalls=0,
                        deadline_at=sa.case(
                            (runs.c.timeout.is_not(None), now + runs.c.timeout), else_=None
                        ),
                        updated_at=now,
                        last_seq=runs.c.last_seq + 1,
                    )
                    .returning(runs.c.last_seq, runs.c.lease_epoch, runs.c.attempt)
                ).first()
                if res is not None:
                    self._d.notify(c, row.queue)
                    c.execute(
                        events.insert().values(
                            run_id=run_id,
                            seq=res.last_seq,
                            type=T.RUN_RESUMED.value,
                            attempt=res.attempt,
                            epoch=res.lease_epoch,
                            at=now,
                            data=encode_data(MarkData()),
                        )
                    )
            return _run(c.execute(sa.select(*_RUN_COLUMNS).where(runs.c.id == run_id)).one())

    def fork(self, run_id: str, new: NewRun, keep: Sequence[JournalRow]) -> RunRow:
        with self._write() as c:
            now = self._d.now(c)
            if not self._insert_run(c, new, now):
                from durable.errors import IdConflictError

                raise IdConflictError(f"a run with id {new.id!r} exists")
            self._d.notify(c, new.queue)
            if keep:
                c.execute(
                    events.insert(),
                    [
                        {
                            "run_id": new.id,
                            "seq": 2 + i,
                            "type": e.type,
                            "position": e.position,
                            "name": e.name,
                            "attempt": e.attempt,
                            "epoch": 0,
                            "at": e.at,
                            "outcome": OUTCOME_KIND.get(e.type),
                            "data": e.data,
                        }
                        for i, e in enumerate(keep)
                    ],
                )
                done = sum(1 for e in keep if e.type == T.STEP_COMPLETED)
                c.execute(
                    sa.update(runs)
                    .where(runs.c.id == new.id)
                    .values(last_seq=1 + len(keep), steps_completed=done)
                )
            return _run(c.execute(sa.select(*_RUN_COLUMNS).where(runs.c.id == new.id)).one())

    def send_signal(self, run_id: str, name: str, payload: bytes | None) -> bool:
        with self._write() as c:
            now = self._d.now(c)
            exists = c.execute(sa.select(runs.c.id).where(runs.c.id == run_id)).first()
            if exists is None:
                return False
            # Insert first, then touch the row: see _wake_parent for why the order matters.
            c.execute(
                signals.insert().values(run_id=run_id, name=name, payload=payload, created_at=now)
            )
            waiting = sa.and_(runs.c.status == "sleeping", runs.c.waiting_for == f"signal:{name}")
            c.execute(
                sa.update(runs)
                .where(runs.c.id == run_id)
                .values(due_at=sa.case((waiting, now), else_=runs.c.due_at))
            )
            self._d.notify(c, "")
        return True
