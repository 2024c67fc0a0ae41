"""Schedules: the rows of ``durable_schedules`` and the transactions that start their runs
(see :mod:`durable.log.schedule_store` for what each promises).

Firing a tick is one transaction: the due rows are read ``FOR UPDATE SKIP LOCKED`` (on
Postgres, so that two workers never plan the same row at once; SQLite serializes every
write), the runs that the caller's plan asks for are inserted by id (an id that exists
keeps its run), and each row moves to its next tick, unless a concurrent transaction moved
it first (the update is conditional on the ``next_tick`` read).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import sqlalchemy as sa

from durable.errors import IdConflictError
from durable.log.db import Db
from durable.log.dialect import RawTx
from durable.log.runs import Runs
from durable.log.schedule_store import Fired, NewSchedule, ScheduleRow, Ticker
from durable.log.schema import schedules
from durable.log.store import NewRun

__all__ = ["Schedules"]

_COLUMNS = [schedules.c[f] for f in ScheduleRow.__slots__]

FirstTick = Callable[[NewSchedule, float], float | None]


def _row(r: Sequence[Any]) -> ScheduleRow:
    v = list(r)
    v[8] = bool(v[8])  # paused: an int on SQLite's raw rows
    v[6] = bytes(v[6])  # args: a memoryview on Postgres' raw rows
    return ScheduleRow(*v)


def _locked(c: RawTx, name: str) -> ScheduleRow | None:
    """The schedule's row, locked until the transaction ends (``None``: no such row)."""
    found = c.execute(
        sa.select(*_COLUMNS).where(schedules.c.name == name).with_for_update()
    ).first()
    return None if found is None else _row(found)


def _definition(new: NewSchedule) -> dict[str, Any]:
    return {
        "app": new.app,
        "workflow": new.workflow,
        "queue": new.queue,
        "cron": new.cron,
        "timezone": new.timezone,
        "args": new.args,
        "catch_up": new.catch_up,
    }


def _last(last: tuple[float, str] | None) -> dict[str, Any]:
    """The ``SET`` of a new last run, if its tick is later than the one recorded."""
    if last is None:
        return {}
    tick, run_id = last
    later = sa.or_(schedules.c.last_tick.is_(None), schedules.c.last_tick < tick)
    return {
        "last_tick": sa.case((later, tick), else_=schedules.c.last_tick),
        "last_run_id": sa.case((later, run_id), else_=schedules.c.last_run_id),
    }


