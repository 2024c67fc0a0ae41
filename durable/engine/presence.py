"""A worker's presence in the log: its row of ``durable_workers``, which ``client.workers()``
and the dashboard read.

The worker writes the row when it starts, refreshes it on every heartbeat (with the runs it
holds then) and deletes it when it stops cleanly; a worker that dies leaves it, and it stops
counting as live once its lease timeout has passed since the last heartbeat. Rows of workers
dead for :data:`FORGET_WORKERS_AFTER` are deleted when a worker starts and by retention passes.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Sequence

from durable.log.store import Store, WorkerRecord

__all__ = ["FORGET_WORKERS_AFTER", "Presence"]

log = logging.getLogger("durable.engine.worker")

FORGET_WORKERS_AFTER = 3600.0
"""Seconds after its last heartbeat that a dead worker's row is deleted."""


class Presence:
    """Writes one worker's row of the log; never raises (a failure is logged)."""

    def __init__(
        self,
        store: Store,
        worker_id: str,
        workflows: Sequence[str],
        queues: Sequence[str] | None,
        ttl: float,
        version: str | None,
    ) -> None:
        self._store = store
        self._base = WorkerRecord(
            id=worker_id,
            host=socket.gethostname(),
            pid=os.getpid(),
            workflows=tuple(workflows),
            ttl=ttl,
            queues=None if queues is None else tuple(queues),
            version=version,
        )

    def seen(self, running: Sequence[str], *, starting: bool = False) -> None:
        """Write the row now, with the runs held; at the start, replace an earlier row of
        this identity and delete the rows of workers long dead."""
        w = self._base
        record = WorkerRecord(
            id=w.id,
            host=w.host,
            pid=w.pid,
            workflows=w.workflows,
            ttl=w.ttl,
            queues=w.queues,
            version=w.version,
            running=tuple(running),
        )
        try:
            self._store.worker_seen(record, starting=starting)
            if starting:
                self._store.prune_workers(FORGET_WORKERS_AFTER)
        except Exception as exc:
            log.warning("could not record worker %s in the log: %s", w.id, exc)

    def gone(self) -> None:
        """Delete the row (a clean stop)."""
        try:
            self._store.worker_gone(self._base.id)
        except Exception as exc:
            log.warning(
                "could not remove worker %s from the log (%s); it expires", self._base.id, exc
            )
