"""The runs: their insert (with the ``run_started`` event), reads, fork, resume, and the one
way a run is ended outside its lease (:meth:`Runs.end`: a cancel, the recovery limit).

**The run's input lives in ``durable_runs.input``**, written once with the row and never
changed: it is the source of truth, and every reader (the worker that executes the run, a
replay, a fork, an idempotent start comparing inputs) reads it there. The ``run_started``
event records where the run came from (its workflow, parent, the run it was forked from) and
no copy of the input; events written by earlier versions still carry one, which nothing reads.

**A workflow's timeout counts from the run's first start**, not from its creation: a new run
has no ``deadline_at``; the lease that first takes it sets ``deadline_at = now + timeout``
(``durable.log.leasing``), so that a ``delay`` or a wait in a queue does not use it up.
:meth:`Runs.resume` clears it: a resumed run gets a fresh deadline when it is next taken.
"""

from __future__ import annotations

import builtins
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from durable.errors import DuplicateRunError, IdConflictError
from durable.events import (
    OUTCOME_KIND,
    CancelData,
    EmptyData,
    EventType,
    NewEvent,
    RunStartedData,
    encode_data,
)
from durable.log.blocked import Blocked
from durable.log.db import Db
from durable.log.dedup import Dedup
from durable.log.dialect import RawTx
from durable.log.pending import Bounds
from durable.log.projection import assignments, project
from durable.log.rows import (
    CHUNK,
    RUN_COLUMNS,
    binds,
    chunk_size,
    ended,
    named,
    not_ended,
    run_row,
    select_run,
    status_is,
)
from durable.log.schema import OPEN_CANCEL_REQUEST, events, runs
from durable.log.store import JournalRow, NewRun, RunRow
from durable.states import Status, WaitFor

__all__ = ["Runs"]

T = EventType

_PROBE_RUN = NewRun(id="", workflow="", queue="", input=b"")

_DEDUP_TRIES = 3
"""Inserts a start tries when the run holding its key ends between the refused insert and
the read of that run (Postgres, read committed)."""

AfterCreate = Callable[[RawTx, RunRow, float], None]
"""What :meth:`Runs.create` runs in its transaction once the run exists: ``(tx, row, now)``."""


def _run_values(run: NewRun, now: float) -> dict[str, Any]:
    """The columns of a new run's row (no ``deadline_at``: it is set at the first lease)."""
    return {
        "id": run.id,
        "workflow": run.workflow,
        "queue": run.queue,
        "status": Status.PENDING.value,
        "priority": run.priority,
        "input": run.input,
        "parent_id": run.parent_id,
        "due_at": now + max(run.delay, 0.0),
        "wake_at": now + run.delay if run.delay > 0 else None,
        "timeout": run.timeout,
        "lease_epoch": 0,
        "last_seq": 1,
        "attempt": 1,
        "steps_completed": 0,
        "stalls": 0,
        "trace_context": run.trace_context,
        "options": run.options,
        "version": run.version,
        "dedup_key": run.dedup_key,
        "created_at": now,
        "updated_at": now,
    }


def _run_started(run: NewRun) -> bytes:
    """The payload of a new run's ``run_started`` event (the input is in the row)."""
    return encode_data(
        RunStartedData(workflow=run.workflow, parent_id=run.parent_id, forked_from=run.forked_from)
    )


def _insert_run_started() -> Any:
    """``INSERT`` of a new run's first event, ``run_started`` at seq 1."""
    return events.insert().values(
        run_id=sa.bindparam("run_id"),
        seq=1,
        type=T.RUN_STARTED.value,
        epoch=0,
        at=sa.bindparam("at"),
        data=sa.bindparam("data"),
    )


def _wake_parent() -> Any:
    """Make a parent waiting for its children due now (binds ``id``, ``now``)."""
    waiting = sa.and_(status_is(Status.SLEEPING), runs.c.waiting_for == WaitFor.children().column())
    return (
        sa.update(runs)
        .where(runs.c.id == sa.bindparam("id"))
        .values(due_at=sa.case((waiting, sa.bindparam("now")), else_=runs.c.due_at))
    )


def _ended_child(n: int) -> Any:
    """One of ``n`` runs (binds ``c0..``) that has ended, if any."""
    return sa.select(runs.c.id).where(runs.c.id.in_(binds("c", n)), ended()).limit(1)


