"""What every part of :class:`~durable.log.sqlstore.SqlStore` shares.

The dialect, the transactions, the row shapes, and the two statements that more than one part
writes with: a run's insert (create, fork, a child started by an append) and a parent's wake-up
(an append, a cancel or a stall limit ends a child).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator, Sequence
from functools import partial
from typing import Any

import msgspec
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from durable.events import EventType, RunStartedData, encode_data
from durable.log._dberrors import DriverErrors, translate_errors
from durable.log.dialect import Dialect, RawTx
from durable.log.prepared import Prepared
from durable.log.projection import TERMINAL_STATUSES
from durable.log.schema import events, runs
from durable.log.store import JournalRow, NewRun, RunRow, Store

T = EventType

_RUN_COLUMNS = [runs.c[f] for f in RunRow.__slots__]
_EVENT_COLUMNS = [events.c[f] for f in JournalRow.__slots__]
_TERMINAL = list(TERMINAL_STATUSES)
_USED = "durable_used"
"""Key in a pooled connection's ``info``: when a transaction last ended on it (monotonic)."""

_NOTIFIED = "durable_notified"
"""Key in a pooled connection's ``info``: its transaction asked for a wake-up."""


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
    waiting = sa.and_(runs.c.status == "sleeping", runs.c.waiting_for == "children")
    return (
        sa.update(runs)
        .where(runs.c.id == sa.bindparam("id"))
        .values(due_at=sa.case((waiting, sa.bindparam("now")), else_=runs.c.due_at))
    )


def insert_events() -> Any:
    """``INSERT INTO events`` of one row, every column bound (run as an executemany)."""
    return events.insert().values({c.name: sa.bindparam(c.name) for c in events.c})


def select_run() -> Any:
    """One run's row by id (bind ``id``)."""
    return sa.select(*_RUN_COLUMNS).where(runs.c.id == sa.bindparam("id"))


_CHUNK = 256
"""Most runs one ``INSERT`` of :meth:`SqlBase._insert_runs` writes."""

_PROBE_RUN = NewRun(id="", workflow="", queue="", input=b"")


def _chunk(left: int) -> int:
    """The next chunk's size: ``_CHUNK``, else the largest power of two that fits, so that
    few statement shapes are compiled."""
    if left >= _CHUNK:
        return _CHUNK
    return 1 << (left.bit_length() - 1)


