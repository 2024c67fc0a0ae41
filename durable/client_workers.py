"""Who is working: the :class:`~durable.client.Client`'s view of the live workers.

A mixin, so that ``client.py`` stays about runs. ``workers()`` reads the log's
``durable_workers`` rows (``Store.live_workers``); ``start`` asks :meth:`WorkerOps._unserved`
whether a run would wait for a worker that does not exist, on a view of the live workers
kept for :data:`LIVE_VIEW_FOR` seconds so that starting stays one write.
"""

from __future__ import annotations

import datetime as dt
import logging
import time

from durable.hub import LocalHub
from durable.log.store import Store, WorkerRecord
from durable.types import WorkerInfo

__all__ = ["LIVE_VIEW_FOR", "LiveView", "WorkerOps", "worker_info"]

log = logging.getLogger("durable.client")

LIVE_VIEW_FOR = 5.0
"""Seconds that ``start`` reuses a read of the live workers for its warning."""


def _utc(t: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(t, dt.UTC)


def worker_info(w: WorkerRecord) -> WorkerInfo:
    """The public view of a worker's row."""
    return WorkerInfo(
        id=w.id,
        host=w.host,
        pid=w.pid,
        queues=w.queues,
        workflows=w.workflows,
        version=w.version,
        started_at=_utc(w.started_at),
        last_seen=_utc(w.last_seen),
        running=w.running,
    )


class LiveView:
    """The live workers as last read, reused for :data:`LIVE_VIEW_FOR` seconds."""

    __slots__ = ("_read", "_store")

    def __init__(self, store: Store) -> None:
        self._store = store
        self._read: tuple[float, list[WorkerInfo]] | None = None

    def get(self, *, fresh: bool = False) -> list[WorkerInfo]:
        """The live workers: a new read if ``fresh`` or the last one is too old."""
        last = self._read
        if not fresh and last is not None and time.monotonic() - last[0] < LIVE_VIEW_FOR:
            return last[1]
        infos = [worker_info(w) for w in self._store.live_workers()[1]]
        self._read = (time.monotonic(), infos)
        return infos


class WorkerOps:
    """``workers()`` and the check that a started run has a worker: a mixin of
    :class:`~durable.client.Client`."""

    _store: Store
    _hub: LocalHub | None
    _live: LiveView

    def workers(self) -> list[WorkerInfo]:
        """The live workers of the log, by id: those whose last heartbeat is within their
        lease timeout (a worker heartbeats every third of it). A worker that stopped cleanly
        is gone at once; one that died, once its lease timeout has passed."""
        return self._live.get(fresh=True)

    def _unserved(self, workflow: str, queue: str, *, fresh: bool = False) -> bool:
        """Whether no live worker takes runs of ``workflow`` on ``queue`` (``False`` when
        that cannot be told: the log could not be read)."""
        if self._hub is not None and self._hub.serves(workflow, queue):
            return False  # a worker of this process's App
        try:
            live = self._live.get(fresh=fresh)
        except Exception as exc:
            log.debug("could not read the live workers: %s", exc)
            return False
        return not any(w.serves(workflow, queue) for w in live)

    def _warn_unserved(self, workflow: str, queue: str, run_ids: list[str]) -> None:
        """Log a warning if the runs just started wait for a worker that does not exist."""
        if not run_ids or not self._unserved(workflow, queue):
            return
        runs = f"run {run_ids[0]}" if len(run_ids) == 1 else f"{len(run_ids)} runs"
        log.warning(
            "no live worker registers workflow %r on queue %r: %s will wait, pending, until "
            "one starts",
            workflow,
            queue,
            runs,
        )

    def _unserved_note(self, workflow: str, queue: str) -> str:
        """``": no live worker registers ..."`` for a run that waits in vain, else ``""``."""
        if not self._unserved(workflow, queue, fresh=True):
            return ""
        return f": no live worker registers workflow {workflow!r} on queue {queue!r}"
