"""Signals: a run's inbox (``durable_signals``), filled by clients and consumed by appends.

A signal is consumed by exactly one ``signal_received`` event: the append that writes it marks
the signal with that event's seq (``consumed_seq``), in the same transaction.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from durable.errors import IdConflictError
from durable.log.db import Db
from durable.log.dialect import RawTx
from durable.log.rows import status_is
from durable.log.runs import AfterCreate
from durable.log.schema import runs, signals
from durable.log.store import RunRow
from durable.states import Status, WaitFor

__all__ = ["Signals"]


def _oldest() -> Any:
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


def _consume() -> Any:
    """Mark a signal consumed by the event at a seq (binds ``id``, ``seq``)."""
    return (
        sa.update(signals)
        .where(signals.c.id == sa.bindparam("id"))
        .values(consumed_seq=sa.bindparam("seq"))
    )


def _consumed_by() -> Any:
    """The signal that the event at a seq consumed (binds ``run_id``, ``seq``)."""
    return sa.select(signals.c.id, signals.c.payload).where(
        signals.c.run_id == sa.bindparam("run_id"), signals.c.consumed_seq == sa.bindparam("seq")
    )


class Signals:
    """Send a signal (outside any lease); find and consume one (inside an append)."""

    def __init__(self, db: Db) -> None:
        self._db = db
        self._prep = db.prep

    def send(self, run_id: str, name: str, payload: bytes | None) -> bool:
        """See :meth:`Store.send_signal`."""
        db = self._db
        with db.write() as c:
            now = db.now(c)
            exists = c.execute(sa.select(runs.c.id).where(runs.c.id == run_id)).first()
            if exists is None:
                return False
            self.add(c, run_id, name, payload, now)
        return True

    def add(
        self, c: Connection | RawTx, run_id: str, name: str, payload: bytes | None, now: float
    ) -> None:
        """Add a signal to an existing run's inbox in the transaction of ``c``, and make
        the run due now if it waits for that name."""
        # Insert first, then touch the row: a suspend that locked the row before this
        # update sees the signal once it reads (``Journal``: ``lock_for_suspend``).
        c.execute(
            signals.insert().values(run_id=run_id, name=name, payload=payload, created_at=now)
        )
        waiting = sa.and_(
            status_is(Status.SLEEPING), runs.c.waiting_for == WaitFor.signal(name).column()
        )
        c.execute(
            sa.update(runs)
            .where(runs.c.id == run_id)
            .values(due_at=sa.case((waiting, now), else_=runs.c.due_at))
        )
        self._db.notify(c, "")

    def on_start(self, workflow: str, name: str, payload: bytes | None) -> AfterCreate:
        """What a start with a signal (``Store.start_and_signal``) does in its transaction
        once the run exists: refuse a run of another workflow (``IdConflictError``: nothing
        is written), else add the signal."""

        def deliver(c: RawTx, row: RunRow, now: float) -> None:
            if row.workflow != workflow:
                raise IdConflictError(
                    f"run id {row.id!r} is taken by a run of workflow {row.workflow!r}"
                )
            self.add(c, row.id, name, payload, now)

        return deliver

    def oldest(self, c: RawTx, run_id: str, name: str) -> tuple[int, bytes | None] | None:
        """The run's oldest unconsumed signal called ``name``: ``(id, payload)``."""
        row = self._prep.first(c, "oldest_signal", _oldest, {"run_id": run_id, "name": name})
        return (int(row[0]), row[1]) if row is not None else None

    def consume(self, c: RawTx, signal_id: int, seq: int) -> None:
        """Mark the signal consumed by the event at ``seq``."""
        self._prep.run(c, "consume_signal", _consume, {"id": signal_id, "seq": seq})

    def consumed_by(self, c: RawTx, run_id: str, seq: int) -> tuple[int, bytes | None] | None:
        """The signal that the run's event at ``seq`` consumed, if any."""
        row = self._prep.first(c, "consumed_signal", _consumed_by, {"run_id": run_id, "seq": seq})
        return (int(row[0]), row[1]) if row is not None else None
