"""Deduplication keys: at most one unfinished run per ``dedup_key``, separate from the id.

A run started with a key holds it until it ends (completed, failed or cancelled); then the
key is free for a new run. The partial unique index ``uq_durable_runs_dedup_key`` over the
runs not ended (``schema.UNFINISHED_DEDUP_KEY``) is the one arbiter among concurrent starters
of any number of processes, never a read before the insert: the insert of a run does nothing
on any conflict (its id, or its key), and the start then reads which one it was, in the same
transaction: a taken id returns that run (idempotency by id comes first), a free id means the
key is held, and the start is refused with :class:`~durable.DuplicateRunError` (the
transaction rolls back: nothing is written).

A resumed run takes its key again: the resume of a failed or cancelled run whose key another
unfinished run holds now is refused likewise.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from durable.errors import DuplicateRunError
from durable.log.db import Db
from durable.log.dialect import RawTx
from durable.log.rows import not_ended
from durable.log.schema import runs

__all__ = ["Dedup"]


def _holder() -> Any:
    """The unfinished run that holds a key, but a given run (binds ``key``, ``id``)."""
    return (
        sa.select(runs.c.id)
        .where(
            runs.c.dedup_key == sa.bindparam("key"),
            runs.c.id != sa.bindparam("id"),
            not_ended(),
        )
        .limit(1)
    )


class Dedup:
    """Which unfinished run holds a deduplication key."""

    def __init__(self, db: Db) -> None:
        self._prep = db.prep

    def holder(self, c: Connection | RawTx, key: str, but: str = "") -> str | None:
        """The id of the unfinished run that holds ``key`` (other than run ``but``)."""
        row = self._prep.first(c, "dedup_holder", _holder, {"key": key, "id": but})
        return str(row[0]) if row is not None else None

    def refuse(self, c: Connection | RawTx, key: str, but: str = "") -> DuplicateRunError:
        """The error of a start (or a resume of run ``but``) refused because an unfinished
        run holds ``key``."""
        return DuplicateRunError(key, self.holder(c, key, but))
