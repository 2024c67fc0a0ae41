"""The log on SQLAlchemy Core: one implementation of :class:`Store` for every dialect.

Dialect specifics (how a write transaction begins, the clock, the upsert) come from a
:class:`Dialect` object (``sqlite.py``; ``postgres.py`` later). Every statement is a small named
method here, so that reading this file is reading the log's SQL.

:class:`SqlStore` is put together from one part per noun: the runs and the journal here, the
leases in ``leases.py``, the client operations in ``client_ops.py``, retention and statistics
in ``maintenance.py``, and what they share (connections, a run's insert, a parent's wake-up)
in ``sqlbase.py``. :class:`Dialect` lives in ``dialect.py`` and is re-exported here.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

import msgspec
import sqlalchemy as sa

from durable.errors import IdConflictError, StoreError
from durable.events import OUTCOME_KIND, EventType, NewEvent, SignalData, encode_data
from durable.log.backlog import BacklogOps
from durable.log.client_ops import ClientOps
from durable.log.dialect import Dialect, RawTx
from durable.log.leases import LeaseOps
from durable.log.maintenance import MaintenanceOps
from durable.log.projection import project
from durable.log.schema import events, runs, signals
from durable.log.sqlbase import (
    _EVENT_COLUMNS,
    _RUN_COLUMNS,
    _TERMINAL,
    _journal,
    _run,
    insert_events,
    select_run,
)
from durable.log.store import AppendRequest, AppendResult, JournalRow, NewRun, RunFilter, RunRow
from durable.states import WaitFor, WaitKind

T = EventType

__all__ = ["Dialect", "SqlStore"]


_NOT_ENDED = sa.and_(*(runs.c.status != sa.literal_column(f"'{s}'") for s in _TERMINAL))


def _fenced_update(values: tuple[str, ...], increments: tuple[str, ...]) -> Any:
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


def _read_journal() -> sa.Executable:
    """A run's journal after a seq, in order (binds ``run_id``, ``after``)."""
    return (
        sa.select(*_EVENT_COLUMNS)
        .where(events.c.run_id == sa.bindparam("run_id"), events.c.seq > sa.bindparam("after"))
        .order_by(events.c.seq)
    )


def _fenced_append(values: tuple[str, ...], increments: tuple[str, ...], n: int) -> Any:
    """The fenced update and the insert of its ``n`` events in one statement (Postgres):
    ``WITH u AS (UPDATE ... RETURNING), ins AS (INSERT ... SELECT FROM u) SELECT FROM u``.
    Binds those of :func:`_fenced_update`, and ``{column}_{i}`` per event."""
    upd = _fenced_update(values, increments).cte("u")
    typed = {c.name: c.type for c in events.c}
    selects = [
        sa.select(
            *(
                upd.c.last_seq - sa.literal_column(str(n - 1 - i))
                if col == "seq"
                else sa.bindparam(f"{col}_{i}", type_=typed[col])
                for col in _EVENT_INSERT_COLUMNS
            )
        ).select_from(upd)
        for i in range(n)
    ]
    rows = sa.union_all(*selects) if n > 1 else selects[0]
    ins = events.insert().from_select(list(_EVENT_INSERT_COLUMNS), rows).cte("ins")
    return sa.select(upd.c.last_seq, upd.c.parent_id).add_cte(ins)


_EVENT_INSERT_COLUMNS = tuple(c.name for c in events.c)


def _lock_run() -> Any:
    """Lock a run's row until the transaction ends (binds ``id``)."""
    return sa.select(runs.c.id).where(runs.c.id == sa.bindparam("id")).with_for_update()


def _appended() -> Any:
    """The last and first seqs an append wrote, if it did (binds ``run_id``, ``append_id``)."""
    return sa.select(sa.func.max(events.c.seq), sa.func.min(events.c.seq)).where(
        events.c.run_id == sa.bindparam("run_id"), events.c.append_id == sa.bindparam("append_id")
    )


def _consumed_signal() -> Any:
    """The signal an append consumed: the one marked with its first seq (binds ``run_id``,
    ``seq``)."""
    return sa.select(signals.c.id, signals.c.payload).where(
        signals.c.run_id == sa.bindparam("run_id"), signals.c.consumed_seq == sa.bindparam("seq")
    )


