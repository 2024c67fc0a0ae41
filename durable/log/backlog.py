"""The backlog of the queues: runs due now that no live worker holds, per queue."""

from __future__ import annotations

import sqlalchemy as sa

from durable.log.schema import runs
from durable.log.sqlbase import SqlBase

__all__ = ["BacklogOps"]


class BacklogOps(SqlBase):
    """The grouped read behind the queue gauges."""

    def queue_backlog(self) -> tuple[float, list[tuple[str, int, float]]]:
        """See :meth:`Store.queue_backlog`."""
        with self._read() as c:
            now = self._d.now(c)
            q = (
                sa.select(runs.c.queue, sa.func.count(), sa.func.min(runs.c.due_at))
                .where(runs.c.due_at.is_not(None), runs.c.due_at <= now)
                .group_by(runs.c.queue)
            )
            rows = c.execute(q).all()
        return now, [(str(r[0]), int(r[1]), float(r[2])) for r in rows]
