"""The runs list: the filters of :class:`~durable.log.store.RunFilter` as SQL, keyset pages
in the list's order, and the counts per status under the same filters.

The list's order is ``created_at`` then ``id``, both descending (newest first). A page
after a cursor ``(created_at, id)`` is ``created_at <= c AND (created_at < c OR id < i)``:
the first term bounds a range of any index that ends in ``created_at, id`` (v9 has one per
status, workflow and queue beside the one of ``created_at``), so that a page reads about as
many index entries as it returns, however deep it is, and never sorts the log.

Every value given is a bound parameter. Where to look first is the database's choice,
except on SQLite, whose planner keeps no statistics (durable never runs ``ANALYZE``): given
the status of unfinished runs (few, usually) beside a workflow or a queue, the status's
index is the one to walk (:func:`_steer`), and an id prefix is a range of the primary key
only when that range is small (:meth:`Dialect.id_prefix`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from durable.log.db import Db
from durable.log.rows import RUN_COLUMNS, run_row
from durable.log.schema import runs
from durable.log.store import RunFilter, RunRow
from durable.states import TERMINAL, Status

__all__ = ["count_runs", "list_runs"]

_ORDER = (runs.c.created_at.desc(), runs.c.id.desc())


def _unindexed(column: Any) -> Any:
    """``column || ''``: the same value, which no index of ``column`` serves."""
    return column.concat("")


def _steer(db: Db, flt: RunFilter) -> bool:
    """Whether the workflow and queue terms are kept off their indexes (SQLite, with the
    status of unfinished runs given: walking that status's index reads the fewest rows)."""
    unfinished = flt.status is not None and flt.status not in TERMINAL
    return unfinished and not db.dialect.planner_has_statistics


def _where(db: Db, c: sa.Connection, flt: RunFilter) -> list[Any]:
    """The terms of ``flt`` (but its limit and cursor)."""
    terms: list[Any] = []
    if flt.status is not None:
        terms.append(runs.c.status == Status(flt.status).value)
    if flt.statuses:
        terms.append(runs.c.status.in_([Status(s).value for s in flt.statuses]))
    steer = _steer(db, flt)
    for column, value in ((runs.c.workflow, flt.workflow), (runs.c.queue, flt.queue)):
        if value is not None:
            terms.append((_unindexed(column) if steer else column) == value)
    if flt.parent_id is not None:
        terms.append(runs.c.parent_id == flt.parent_id)
    if flt.version is not None:
        terms.append(runs.c.version == flt.version)
    if flt.since is not None:
        terms.append(runs.c.created_at >= flt.since)
    if flt.until is not None:
        terms.append(runs.c.created_at <= flt.until)
    if flt.id_prefix is not None:
        terms.append(db.dialect.id_prefix(c, runs.c.id, flt.id_prefix))
    return terms


def list_runs(db: Db, flt: RunFilter) -> list[RunRow]:
    """Runs matching ``flt``, newest first: at most ``flt.limit`` (``None``: all), all
    older than ``flt.before`` in the list's order when it is given."""
    with db.read() as c:
        terms = _where(db, c, flt)
        if flt.before is not None:
            at, run_id = flt.before
            terms.append(runs.c.created_at <= at)
            terms.append(sa.or_(runs.c.created_at < at, runs.c.id < run_id))
        q = sa.select(*RUN_COLUMNS).where(*terms).order_by(*_ORDER)
        if flt.limit is not None:
            q = q.limit(flt.limit)
        return [run_row(r) for r in c.execute(q)]


def count_runs(db: Db, flt: RunFilter) -> dict[Status, int]:
    """How many runs match ``flt`` (its limit and cursor aside) in each status; a status
    without any is absent."""
    with db.read() as c:
        terms = _where(db, c, flt)
        q = sa.select(runs.c.status, sa.func.count()).where(*terms).group_by(runs.c.status)
        rows: Sequence[Any] = c.execute(q).all()
    return {Status(status): int(n) for status, n in rows}
