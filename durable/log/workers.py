"""Workers: who heartbeats against the log (``durable_workers``), one row per identity.

A worker writes its row when it starts (``started_at`` and ``last_seen`` set to the
database's clock), refreshes it as it heartbeats (``last_seen``, and what it holds now),
and deletes it when it stops cleanly. A row is *live* while its ``last_seen`` is within the
worker's own lease timeout (``ttl``, kept in the row): a worker heartbeats every third of
it, so a live worker has missed at most two beats. Rows of workers that died are deleted
by :meth:`Workers.prune`, from the workers' start and their housekeeping.
"""

from __future__ import annotations

import logging

import msgspec
import sqlalchemy as sa

from durable.log.db import Db
from durable.log.schema import workers
from durable.log.store import WorkerRecord

__all__ = ["Workers"]

log = logging.getLogger("durable.log.workers")


class _Info(msgspec.Struct, frozen=True, omit_defaults=True, forbid_unknown_fields=False):
    """The ``info`` column: what a worker says of itself, msgpack."""

    host: str
    pid: int
    workflows: list[str]
    ttl: float
    queues: list[str] | None = None
    version: str | None = None
    running: list[str] = []


_encode = msgspec.msgpack.Encoder().encode
_decode = msgspec.msgpack.Decoder(_Info).decode


def _info(rec: WorkerRecord) -> bytes:
    return _encode(
        _Info(
            host=rec.host,
            pid=rec.pid,
            workflows=list(rec.workflows),
            ttl=rec.ttl,
            queues=None if rec.queues is None else list(rec.queues),
            version=rec.version,
            running=list(rec.running),
        )
    )


class Workers:
    """Record, refresh, list and forget workers."""

    def __init__(self, db: Db) -> None:
        self._db = db

    def seen(self, rec: WorkerRecord, *, starting: bool = False) -> None:
        """See :meth:`Store.worker_seen`."""
        db, info = self._db, _info(rec)
        with db.write() as c:
            now = db.now(c)
            if starting:  # a restart under the same identity starts afresh
                c.execute(sa.delete(workers).where(workers.c.id == rec.id))
            else:
                done = c.execute(
                    sa.update(workers)
                    .where(workers.c.id == rec.id)
                    .values(info=info, last_seen=now)
                )
                if done.rowcount:
                    return
            c.execute(
                db.dialect.insert_ignore(workers, ["id"]).values(
                    id=rec.id, info=info, started_at=now, last_seen=now
                )
            )

    def gone(self, worker_id: str) -> None:
        """See :meth:`Store.worker_gone`."""
        with self._db.write() as c:
            c.execute(sa.delete(workers).where(workers.c.id == worker_id))

    def live(self) -> tuple[float, list[WorkerRecord]]:
        """See :meth:`Store.live_workers`."""
        db = self._db
        with db.read() as c:
            now = db.now(c)
            rows = c.execute(
                sa.select(
                    workers.c.id, workers.c.info, workers.c.started_at, workers.c.last_seen
                ).order_by(workers.c.id)
            ).all()
        out = []
        for wid, raw, started, seen in rows:
            try:
                info = _decode(raw)
            except (msgspec.DecodeError, msgspec.ValidationError):
                log.warning("worker %s: its row cannot be read; left out", wid)
                continue
            if now - float(seen) > info.ttl:
                continue
            out.append(
                WorkerRecord(
                    id=wid,
                    host=info.host,
                    pid=info.pid,
                    workflows=tuple(info.workflows),
                    ttl=info.ttl,
                    queues=None if info.queues is None else tuple(info.queues),
                    version=info.version,
                    running=tuple(info.running),
                    started_at=float(started),
                    last_seen=float(seen),
                )
            )
        return now, out

    def prune(self, older_than: float) -> int:
        """See :meth:`Store.prune_workers`."""
        db = self._db
        with db.write() as c:
            now = db.now(c)
            done = c.execute(sa.delete(workers).where(workers.c.last_seen < now - older_than))
            return int(done.rowcount or 0)
