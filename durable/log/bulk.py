"""Cancelling and resuming many runs at once, chosen by status, workflow and queue.

The runs that match are walked in pages of their ids (keyset order, ``_PAGE`` per
transaction), so that a log of any size is never held in one transaction or in memory; each
page's runs are cancelled (their unfinished children with them) or resumed exactly as
``cancel`` and ``resume`` do one run, in one transaction per page. A run that starts
matching after its page was read is not taken; one that stops matching (it ended, or was
resumed by someone else) is left as it is.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from durable.errors import DuplicateRunError
from durable.log.db import Db
from durable.log.runs import Runs
from durable.log.schema import runs
from durable.states import Status

__all__ = ["Bulk"]

_PAGE = 200
"""Runs cancelled or resumed per transaction."""


def _page(statuses: Sequence[Status], workflow: str | None, queue: str | None) -> Any:
    """The next page of matching runs after an id (binds ``after``, ``n``)."""
    q = sa.select(runs.c.id, runs.c.workflow, runs.c.queue).where(
        runs.c.id > sa.bindparam("after"),
        runs.c.status.in_([s.value for s in statuses]),
    )
    if workflow is not None:
        q = q.where(runs.c.workflow == workflow)
    if queue is not None:
        q = q.where(runs.c.queue == queue)
    return q.order_by(runs.c.id).limit(sa.bindparam("n"))


class Bulk:
    """``cancel_many`` and ``resume_many`` of the store."""

    def __init__(self, db: Db, runs: Runs) -> None:
        self._db = db
        self._runs = runs

    def cancel(
        self,
        statuses: Sequence[Status],
        workflow: str | None,
        queue: str | None,
        reason: str,
    ) -> list[tuple[str, str, str]]:
        """See :meth:`Store.cancel_many`."""
        db = self._db
        out: list[tuple[str, str, str]] = []
        after = ""
        while True:
            asked: list[str] = []
            with db.write() as c:
                now = db.now(c)
                page = c.execute(_page(statuses, workflow, queue), {"after": after, "n": _PAGE})
                rows = page.all()
                ended: set[str] = set()
                for r in rows:
                    self._runs.cancel_tree(c, r.id, reason, now, asked, ended)
            if asked:
                db.dialect.cancels_committed()
            done = ended | set(asked)
            out.extend((r.id, r.workflow, r.queue) for r in rows if r.id in done)
            if len(rows) < _PAGE:
                return out
            after = rows[-1].id

    def resume(
        self, statuses: Sequence[Status], workflow: str | None, queue: str | None
    ) -> tuple[list[str], list[tuple[str, DuplicateRunError]]]:
        """See :meth:`Store.resume_many`."""
        db = self._db
        resumed: list[str] = []
        refused: list[tuple[str, DuplicateRunError]] = []
        after = ""
        while True:
            with db.write() as c:
                now = db.now(c)
                page = c.execute(_page(statuses, workflow, queue), {"after": after, "n": _PAGE})
                rows = page.all()
                for r in rows:
                    try:
                        if self._runs.resume_in(c, r.id, now):
                            resumed.append(r.id)
                    except DuplicateRunError as exc:  # checked before any write of the run
                        refused.append((r.id, exc))
            if len(rows) < _PAGE:
                return resumed, refused
            after = rows[-1].id
