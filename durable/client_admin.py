"""The maintenance half of :class:`~durable.client.Client`: retention and statistics.

A mixin, so that ``client.py`` stays about runs; every method reads or deletes through the
log's contract (``Store.prune``, ``Store.run_stats``).
"""

from __future__ import annotations

import datetime as dt

from durable.log.store import Store
from durable.retention import RetentionPolicy, prune_rules
from durable.stats import WorkflowStats, workflow_stats

__all__ = ["AdminOps"]

DAY = 86400.0


class AdminOps:
    """``prune`` and ``stats``: a mixin of :class:`~durable.client.Client`."""

    _store: Store

    def prune(
        self, retention: RetentionPolicy, *, dry_run: bool = False, batch: int = 500
    ) -> list[str]:
        """Delete the finished runs that ``retention`` lets go; return their ids.

        Args:
            retention: a :class:`durable.Retention` for every workflow in the log (each
                counted on its own), or ``{workflow name: Retention}``.
            dry_run: delete nothing; return the ids that would be deleted.
            batch: runs deleted per transaction (each run whole: row, journal, signals).

        Runs that are not finished, and child runs whose parent exists and has not
        completed, are never deleted.
        """
        if batch < 1:
            raise ValueError("batch must be at least 1")
        rules = prune_rules(retention)
        if dry_run:
            return self._store.prune(rules, dry_run=True, limit=None)
        deleted: list[str] = []
        while True:
            ids = self._store.prune(rules, limit=batch)
            deleted.extend(ids)
            if len(ids) < batch:
                return deleted

    def stats(self, window: float | dt.timedelta | None = DAY) -> list[WorkflowStats]:
        """Per workflow and queue: processing time (p50, p95), success rate and errors of
        the runs that ended in the last ``window`` (seconds or a timedelta; ``None``: all),
        and the runs pending, running and sleeping now."""
        if isinstance(window, dt.timedelta):
            window = window.total_seconds()
        if window is not None and window <= 0:
            raise ValueError("window must be a positive duration or None")
        return workflow_stats(self._store.run_stats(window))