def _run_values(run: NewRun, now: float) -> dict[str, Any]:
    """The columns of a new run's row."""
    return {
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


def _run_started(run: NewRun) -> bytes:
    """The payload of a new run's ``run_started`` event."""
    return encode_data(
        RunStartedData(
            input=msgspec.Raw(run.input),
            workflow=run.workflow,
            parent_id=run.parent_id,
            forked_from=run.forked_from,
        )
    )


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
        self._errors = DriverErrors(dialect.write_engine.dialect.dbapi)

    def close(self) -> None:
        self._d.dispose()

    @contextlib.contextmanager
    def _write(self) -> Iterator[Connection]:
        notified = False
        with translate_errors(self._errors):
            with self._d.write_engine.begin() as conn:
                try:
                    yield conn
                finally:
                    notified = bool(conn.info.pop(_NOTIFIED, None))
            if notified:
                self._d.committed(True)

    def _notify(self, c: Connection | RawTx, queue: str) -> None:
        """Wake other processes' idle workers once this transaction commits (once per
        transaction and queue)."""
        sent: set[str] = c.notified if isinstance(c, RawTx) else c.info.setdefault(_NOTIFIED, set())
        if queue not in sent:
            sent.add(queue)
            self._d.notify(c, queue)

    @contextlib.contextmanager
    def _read(self) -> Iterator[Connection]:
        with translate_errors(self._errors), self._d.read_engine.connect() as conn:
            yield conn

    @contextlib.contextmanager
    def _raw(self, write: bool = True) -> Iterator[RawTx]:
        """A transaction on a pooled DBAPI connection, for the hot path's prepared
        statements: no SQLAlchemy ``Connection``, events or result objects around it.
        Committed if the block ends normally, rolled back otherwise; a connection that
        failed is discarded rather than pooled again."""
        with translate_errors(self._errors):
            engine = self._d.fast_engine if write else self._d.fast_read_engine
            pooled = self._checkout(engine)
            tx = RawTx(pooled, self._d.write_engine.dialect)
            try:
                if write:
                    self._d.begin_raw(pooled.driver_connection)
                yield tx
                pooled.commit()
                pooled.info[_USED] = time.monotonic()
            except BaseException:
                try:
                    pooled.rollback()
                except Exception:
                    pooled.invalidate()
                if self._d.is_broken(pooled.driver_connection):
                    # The server went away (a restart, a failover): every idle connection of
                    # this pool is as dead; start afresh rather than fail on each in turn.
                    pooled.invalidate()
                    engine.dispose()
                raise
            finally:
                pooled.close()
            if tx.notified:
                self._d.committed(True)

    def _checkout(self, engine: sa.Engine) -> Any:
        """A pooled DBAPI connection; one idle for longer than the dialect's
        ``ping_idle_after`` is checked first (a busy one is not: no round trip on the hot
        path), and replaced, with its idle pool-mates, if the server dropped it."""
        pooled = engine.raw_connection()
        after = self._d.ping_idle_after
        if after is None or time.monotonic() - pooled.info.get(_USED, 0.0) < after:
            return pooled
        try:
            dbapi: Any = pooled.driver_connection
            dbapi.cursor().execute("SELECT 1")
            pooled.rollback()
            return pooled
        except Exception:
            pooled.invalidate()
            pooled.close()
            engine.dispose()
            return engine.raw_connection()

    def _insert_run(self, c: Connection | RawTx, run: NewRun, now: float) -> bool:
        """Insert a run and its ``run_started`` (seq 1); False if the id exists."""
        values = _run_values(run, now)
        ins = self._prep.first(c, "insert_run", lambda: self._insert_run_statement(values), values)
        if ins is None:
            return False
        self._prep.run(
            c,
            "insert_run_started",
            _insert_run_started,
            {"run_id": run.id, "at": now, "data": _run_started(run)},
        )
        return True

    def _insert_runs(self, c: RawTx, new: Sequence[NewRun], now: float) -> set[str]:
        """Insert many runs and their ``run_started`` events; the ids that were new."""
        created: set[str] = set()
        i = 0
        while i < len(new):
            n = _chunk(len(new) - i)
            chunk = new[i : i + n]
            i += n
            params: dict[str, Any] = {}
            for k, run in enumerate(chunk):
                params.update({f"{col}_{k}": v for col, v in _run_values(run, now).items()})
            rows = self._prep.all(
                c, ("insert_runs", n), partial(self._insert_runs_statement, n), params
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

    def _insert_runs_statement(self, n: int) -> Any:
        """A multi-row ``INSERT ... ON CONFLICT (id) DO NOTHING RETURNING id`` of ``n`` runs."""
        cols = list(_run_values(_PROBE_RUN, 0.0))
        values: list[dict[str, Any]] = [
            {col: sa.bindparam(f"{col}_{k}") for col in cols} for k in range(n)
        ]
        return self._d.insert_ignore(runs, ["id"]).values(values).returning(runs.c.id)

    def _insert_run_statement(self, values: dict[str, Any]) -> Any:
        """``INSERT ... ON CONFLICT (id) DO NOTHING RETURNING id`` of a run's row."""
        return (
            self._d.insert_ignore(runs, ["id"])
            .values({name: sa.bindparam(name) for name in values})
            .returning(runs.c.id)
        )

    def _wake_parent(self, c: Connection | RawTx, parent_id: str, now: float) -> None:
        """Make a parent that waits for its children due now (always touching its row, so
        that a concurrent suspend of the parent and this wake-up serialize)."""
        self._prep.run(c, "wake_parent", _wake_parent, {"id": parent_id, "now": now})
        self._notify(c, "")
