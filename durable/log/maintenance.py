"""Maintenance of the log: retention (deleting whole finished runs), the aggregates behind a
statistics view, and the queues' backlog. None of them touches a run that is not finished,
and none is on the path of a running workflow."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from durable.log.db import Db
from durable.log.rows import ended, not_ended, status_is
from durable.log.schema import events, runs, signals
from durable.log.store import PruneRule, RunStats
from durable.states import Status

__all__ = ["Maintenance"]

_COMPLETED = [Status.COMPLETED.value]
_FAILED = [Status.FAILED.value, Status.CANCELLED.value]


def _status_group() -> Any:
    """``'completed'`` or ``'failed'`` (failed and cancelled runs are counted together)."""
    return sa.case((status_is(Status.COMPLETED), Status.COMPLETED.value), else_=Status.FAILED.value)


def _candidates(rule: PruneRule, others: Sequence[str], now: float) -> sa.Select[Any]:
    """``SELECT id`` of the finished runs that ``rule`` lets go, oldest first."""
    rank = (
        sa.func.row_number()
        .over(
            partition_by=(runs.c.workflow, _status_group()),
            order_by=(runs.c.finished_at.desc(), runs.c.id.desc()),
        )
        .label("rank")
    )
    where: list[sa.ColumnElement[bool]] = [ended()]
    if rule.workflow is not None:
        where.append(runs.c.workflow == rule.workflow)
    elif others:
        where.append(runs.c.workflow.notin_(list(others)))
    ranked = sa.select(runs.c.id, runs.c.status, runs.c.finished_at, runs.c.parent_id, rank).where(
        *where
    )
    sub = ranked.subquery("ranked")

    def goes(statuses: list[str], keep: int | None) -> Any:
        if keep is None and rule.older_than is None:
            return sa.false()
        conds: list[sa.ColumnElement[bool]] = [sub.c.status.in_(statuses)]
        if keep is not None:
            conds.append(sub.c.rank > keep)
        if rule.older_than is not None:
            conds.append(sub.c.finished_at < now - rule.older_than)
        return sa.and_(*conds)

    parent = runs.alias("parent")
    parent_unfinished_or_resumable = sa.exists().where(
        parent.c.id == sub.c.parent_id, parent.c.status != Status.COMPLETED.value
    )
    return (
        sa.select(sub.c.id)
        .where(
            sa.or_(goes(_COMPLETED, rule.keep_completed), goes(_FAILED, rule.keep_failed)),
            sa.or_(sub.c.parent_id.is_(None), ~parent_unfinished_or_resumable),
        )
        .order_by(sub.c.finished_at, sub.c.id)
    )


class Maintenance:
    """Retention, statistics and the queues' backlog."""

    def __init__(self, db: Db) -> None:
        self._db = db

    def prune(
        self, rules: Sequence[PruneRule], *, dry_run: bool = False, limit: int | None = 500
    ) -> list[str]:
        """See :meth:`Store.prune`."""
        named = [r.workflow for r in rules if r.workflow is not None]
        if dry_run:
            with self._db.read() as c:
                return self._select_candidates(c, rules, named, limit)
        with self._db.write() as c:
            ids = self._select_candidates(c, rules, named, limit)
            if not ids:
                return []
            locked = self._lock_prunable(c, ids)
            if locked:
                c.execute(sa.delete(events).where(events.c.run_id.in_(locked)))
                c.execute(sa.delete(signals).where(signals.c.run_id.in_(locked)))
                c.execute(sa.delete(runs).where(runs.c.id.in_(locked)))
            keep = set(locked)
            return [i for i in ids if i in keep]

    def _lock_prunable(self, c: Connection, ids: list[str]) -> list[str]:
        """Lock the rows of ``ids`` that may still go, and check again what the selection
        checked: the run is finished, and it has no parent, or its parent is gone, or its
        parent is finished and completed (a failed or cancelled parent may be resumed and
        need its child's journal). The parents are locked ``FOR SHARE`` first, so that none
        can be resumed (or otherwise change) until this transaction ends; rows another
        transaction holds are skipped, theirs and their children's, so there is no waiting
        and no deadlock. (SQLite: the write transaction already excludes every writer.)"""
        parent_ids = sorted(
            {
                pid
                for (pid,) in c.execute(
                    sa.select(runs.c.parent_id).where(
                        runs.c.id.in_(ids), runs.c.parent_id.is_not(None)
                    )
                )
            }
        )
        completed_parents: list[str] = []
        if parent_ids:
            completed_parents = [
                r.id
                for r in c.execute(
                    sa.select(runs.c.id, runs.c.status)
                    .where(runs.c.id.in_(parent_ids))
                    .order_by(runs.c.id)
                    .with_for_update(read=True, skip_locked=True)
                )
                if r.status == Status.COMPLETED.value
            ]
        parent = runs.alias("parent")
        parent_gone = ~sa.exists().where(parent.c.id == runs.c.parent_id)
        return [
            r.id
            for r in c.execute(
                sa.select(runs.c.id)
                .where(
                    runs.c.id.in_(ids),
                    ended(),
                    sa.or_(
                        runs.c.parent_id.is_(None),
                        runs.c.parent_id.in_(completed_parents),
                        parent_gone,
                    ),
                )
                .order_by(runs.c.id)
                .with_for_update(of=runs, skip_locked=True)
            )
        ]

    def _select_candidates(
        self, c: Connection, rules: Sequence[PruneRule], named: list[str], limit: int | None
    ) -> list[str]:
        now = self._db.now(c)
        out: list[str] = []
        for rule in rules:
            left = None if limit is None else limit - len(out)
            if left is not None and left <= 0:
                break
            q = _candidates(rule, named, now)
            if left is not None:
                q = q.limit(left)
            out.extend(row.id for row in c.execute(q))
        return out

    def run_stats(self, window: float | None, sample: int = 1000) -> RunStats:
        """See :meth:`Store.run_stats`."""
        with self._db.read() as c:
            now = self._db.now(c)
            start = None if window is None else now - window
            in_window: list[sa.ColumnElement[bool]] = [ended()]
            if start is not None:
                in_window.append(runs.c.finished_at >= start)
            key = (runs.c.workflow, runs.c.queue)
            finished = c.execute(
                sa.select(*key, runs.c.status, sa.func.count())
                .where(*in_window)
                .group_by(*key, runs.c.status)
            ).all()
            unfinished = c.execute(
                sa.select(*key, runs.c.status, sa.func.count())
                .where(not_ended())
                .group_by(*key, runs.c.status)
            ).all()
            errors = c.execute(
                sa.select(*key, sa.func.coalesce(runs.c.error_type, "Error"), sa.func.count())
                .where(*in_window, status_is(Status.FAILED))
                .group_by(*key, runs.c.error_type)
            ).all()
            seconds = runs.c.finished_at - sa.func.coalesce(runs.c.started_at, runs.c.created_at)
            rank = sa.func.row_number().over(partition_by=key, order_by=runs.c.finished_at.desc())
            sub = (
                sa.select(*key, seconds.label("seconds"), rank.label("rank"))
                .where(*in_window, status_is(Status.COMPLETED))
                .subquery()
            )
            durations = c.execute(
                sa.select(sub.c.workflow, sub.c.queue, sub.c.seconds).where(sub.c.rank <= sample)
            ).all()
        return RunStats(
            finished=[(w, q, s, int(n)) for w, q, s, n in finished],
            unfinished=[(w, q, s, int(n)) for w, q, s, n in unfinished],
            durations=[(w, q, float(x)) for w, q, x in durations],
            errors=[(w, q, e, int(n)) for w, q, e, n in errors],
            window_start=start,
            now=now,
        )

    def queue_backlog(self) -> tuple[float, list[tuple[str, int, float]]]:
        """See :meth:`Store.queue_backlog`."""
        with self._db.read() as c:
            now = self._db.now(c)
            q = (
                sa.select(runs.c.queue, sa.func.count(), sa.func.min(runs.c.due_at))
                .where(runs.c.due_at.is_not(None), runs.c.due_at <= now)
                .group_by(runs.c.queue)
            )
            rows = c.execute(q).all()
        return now, [(str(r[0]), int(r[1]), float(r[2])) for r in rows]

    def steps_of_last_completed(self, workflows: Sequence[str]) -> dict[str, int]:
        """See :meth:`Store.steps_of_last_completed`: one indexed look-up per workflow."""
        out: dict[str, int] = {}
        if not workflows:
            return out
        with self._db.read() as c:
            for wf in sorted(set(workflows)):
                q = (
                    sa.select(runs.c.steps_completed)
                    .where(runs.c.workflow == wf, status_is(Status.COMPLETED))
                    .order_by(runs.c.finished_at.desc())
                    .limit(1)
                )
                n = c.execute(q).scalar()
                if n is not None:
                    out[wf] = int(n)
        return out
