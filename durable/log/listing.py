"""The runs list: the filters of :class:`~durable.log.store.RunFilter` as SQL, keyset pages
in the list's order, and the counts per status under the same filters.

The list's order is ``created_at`` then ``id``, both descending (newest first). A page
after a cursor ``(created_at, id)`` is ``created_at <= c AND (created_at < c OR id < i)``:
the first term bounds a range of an index that ends in ``created_at`` (``created_at``'s
own, or v11's ``(status, created_at, id)``), so that a page walks the index from the cursor
and reads about as many entries as it shows, at any depth, without sorting the log.

A workflow, a queue or an id prefix is either tested on each run of that walk (cheap where
many runs match: the page fills soon) or is where the read starts, from its own index, the
few matching runs then sorted (cheap where few match). Postgres's planner chooses from its
statistics. SQLite's keeps none (durable never runs ``ANALYZE``) and would start from the
equality's index and sort however many runs match: here each such term is first counted
in its index, up to :data:`PROBE`; a term that fewer runs match may start the read (then
the status is tested on each of those runs), one that more match is kept off its index
(``column || ''``), so that the walk in the list's order does the read.

Every value given is a bound parameter.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from durable.log.db import Db
from durable.log.rows import RUN_COLUMNS, run_row
from durable.log.schema import runs
from durable.log.store import RunFilter, RunRow
from durable.states import Status

__all__ = ["PROBE", "count_runs", "list_runs"]

PROBE = 2000
"""On SQLite, a workflow, queue or id prefix that fewer runs match starts the read."""

_ORDER = (runs.c.created_at.desc(), runs.c.id.desc())


def _unindexed(column: Any) -> Any:
    """``column || ''``: the same value, which no index of ``column`` serves."""
    return column.concat("")


def _few(c: sa.Connection, term: Any) -> bool:
    """Whether fewer than :data:`PROBE` runs match ``term`` (read from its index)."""
    some = sa.select(sa.literal(1)).select_from(runs).where(term).limit(PROBE).subquery()
    return int(c.execute(sa.select(sa.func.count()).select_from(some)).scalar_one()) < PROBE


def _where(db: Db, c: sa.Connection, flt: RunFilter) -> list[Any]:
    """The terms of ``flt`` (but its limit and cursor)."""
    # (what an index may serve, the same test kept off the indexes)
    narrowing: list[tuple[Any, Any]] = []
    for column, value in ((runs.c.workflow, flt.workflow), (runs.c.queue, flt.queue)):
        if value is not None:
            narrowing.append((column == value, _unindexed(column) == value))
    if flt.id_prefix is not None:
        exact, span = db.dialect.id_prefix(runs.c.id, flt.id_prefix)
        narrowing.append((sa.and_(*span, exact) if span else exact, exact))
    status = runs.c.status
    if db.dialect.planner_has_statistics:
        terms = [indexed for indexed, _ in narrowing]
    else:
        few = [_few(c, indexed) for indexed, _ in narrowing]
        terms = [
            indexed if f else plain for (indexed, plain), f in zip(narrowing, few, strict=True)
        ]
        if any(few):
            status = _unindexed(status)
    if flt.status is not None:
        terms.append(status == Status(flt.status).value)
    if flt.statuses:
        terms.append(status.in_([Status(s).value for s in flt.statuses]))
    if flt.parent_id is not None:
        terms.append(runs.c.parent_id == flt.parent_id)
    if flt.version is not None:
        terms.append(runs.c.version == flt.version)
    if flt.since is not None:
        terms.append(runs.c.created_at >= flt.since)
    if flt.until is not None:
        terms.append(runs.c.created_at <= flt.until)
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