class Schedules:
    """The ``durable_schedules`` rows, and the runs of their ticks."""

    def __init__(self, db: Db, runs: Runs) -> None:
        self._db = db
        self._runs = runs

    # -- definitions ---------------------------------------------------------------------

    def save(self, app: str, new: Sequence[NewSchedule], first_tick: FirstTick) -> None:
        """See :meth:`Store.save_schedules`."""
        db = self._db
        names = [s.name for s in new]
        with db.raw() as c:
            now = db.now(c)
            found = {
                r.name: r
                for r in map(
                    _row,
                    c.execute(
                        sa.select(*_COLUMNS).where(
                            sa.or_(schedules.c.name.in_(names), schedules.c.app == app)
                        )
                    ),
                )
            }
            for s in new:
                row = found.get(s.name)
                if row is not None and row.app is None:
                    raise IdConflictError(
                        f"schedule name {s.name!r} is taken by a schedule made by "
                        "client.create_schedule: delete it, or give app.schedule another name"
                    )
                if row is None:
                    c.execute(
                        schedules.insert().values(
                            name=s.name,
                            **_definition(s),
                            paused=False,
                            next_tick=first_tick(s, now),
                            created_at=now,
                            updated_at=now,
                        )
                    )
                elif not s.same_as(row):
                    ticks = {} if s.same_ticks(row) else {"next_tick": first_tick(s, now)}
                    c.execute(
                        sa.update(schedules)
                        .where(schedules.c.name == s.name)
                        .values(**_definition(s), **ticks, updated_at=now)
                    )
            gone = [n for n, r in found.items() if r.app == app and n not in names]
            if gone:
                c.execute(sa.delete(schedules).where(schedules.c.name.in_(gone)))

    def create(self, new: NewSchedule, first_tick: FirstTick) -> tuple[ScheduleRow, bool]:
        """See :meth:`Store.create_schedule`."""
        db = self._db
        with db.raw() as c:
            now = db.now(c)
            done = c.execute(
                db.dialect.insert_ignore(schedules, ["name"])
                .values(
                    name=new.name,
                    **_definition(new),
                    paused=False,
                    next_tick=first_tick(new, now),
                    created_at=now,
                    updated_at=now,
                )
                .returning(schedules.c.name)
            ).first()
            row = _row(c.execute(sa.select(*_COLUMNS).where(schedules.c.name == new.name)).first())
            if done is not None:
                db.notify(c, "")
        return row, done is not None

    def get(self, names: Sequence[str] | None) -> list[ScheduleRow]:
        """See :meth:`Store.get_schedules`."""
        q = sa.select(*_COLUMNS).order_by(schedules.c.name)
        if names is not None:
            q = q.where(schedules.c.name.in_(list(names)))
        with self._db.raw(write=False) as c:
            return [_row(r) for r in c.execute(q)]

    def pause(
        self, name: str, paused: bool, next_tick: Callable[[ScheduleRow, float], float | None]
    ) -> ScheduleRow | None:
        """See :meth:`Store.pause_schedule`."""
        db = self._db
        with db.raw() as c:
            now = db.now(c)
            row = _locked(c, name)
            if row is None:
                return None
            if row.paused != paused:
                ticks = {} if paused else {"next_tick": next_tick(row, now)}
                c.execute(
                    sa.update(schedules)
                    .where(schedules.c.name == name)
                    .values(paused=paused, updated_at=now, **ticks)
                )
                if not paused:
                    db.notify(c, "")
            return _row(c.execute(sa.select(*_COLUMNS).where(schedules.c.name == name)).first())

    def delete(self, name: str) -> bool:
        """See :meth:`Store.delete_schedule`."""
        with self._db.raw() as c:
            done = c.execute(
                sa.delete(schedules)
                .where(schedules.c.name == name, schedules.c.app.is_(None))
                .returning(schedules.c.name)
            ).first()
        return done is not None

    # -- ticks ---------------------------------------------------------------------------

    def next_tick(self, workflows: Sequence[str]) -> tuple[float, float | None]:
        """See :meth:`Store.next_schedule_tick`."""
        db = self._db
        with db.raw(write=False) as c:
            now = db.now(c)
            if not workflows:
                return now, None
            earliest = c.execute(
                sa.select(sa.func.min(schedules.c.next_tick)).where(
                    schedules.c.workflow.in_(list(workflows)), schedules.c.paused.is_(False)
                )
            ).scalar()
        return now, None if earliest is None else float(earliest)

    def fire(self, workflows: Sequence[str], plan: Ticker, limit: int) -> Fired:
        """See :meth:`Store.fire_schedules`."""
        db = self._db
        created: list[NewRun] = []
        with db.raw() as c:
            now = db.now(c)
            if not workflows:
                return Fired(created, now)
            due = [
                _row(r)
                for r in c.execute(
                    sa.select(*_COLUMNS)
                    .where(
                        schedules.c.workflow.in_(list(workflows)),
                        schedules.c.paused.is_(False),
                        schedules.c.next_tick <= now,
                    )
                    .order_by(schedules.c.next_tick)
                    .limit(limit)
                    .with_for_update(skip_locked=True)
                )
            ]
            for row in due:
                firing = plan(row, now)
                moved = c.execute(
                    sa.update(schedules)
                    .where(schedules.c.name == row.name, schedules.c.next_tick == row.next_tick)
                    .values(next_tick=firing.next_tick, updated_at=now, **_last(firing.last))
                    .returning(schedules.c.name)
                ).first()
                if moved is not None:
                    self._insert(c, firing.runs, now, created)
        return Fired(created, now)

    def start_runs(
        self, name: str, plan: Ticker
    ) -> tuple[ScheduleRow, Sequence[NewRun], set[str]] | None:
        """See :meth:`Store.start_schedule_runs`."""
        db = self._db
        created: list[NewRun] = []
        with db.raw() as c:
            now = db.now(c)
            row = _locked(c, name)
            if row is None:
                return None
            firing = plan(row, now)
            self._insert(c, firing.runs, now, created)
            if firing.last is not None:
                c.execute(
                    sa.update(schedules)
                    .where(schedules.c.name == name)
                    .values(updated_at=now, **_last(firing.last))
                )
        return row, firing.runs, {run.id for run in created}

    def _insert(self, c: RawTx, new: Sequence[NewRun], now: float, created: list[NewRun]) -> None:
        """Insert the runs whose ids are new, add them to ``created`` and wake the workers."""
        if not new:
            return
        ids = self._runs.insert_many(c, sorted(new, key=lambda r: r.id), now)
        for run in new:
            if run.id in ids:
                created.append(run)
                self._db.notify(c, run.queue)
