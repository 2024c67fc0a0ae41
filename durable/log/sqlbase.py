"""What every part of :class:`~durable.log.sqlstore.SqlStore` shares.

The dialect, the transactions, the row shapes, and the two statements that more than one part
writes with: a run's insert (create, fork, a child started by an append) and a parent's wake-up
(an append, a cancel or a stall limit ends a child).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import msgspec
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from durable.events import EventType, RunStartedData, encode_data
from durable.log._dberrors import translate_errors
from durable.log.dialect import Dialect
from durable.log.prepared import Prepared
from durable.log.projection import TERMINAL_STATUSES
from durable.log.schema import events, runs
from durable.log.store import JournalRow, NewRun, RunRow, Store

T = EventType

_RUN_COLUMNS = [runs.c[f] for f in RunRow.__slots__]
_EVENT_COLUMNS = [events.c[f] for f in JournalRow.__slots__]
_TERMINAL = list(TERMINAL_STATUSES)


def _run(row: Any) -> RunRow:
    return RunRow(*row)


def _journal(row: Any) -> JournalRow:
    return JournalRow(*row)


class SqlBase(Store):
    """The connections and the statements shared by the leases, the journal and the clients."""

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
