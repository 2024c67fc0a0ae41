"""The client operations of :class:`~durable.log.sqlstore.SqlStore`: cancel, resume, fork,
and signals, each outside any lease (under a new epoch where the run's journal grows)."""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from durable.events import OUTCOME_KIND, CancelData, EmptyData, EventType, NewEvent, encode_data
from durable.log.schema import events, runs, signals
from durable.log.sqlbase import _RUN_COLUMNS, _TERMINAL, SqlBase, _run
from durable.log.store import JournalRow, NewRun, RunRow
from durable.states import WaitFor

T = EventType


class ClientOps(SqlBase):
    """Client operations: a mixin of :class:`~durable.log.sqlstore.SqlStore`."""

    # -- clients -------------------------------------------------------------------------

    def cancel(self, run_id: str, reason: str) -> tuple[RunRow, bool] | None:
        with self._write() as c:
            now = self._d.now(c)
            row = c.execute(sa.select(*_RUN_COLUMNS).where(runs.c.id == run_id)).first()
            if row is None:
                return None
            done = self._cancel_tree(c, run_id, reason, now)
            return _run(c.execute(sa.select(*_RUN_COLUMNS).where(runs.c.id == run_id)).one()), done

    def _cancel_tree(self, c: Connection, run_id: str, reason: str, now: float) -> bool:
        """Cancel ``run_id`` and its unfinished children; whether ``run_id`` itself was
        unfinished (and is now cancelled)."""
        ev = NewEvent(T.RUN_CANCELLED, CancelData(text=reason))
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
            return False
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
        return True

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
                    self._notify(c, row.queue)
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
            return _run(c.execute(sa.select(*_RUN_COLUMNS).where(runs.c.id == run_id)).one())

    def fork(self, run_id: str, new: NewRun, keep: Sequence[JournalRow]) -> RunRow:
        with self._write() as c:
            now = self._d.now(c)
            if not self._insert_run(c, new, now):
                from durable.errors import IdConflictError

                raise IdConflictError(f"a run with id {new.id!r} exists")
            self._notify(c, new.queue)
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
            waiting = sa.and_(
                runs.c.status == "sleeping", runs.c.waiting_for == WaitFor.signal(name).column()
            )
            c.execute(
                sa.update(runs)
                .where(runs.c.id == run_id)
                .values(due_at=sa.case((waiting, now), else_=runs.c.due_at))
            )
            self._notify(c, "")
        return True
