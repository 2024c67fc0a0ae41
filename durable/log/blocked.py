"""Blocked runs taken up again: by a worker of another code version, or by a resume.

A ``blocked`` run has no ``due_at``, so no lease query sees it (their indexes and plans are
untouched). A worker calls :meth:`Blocked.take_up` now and then (at its start and with its
heartbeats): one indexed update (``status``, ``workflow``) makes the blocked runs of its
workflows that its version has not failed to replay ``pending`` and due now, and appends
their ``run_unblocked`` events; the worker's next lease takes them as any due run. The
versions that could not replay a run stay in its row (``blocked_versions``), so two versions
that both cannot replay it never pass it back and forth, and a lease never gives a run to a
worker of a version among them (:func:`not_failed_by` in the lease queries), so a worker of
an old version still running beside a new one during a rolling deploy does not take back a
run that the new one took up.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from durable.events import EventType, UnblockedData, encode_data
from durable.log.db import Db
from durable.log.rows import status_is
from durable.log.schema import events, runs
from durable.states import Status

__all__ = ["TAKE_UP_LIMIT", "Blocked", "not_failed_by"]

T = EventType

TAKE_UP_LIMIT = 500
"""Blocked runs made due by one call of :meth:`Blocked.take_up` (the next call takes more)."""


def not_failed_by(version: Any) -> Any:
    """Runs that code ``version`` (a bind parameter, or a value: ``"\n{version}\n"``) has
    not failed to replay since they last suspended: ``blocked_versions`` does not hold it.
    ``replace`` is case-sensitive on both backends (SQLite's ``LIKE`` is not)."""
    col = runs.c.blocked_versions
    return sa.or_(col.is_(None), sa.func.replace(col, version, "") == col)


def version_key(version: str | None) -> str:
    """How ``blocked_versions`` holds ``version`` (``None``: a worker without one)."""
    return f"\n{version or ''}\n"


def _unblocked_values(now: float) -> dict[str, Any]:
    """The ``SET`` of making a blocked run due again."""
    return {
        "status": Status.PENDING.value,
        "due_at": now,
        "error_type": None,
        "error_message": None,
        "lease_epoch": runs.c.lease_epoch + 1,
        "last_seq": runs.c.last_seq + 1,
        "updated_at": now,
    }


class Blocked:
    """The blocked runs of the log."""

    def __init__(self, db: Db) -> None:
        self._db = db

    def take_up(
        self,
        workflows: Sequence[str],
        queues: Sequence[str] | None,
        version: str | None,
        limit: int = TAKE_UP_LIMIT,
    ) -> list[str]:
        """See :meth:`Store.take_up_blocked`."""
        if not workflows:
            return []
        conds: list[Any] = [status_is(Status.BLOCKED), runs.c.workflow.in_(list(workflows))]
        if queues is not None:
            conds.append(runs.c.queue.in_(list(queues)))
        conds.append(not_failed_by(version_key(version)))
        db = self._db
        probe = sa.select(runs.c.id).where(*conds).limit(1)
        with db.read() as r:  # most calls find none: no write transaction for them
            if r.execute(probe).first() is None:
                return []
        with db.write() as c:
            now = db.now(c)
            ids = sa.select(runs.c.id).where(*conds).limit(limit).scalar_subquery()
            rows = c.execute(
                sa.update(runs)
                .where(runs.c.id.in_(ids), status_is(Status.BLOCKED))
                .values(**_unblocked_values(now))
                .returning(runs.c.id, runs.c.last_seq, runs.c.lease_epoch, runs.c.queue)
            ).all()
            self._journal(c, rows, version, now)
        return [str(r[0]) for r in rows]

    def resume(self, c: Connection, run_id: str, now: float) -> bool:
        """Make one blocked run due again (``client.resume``), for a worker of any version
        (the versions that could not replay it are forgotten: a fix deployed under the same
        version takes it); whether it was blocked."""
        rows = c.execute(
            sa.update(runs)
            .where(runs.c.id == run_id, status_is(Status.BLOCKED))
            .values(**_unblocked_values(now), blocked_versions=None)
            .returning(runs.c.id, runs.c.last_seq, runs.c.lease_epoch, runs.c.queue)
        ).all()
        self._journal(c, rows, None, now)
        return bool(rows)

    def _journal(self, c: Connection, rows: Sequence[Any], version: str | None, now: float) -> None:
        """Append the ``run_unblocked`` of each run made due, and wake the workers."""
        if not rows:
            return
        data = encode_data(UnblockedData(version=version))
        c.execute(
            events.insert(),
            [
                {
                    "run_id": r[0],
                    "seq": r[1],
                    "type": T.RUN_UNBLOCKED.value,
                    "epoch": r[2],
                    "at": now,
                    "data": data,
                }
                for r in rows
            ],
        )
        for r in rows:
            self._db.notify(c, r[3])
            self._db.appended(c, r[0])
