"""How an append's fenced update and its events reach the database: the one place where
SQLite and Postgres append differently, chosen once when the store opens.

Both write the same thing: ``UPDATE runs SET <projection> WHERE id AND lease_epoch = epoch AND
not ended RETURNING last_seq, parent_id, watched_until``, and, only if it matched, the events
with the seqs before that ``last_seq``. :class:`SqliteAppender` runs the update, then an executemany
``INSERT``; :class:`PostgresAppender` runs both in one statement (one round trip), and locks
a suspending run's row before the append reads what the run waits for (SQLite needs no lock:
its write transactions never overlap).
"""

from __future__ import annotations

import abc
from typing import Any, NamedTuple

import sqlalchemy as sa

from durable.log.db import Db
from durable.log.dialect import RawTx
from durable.log.rows import insert_events, not_ended
from durable.log.schema import events, runs

__all__ = ["Appender", "PostgresAppender", "SqliteAppender", "Written", "fenced_update"]

_EVENT_INSERT_COLUMNS = tuple(c.name for c in events.c)


class Written(NamedTuple):
    """What an append's fenced update read back from the run's row."""

    last_seq: int
    parent_id: str | None
    watched_until: float | None
    """Until when some process watches the run's journal (``None``: nobody has)."""


def fenced_update(values: tuple[str, ...], increments: tuple[str, ...]) -> Any:
    """``UPDATE runs SET <projection> WHERE id AND lease_epoch AND not ended RETURNING``:
    binds ``v_<column>`` per set value, ``i_<column>`` per increment, ``w_id``, ``w_epoch``."""
    sets: dict[str, Any] = {k: sa.bindparam(f"v_{k}") for k in values}
    for k in increments:
        sets[k] = runs.c[k] + sa.bindparam(f"i_{k}")
    return (
        sa.update(runs)
        .where(
            runs.c.id == sa.bindparam("w_id"),
            runs.c.lease_epoch == sa.bindparam("w_epoch"),
            not_ended(),
        )
        .values(**sets)
        .returning(runs.c.last_seq, runs.c.parent_id, runs.c.watched_until)
    )


class Appender(abc.ABC):
    """Writes one append's fenced update and its events, inside the append's transaction."""

    def __init__(self, db: Db) -> None:
        self._prep = db.prep

    @abc.abstractmethod
    def lock_for_suspend(self, c: RawTx, run_id: str) -> None:
        """Before a suspending append reads what its run waits for (a signal, an ended
        child): make a signal or a child's end that commits after those reads wait for this
        transaction (and then wake the run it finds sleeping)."""

    @abc.abstractmethod
    def write(
        self,
        c: RawTx,
        values: dict[str, Any],
        increments: dict[str, int],
        fence: dict[str, Any],
        rows: list[dict[str, Any]],
    ) -> Written | None:
        """Run the fenced update (``fence``: its parameters) and, if it matched, insert
        ``rows`` (their ``seq`` counted from 0) with the seqs that end at the row's new
        ``last_seq``. Returns what the update read back, or ``None``: the epoch was stale or
        the run has ended, and nothing was written."""


class SqliteAppender(Appender):
    """The fenced update, then the events' ``INSERT`` (an executemany)."""

    def lock_for_suspend(self, c: RawTx, run_id: str) -> None:
        """Nothing: the write transaction holds SQLite's one write lock from its start."""

    def write(
        self,
        c: RawTx,
        values: dict[str, Any],
        increments: dict[str, int],
        fence: dict[str, Any],
        rows: list[dict[str, Any]],
    ) -> Written | None:
        shape = (tuple(values), tuple(increments))
        res = self._prep.first(c, ("append", *shape), lambda: fenced_update(*shape), fence)
        if res is None:
            return None
        last = int(res[0])
        if rows:
            first = last - len(rows) + 1
            for r in rows:
                r["seq"] += first
            self._prep.run(c, "insert_events", insert_events, rows)
        return Written(last, res[1], res[2])


def _lock_run() -> Any:
    """Lock a run's row until the transaction ends (binds ``id``)."""
    return sa.select(runs.c.id).where(runs.c.id == sa.bindparam("id")).with_for_update()


def _fenced_append(values: tuple[str, ...], increments: tuple[str, ...], n: int) -> Any:
    """The fenced update and the insert of its ``n`` events in one statement:
    ``WITH u AS (UPDATE ... RETURNING), ins AS (INSERT ... SELECT FROM u) SELECT FROM u``.
    Binds those of :func:`fenced_update`, and ``{column}_{i}`` per event."""
    upd = fenced_update(values, increments).cte("u")
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
    return sa.select(upd.c.last_seq, upd.c.parent_id, upd.c.watched_until).add_cte(ins)


class PostgresAppender(Appender):
    """The fenced update and the events' insert in one ``WITH`` statement (the insert reads
    the seqs from the update's ``RETURNING``: a stale epoch updates nothing, so nothing is
    inserted), and a row lock before a suspend reads what the run waits for."""

    def lock_for_suspend(self, c: RawTx, run_id: str) -> None:
        """``SELECT ... FOR UPDATE`` of the run's row: a child's end or a signal that commits
        after the append's reads then waits for this transaction and wakes the run it finds
        sleeping; one that committed before is seen by them (each statement reads afresh)."""
        self._prep.run(c, "lock_run", _lock_run, {"id": run_id})

    def write(
        self,
        c: RawTx,
        values: dict[str, Any],
        increments: dict[str, int],
        fence: dict[str, Any],
        rows: list[dict[str, Any]],
    ) -> Written | None:
        n = len(rows)
        if n:
            shape = (tuple(values), tuple(increments), n)
            res = self._prep.first(
                c,
                ("append_cte", *shape),
                lambda: _fenced_append(*shape),
                {**fence, **{f"{k}_{i}": v for i, r in enumerate(rows) for k, v in r.items()}},
            )
        else:
            key = (tuple(values), tuple(increments))
            res = self._prep.first(c, ("append", *key), lambda: fenced_update(*key), fence)
        if res is None:
            return None
        return Written(int(res[0]), res[1], res[2])