class Runs:
    """The ``durable_runs`` rows: insert, read, fork, resume, cancel, and ending a run
    outside its lease."""

    def __init__(self, db: Db) -> None:
        self._db = db
        self._prep = db.prep
        self.blocked = Blocked(db)
        """The blocked runs: taken up by workers of another version, resumed."""
        self.dedup = Dedup(db)
        """Which unfinished run holds a deduplication key."""

    # -- insert --------------------------------------------------------------------------

    def create(self, run: NewRun, then: AfterCreate | None = None) -> tuple[RunRow, bool]:
        """See :meth:`Store.create_run`; ``then(tx, row, now)`` runs in the same transaction
        once the run exists (created or not), and may raise to roll it all back."""
        db = self._db
        bounds = Bounds([run])
        for _ in range(_DEDUP_TRIES):
            with db.raw() as c:
                bounds.lock(db, c)
                now = db.now(c)
                created = self.insert(c, run, now)
                if created and bounds:
                    bounds.check(db, c, [run])
                found = self._prep.first(c, "select_run", select_run, {"id": run.id})
                if found is None:  # not inserted, and the id is free: the key is held
                    assert run.dedup_key is not None
                    refused = self.dedup.refuse(c, run.dedup_key)
                    if refused.run_id is not None:
                        raise refused
                    continue  # its holder ended since the insert: try again
                row = run_row(found)
                if then is not None:
                    then(c, row, now)
                if created:
                    db.notify(c, run.queue)
            return row, created
        raise DuplicateRunError(run.dedup_key or "", None)

    def create_many(self, new: Sequence[NewRun]) -> set[str]:
        """See :meth:`Store.create_runs`."""
        if not new:
            return set()
        db = self._db
        ordered = sorted(new, key=lambda r: r.id)  # one lock order for concurrent batches
        bounds = Bounds(ordered)
        with db.raw() as c:
            bounds.lock(db, c)
            created = self.insert_many(c, ordered, db.now(c))
            if created and bounds:
                bounds.check(db, c, [r for r in ordered if r.id in created])
            taken = [r for r in ordered if r.id not in created]
            for i in range(0, len(taken), CHUNK):
                chunk = {r.id: r for r in taken[i : i + CHUNK]}
                found = set()
                for rid, workflow in c.execute(
                    sa.select(runs.c.id, runs.c.workflow).where(runs.c.id.in_(list(chunk)))
                ):
                    found.add(rid)
                    if workflow != chunk[rid].workflow:  # raised inside: nothing is written
                        raise IdConflictError(
                            f"run id {rid!r} is taken by a run of workflow {workflow!r}"
                        )
                for rid, r in chunk.items():  # not inserted, the id free: the key is held
                    if rid not in found and r.dedup_key is not None:
                        raise self.dedup.refuse(c, r.dedup_key)
            if created:
                db.notify(c, "")
        return created

    def insert(self, c: Connection | RawTx, run: NewRun, now: float) -> bool:
        """Insert a run and its ``run_started`` (seq 1); False if the id exists."""
        values = _run_values(run, now)
        ins = self._prep.first(c, "insert_run", lambda: self._insert_statement(values), values)
        if ins is None:
            return False
        self._prep.run(
            c,
            "insert_run_started",
            _insert_run_started,
            {"run_id": run.id, "at": now, "data": _run_started(run)},
        )
        return True

    def insert_many(self, c: RawTx, new: Sequence[NewRun], now: float) -> set[str]:
        """Insert many runs and their ``run_started`` events; the ids that were new."""
        created: set[str] = set()
        i = 0
        while i < len(new):
            n = chunk_size(len(new) - i)
            chunk = new[i : i + n]
            i += n
            params: dict[str, Any] = {}
            for k, run in enumerate(chunk):
                params.update({f"{col}_{k}": v for col, v in _run_values(run, now).items()})
            rows = self._prep.all(
                c, ("insert_runs", n), partial(self._insert_many_statement, n), params
            )
            created.update(r[0] for r in rows)
        started = [
            {"run_id": run.id, "at": now, "data": _run_started(run)}
            for run in new
            if run.id in created
        ]
        if started:
            self._prep.run(c, "insert_run_started", _insert_run_started, started)
        return created

    def _insert_many_statement(self, n: int) -> Any:
        """A multi-row ``INSERT ... ON CONFLICT DO NOTHING RETURNING id`` of ``n`` runs."""
        cols = list(_run_values(_PROBE_RUN, 0.0))
        values: list[dict[str, Any]] = [
            {col: sa.bindparam(f"{col}_{k}") for col in cols} for k in range(n)
        ]
        return self._db.dialect.insert_ignore(runs).values(values).returning(runs.c.id)

    def _insert_statement(self, values: dict[str, Any]) -> Any:
        """``INSERT ... ON CONFLICT DO NOTHING RETURNING id`` of a run's row (a conflict on
        its id, or on its ``dedup_key``: see ``dedup.py``)."""
        return (
            self._db.dialect.insert_ignore(runs)
            .values({name: sa.bindparam(name) for name in values})
            .returning(runs.c.id)
        )

    # -- reads ---------------------------------------------------------------------------

    def get(self, run_id: str) -> RunRow | None:
        """See :meth:`Store.get_run`."""
        with self._db.raw(write=False) as c:
            row = self._prep.first(c, "select_run", select_run, {"id": run_id})
        return run_row(row) if row is not None else None

    def get_many(self, run_ids: Sequence[str]) -> list[RunRow]:
        """See :meth:`Store.get_runs`."""
        if not run_ids:
            return []
        with self._db.read() as c:
            rows = c.execute(sa.select(*RUN_COLUMNS).where(runs.c.id.in_(list(run_ids))))
            return [run_row(r) for r in rows]

    def any_ended(self, c: RawTx, run_ids: Sequence[str]) -> bool:
        """Whether one of ``run_ids`` has ended."""
        ids = list(run_ids)
        hit = self._prep.first(
            c, ("ended_child", len(ids)), lambda: _ended_child(len(ids)), named("c", ids)
        )
        return hit is not None

    def _reread(self, c: Connection, run_id: str) -> RunRow:
        return run_row(c.execute(sa.select(*RUN_COLUMNS).where(runs.c.id == run_id)).one())

    # -- outside any lease ---------------------------------------------------------------

    def end(self, c: Connection | RawTx, run_id: str, event: NewEvent, now: float) -> bool:
        """End a run outside its lease with one final event (``run_cancelled``, or the
        recovery limit's ``run_failed``): its row is projected as an append would project
        it, under a new epoch (so that its lease's holder can write nothing more), and a
        parent waiting for it is woken. ``False``: it had already ended, nothing written."""
        raw = encode_data(event.data)
        proj = project([event], [raw], now)
        vals = assignments(proj.values, {**proj.increments, "last_seq": 1})
        res = c.execute(
            sa.update(runs)
            .where(runs.c.id == run_id, not_ended())
            .values(**vals)
            .returning(runs.c.last_seq, runs.c.lease_epoch, runs.c.parent_id)
        ).first()
        if res is None:
            return False
        c.execute(
            events.insert().values(
                run_id=run_id,
                seq=res.last_seq,
                type=event.type.value,
                position=event.position,
                name=event.name,
                attempt=event.attempt,
                epoch=res.lease_epoch,
                at=now,
                data=raw,
            )
        )
        self._db.appended(c, run_id, final=True)
        if res.parent_id is not None:
            self.wake_parent(c, res.parent_id, now)
        return True

    def wake_parent(self, c: Connection | RawTx, parent_id: str, now: float) -> None:
        """Make a parent that waits for its children due now (always touching its row, so
        that a concurrent suspend of the parent and this wake-up serialize)."""
        self._prep.run(c, "wake_parent", _wake_parent, {"id": parent_id, "now": now})
        self._db.notify(c, "")

    def cancel(self, run_id: str, reason: str) -> tuple[RunRow, bool] | None:
        """See :meth:`Store.cancel`."""
        asked: builtins.list[str] = []
        with self._db.write() as c:
            now = self._db.now(c)
            row = c.execute(sa.select(runs.c.id).where(runs.c.id == run_id)).first()
            if row is None:
                return None
            done = self.cancel_tree(c, run_id, reason, now, asked)
            got = self._reread(c, run_id), done
        if asked:
            self._db.dialect.cancels_committed()
        return got

    def cancel_tree(
        self,
        c: Connection,
        run_id: str,
        reason: str,
        now: float,
        asked: builtins.list[str],
        ended: set[str] | None = None,
    ) -> bool:
        """Cancel ``run_id`` and its unfinished children: a run that a live lease holds is
        asked to stop (its id joins ``asked``), any other unfinished run ends at once (its
        id joins ``ended``, if given). Whether this call cancelled ``run_id`` or asked its
        holder to."""
        held = c.execute(
            sa.select(runs.c.status, runs.c.lease_expires_at, runs.c.cancel_requested_at)
            .where(runs.c.id == run_id)
            .with_for_update()
        ).first()
        if held is None:
            return False
        if held.status == Status.RUNNING.value and (held.lease_expires_at or 0.0) > now:
            if held.cancel_requested_at is not None:
                return False  # asked already; its holder is on it
            c.execute(sa.update(runs).where(runs.c.id == run_id).values(cancel_requested_at=now))
            self._db.dialect.notify_cancel(c, run_id)
            asked.append(run_id)
        elif not self.end(c, run_id, NewEvent(T.RUN_CANCELLED, CancelData(text=reason)), now):
            return False
        elif ended is not None:
            ended.add(run_id)
        children = c.execute(
            sa.select(runs.c.id).where(runs.c.parent_id == run_id, not_ended())
        ).all()
        for (child_id,) in children:
            self.cancel_tree(c, child_id, f"parent {run_id} cancelled", now, asked, ended)
        return True

    def cancel_requests(self) -> builtins.list[RunRow]:
        """See :meth:`Store.cancel_requests`."""
        with self._db.read() as c:
            rows = c.execute(sa.select(*RUN_COLUMNS).where(sa.text(OPEN_CANCEL_REQUEST)))
            return [run_row(r) for r in rows]

    def resume(self, run_id: str) -> RunRow | None:
        """See :meth:`Store.resume`; the run's deadline is cleared, so that its timeout
        counts afresh from when it is next taken."""
        db = self._db
        with db.write() as c:
            if self.resume_in(c, run_id, db.now(c)) is None:
                return None
            return self._reread(c, run_id)

    def resume_in(self, c: Connection, run_id: str, now: float) -> bool | None:
        """Resume ``run_id`` in the transaction of ``c`` (see :meth:`Store.resume`): whether
        it was resumed (or unblocked), ``None`` if there is no such run.

        Raises:
            DuplicateRunError: it is failed or cancelled, and another unfinished run holds
                its ``dedup_key`` now.
        """
        resumable = [Status.FAILED.value, Status.CANCELLED.value]
        db = self._db
        row = c.execute(
            sa.select(runs.c.queue, runs.c.status, runs.c.dedup_key).where(runs.c.id == run_id)
        ).first()
        if row is None:
            return None
        if self.blocked.resume(c, run_id, now):
            return True
        if row.dedup_key is not None and row.status in resumable:
            holder = self.dedup.holder(c, row.dedup_key, run_id)
            if holder is not None:
                raise DuplicateRunError(row.dedup_key, holder)
        res = c.execute(
            sa.update(runs)
            .where(runs.c.id == run_id, runs.c.status.in_(resumable))
            .values(
                status=Status.PENDING.value,
                lease_epoch=runs.c.lease_epoch + 1,
                attempt=runs.c.attempt + 1,
                due_at=now,
                finished_at=None,
                error_type=None,
                error_message=None,
                output=None,
                stalls=0,
                deadline_at=None,
                cancel_requested_at=None,
                updated_at=now,
                last_seq=runs.c.last_seq + 1,
            )
            .returning(runs.c.last_seq, runs.c.lease_epoch, runs.c.attempt)
        ).first()
        if res is None:
            return False
        db.notify(c, row.queue)
        db.appended(c, run_id)
        c.execute(
            events.insert().values(
                run_id=run_id,
                seq=res.last_seq,
                type=T.RUN_RESUMED.value,
                attempt=res.attempt,
                epoch=res.lease_epoch,
                at=now,
                data=encode_data(EmptyData()),
            )
        )
        return True

    def fork(self, run_id: str, new: NewRun, keep: Sequence[JournalRow]) -> RunRow:
        """See :meth:`Store.fork`."""
        db = self._db
        with db.write() as c:
            now = db.now(c)
            if not self.insert(c, new, now):
                raise IdConflictError(f"a run with id {new.id!r} exists")
            db.notify(c, new.queue)
            if keep:
                c.execute(
                    events.insert(),
                    [
                        {
                            "run_id": new.id,
                            "seq": 2 + i,
                            "type": e.type.value,
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
                done = sum(1 for e in keep if e.type is T.STEP_COMPLETED)
                c.execute(
                    sa.update(runs)
                    .where(runs.c.id == new.id)
                    .values(last_seq=1 + len(keep), steps_completed=done)
                )
            return self._reread(c, new.id)