def _oldest_signal() -> Any:
    """A run's oldest unconsumed signal of a name (binds ``run_id``, ``name``)."""
    return (
        sa.select(signals.c.id, signals.c.payload)
        .where(
            signals.c.run_id == sa.bindparam("run_id"),
            signals.c.name == sa.bindparam("name"),
            signals.c.consumed_seq.is_(None),
        )
        .order_by(signals.c.id)
        .limit(1)
    )


def _consume_signal() -> Any:
    """Mark a signal consumed by the event at a seq (binds ``id``, ``seq``)."""
    return (
        sa.update(signals)
        .where(signals.c.id == sa.bindparam("id"))
        .values(consumed_seq=sa.bindparam("seq"))
    )


def _ended_child(n: int) -> Any:
    """One of ``n`` runs (binds ``c0..``) that has ended, if any."""
    ids: list[Any] = [sa.bindparam(f"c{i}") for i in range(n)]
    ended: list[Any] = [sa.literal_column(f"'{s}'") for s in _TERMINAL]
    return sa.select(runs.c.id).where(runs.c.id.in_(ids), runs.c.status.in_(ended)).limit(1)


class SqlStore(LeaseOps, ClientOps, MaintenanceOps, BacklogOps):
    """The event log on a SQLAlchemy engine (see :class:`Store` for each method's promise)."""

    # -- runs ----------------------------------------------------------------------------

    def create_run(self, run: NewRun) -> tuple[RunRow, bool]:
        with self._raw() as c:
            now = self._d.now(c)
            created = self._insert_run(c, run, now)
            row = self._prep.first(c, "select_run", select_run, {"id": run.id})
            if created:
                self._notify(c, run.queue)
        return _run(row), created

    def create_runs(self, new: Sequence[NewRun]) -> set[str]:
        if not new:
            return set()
        ordered = sorted(new, key=lambda r: r.id)  # one lock order for concurrent batches
        with self._raw() as c:
            created = self._insert_runs(c, ordered, self._d.now(c))
            taken = [r for r in ordered if r.id not in created]
            for i in range(0, len(taken), 256):
                chunk = {r.id: r.workflow for r in taken[i : i + 256]}
                for rid, workflow in c.execute(
                    sa.select(runs.c.id, runs.c.workflow).where(runs.c.id.in_(list(chunk)))
                ):
                    if workflow != chunk[rid]:  # raised inside: nothing is written
                        raise IdConflictError(
                            f"run id {rid!r} is taken by a run of workflow {workflow!r}"
                        )
            if created:
                self._notify(c, "")
        return created

    def get_run(self, run_id: str) -> RunRow | None:
        with self._raw(write=False) as c:
            row = self._prep.first(c, "select_run", select_run, {"id": run_id})
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
        with self._raw(write=False) as c:
            rows = self._prep.all(
                c, "read_journal", _read_journal, {"run_id": run_id, "after": after_seq}
            )
        return [_journal(r) for r in rows]

    # -- journal -------------------------------------------------------------------------

    def append(self, requests: Sequence[AppendRequest]) -> list[AppendResult]:
        if not requests:
            return []
        try:
            with self._raw() as c:
                now = self._d.now(c)
                return [self._append_one(c, r, now) for r in requests]
        except Exception as exc:
            if len(requests) == 1:
                return [AppendResult(ok=False, error=exc)]
        # One request broke the batch: isolate it, so that the others still commit.
        out: list[AppendResult] = []
        failed: set[str] = set()
        for r in requests:
            r.retried = True  # the batch may have committed with its answer lost
            if r.run_id in failed:  # never write past a failed append of the same run
                out.append(AppendResult(ok=False, error=StoreError("an earlier append failed")))
                continue
            try:
                with self._raw() as c:
                    out.append(self._append_one(c, r, self._d.now(c)))
            except Exception as exc:
                out.append(AppendResult(ok=False, error=exc))
            if out[-1].error is not None or not out[-1].ok:
                failed.add(r.run_id)
        return out

    def _append_one(self, c: RawTx, req: AppendRequest, now: float) -> AppendResult:
        if not req.append_id:
            req.append_id = uuid.uuid4().hex
        elif req.retried:
            row = self._prep.first(
                c, "appended", _appended, {"run_id": req.run_id, "append_id": req.append_id}
            )
            if row is not None and row[0] is not None:
                # The first try committed; only its answer was lost. A signal it consumed is
                # the one marked with the append's first seq.
                got = None
                if req.consume_signal is not None:
                    sig = self._prep.first(
                        c,
                        "consumed_signal",
                        _consumed_signal,
                        {"run_id": req.run_id, "seq": row[1]},
                    )
                    got = (int(sig[0]), sig[1]) if sig is not None else None
                return AppendResult(ok=True, last_seq=int(row[0]), signal=got)
        evs = list(req.events)
        signal: tuple[int, bytes | None] | None = None
        if req.consume_signal is not None:
            name, position = req.consume_signal
            sig = self._prep.first(
                c, "oldest_signal", _oldest_signal, {"run_id": req.run_id, "name": name}
            )
            if sig is not None:
                signal = (int(sig[0]), sig[1])
                payload = msgspec.Raw(sig[1]) if sig[1] is not None else None
                evs.insert(
                    0,
                    NewEvent(
                        T.SIGNAL_RECEIVED,
                        SignalData(payload=payload, signal_id=int(sig[0])),
                        position=position,
                        name=name,
                    ),
                )
        encoded = [encode_data(e.data) for e in evs]
        proj = project(evs, encoded, now)
        n = len(evs)
        values = proj.values
        if proj.releases:
            if not self._d.serialized_writes:
                # Lock the run's row before reading what it waits for: a child's end or a
                # signal that commits after the reads below then waits for this transaction
                # and wakes the run it finds sleeping (``_wake_parent``, ``send_signal``);
                # one that committed before is seen by them (each statement reads afresh).
                self._prep.run(c, "lock_run", _lock_run, {"id": req.run_id})
            due = self._due_on_suspend(c, req, proj.waiting_for, proj.wake_at, now)
            values["due_at"] = due
            if due is not None and due <= now:
                self._notify(c, "")
        increments = {**proj.increments, "last_seq": n}
        fence = {
            **{f"v_{k}": v for k, v in values.items()},
            **{f"i_{k}": v for k, v in increments.items()},
            "w_id": req.run_id,
            "w_epoch": req.epoch,
        }
        rows: list[dict[str, Any]] = [
            {
                "run_id": req.run_id,
                "seq": i,
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
        ]
        if n and self._d.update_from_returning:
            # One statement, one round trip: the fenced update and the events' insert in
            # one ``WITH`` (the insert reads the seqs from the update's RETURNING; a stale
            # epoch updates nothing, so nothing is inserted).
            shape = (tuple(values), tuple(increments), n)
            res = self._prep.first(
                c,
                ("append_cte", *shape),
                lambda: _fenced_append(*shape),
                {**fence, **{f"{k}_{i}": v for i, r in enumerate(rows) for k, v in r.items()}},
            )
        else:
            res = self._prep.first(
                c,
                ("append", tuple(values), tuple(increments)),
                lambda: _fenced_update(tuple(values), tuple(increments)),
                fence,
            )
        if res is None:
            return AppendResult(ok=False)
        last, parent_id = int(res[0]), res[1]
        if n:
            first = last - n + 1
            if not self._d.update_from_returning:
                for r in rows:
                    r["seq"] += first
                self._prep.run(c, "insert_events", insert_events, rows)
            if signal is not None:
                self._prep.run(
                    c, "consume_signal", _consume_signal, {"id": signal[0], "seq": first}
                )
        for child in req.new_runs:
            self._insert_run(c, child, now)
        if proj.ends:
            self._notify(c, "")  # a queue slot frees up: workers blocked by a limit retry
            if parent_id is not None:
                self._wake_parent(c, parent_id, now)
        return AppendResult(ok=True, last_seq=last, signal=signal)

    def _due_on_suspend(
        self,
        c: RawTx,
        req: AppendRequest,
        waiting_for: WaitFor | None,
        wake_at: float | None,
        now: float,
    ) -> float | None:
        """When a run that hands its lease back becomes due: now if what it waits for is
        already there (a signal in the inbox, an ended child), else at ``wake_at``."""
        if wake_at is None and waiting_for is None:
            return now  # released by a stopping worker
        if waiting_for is not None and waiting_for.kind is WaitKind.SIGNAL:
            hit = self._prep.first(
                c,
                "oldest_signal",
                _oldest_signal,
                {"run_id": req.run_id, "name": waiting_for.name},
            )
            if hit is not None:
                return now
        elif (
            waiting_for is not None and waiting_for.kind is WaitKind.CHILDREN and req.wait_children
        ):
            ids = list(req.wait_children)
            hit = self._prep.first(
                c,
                ("ended_child", len(ids)),
                lambda: _ended_child(len(ids)),
                {f"c{i}": rid for i, rid in enumerate(ids)},
            )
            if hit is not None:
                return now
        return wake_at
