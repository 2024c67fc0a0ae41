"""The journal: reading a run's events, and appending to it under a lease's epoch.

An append is fenced: the run's row is updated (its projection of the new events, see
``projection.py``) only where ``lease_epoch`` is the append's epoch and the run has not
ended, and the events are written only if that update matched. How the update and the
insert reach the database is the :class:`~durable.log.appending.Appender`'s business.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Sequence
from functools import partial
from typing import Any

import msgspec
import sqlalchemy as sa

from durable.errors import StoreError
from durable.events import OUTCOME_KIND, EventType, NewEvent, SignalData, encode_data
from durable.log.appending import Appender
from durable.log.db import Db
from durable.log.dialect import RawTx
from durable.log.projection import project
from durable.log.rows import EVENT_COLUMNS, binds, chunk_size, journal_row, named
from durable.log.runs import Runs
from durable.log.schema import events, runs
from durable.log.signals import Signals
from durable.log.store import AppendRequest, AppendResult, JournalRow
from durable.states import WaitFor, WaitKind

__all__ = ["Journal"]

T = EventType


def _read_journal() -> Any:
    """A run's journal after a seq, in order (binds ``run_id``, ``after``)."""
    return (
        sa.select(*EVENT_COLUMNS)
        .where(events.c.run_id == sa.bindparam("run_id"), events.c.seq > sa.bindparam("after"))
        .order_by(events.c.seq)
    )


def _read_journals(n: int) -> Any:
    """The whole journals of ``n`` runs, by run then seq (binds ``r0`` .. ``r{n-1}``)."""
    return (
        sa.select(*EVENT_COLUMNS)
        .where(events.c.run_id.in_(binds("r", n)))
        .order_by(events.c.run_id, events.c.seq)
    )


def _appended() -> Any:
    """The last and first seqs an append wrote, if it did (binds ``run_id``, ``append_id``)."""
    return sa.select(sa.func.max(events.c.seq), sa.func.min(events.c.seq)).where(
        events.c.run_id == sa.bindparam("run_id"), events.c.append_id == sa.bindparam("append_id")
    )


class Journal:
    """Read and append the runs' events."""

    def __init__(self, db: Db, appender: Appender, runs: Runs, signals: Signals) -> None:
        self._db = db
        self._prep = db.prep
        self._appender = appender
        self._runs = runs
        self._signals = signals

    def read(self, run_id: str, after_seq: int = 0) -> list[JournalRow]:
        """See :meth:`Store.read_journal`."""
        with self._db.raw(write=False) as c:
            rows = self._prep.all(
                c, "read_journal", _read_journal, {"run_id": run_id, "after": after_seq}
            )
        return [journal_row(r) for r in rows]

    def read_many(self, run_ids: Sequence[str]) -> dict[str, list[JournalRow]]:
        """See :meth:`Store.read_journals`: :data:`~durable.log.rows.CHUNK` runs a
        statement at most, all in one read."""
        ids = sorted(set(run_ids))
        out: dict[str, list[JournalRow]] = {i: [] for i in ids}
        with self._db.raw(write=False) as c:
            done = 0
            while done < len(ids):
                n = chunk_size(len(ids) - done)
                build = partial(_read_journals, n)
                params = named("r", ids[done : done + n])
                for r in self._prep.all(c, ("read_journals", n), build, params):
                    out[r[0]].append(journal_row(r))
                done += n
        return out

    def mark_watched(self, run_ids: Collection[str], seconds: float) -> None:
        """See :meth:`Store.mark_watched`."""
        ids = sorted(set(run_ids))
        if not ids:
            return
        with self._db.write() as c:
            until = self._db.now(c) + seconds
            c.execute(sa.update(runs).where(runs.c.id.in_(ids)).values(watched_until=until))

    def append(self, requests: Sequence[AppendRequest]) -> list[AppendResult]:
        """See :meth:`Store.append`."""
        if not requests:
            return []
        db = self._db
        try:
            with db.raw() as c:
                now = db.now(c)
                return [self._append_one(c, r, now) for r in requests]
        except Exception as exc:
            if len(requests) == 1:
                return [AppendResult(ok=False, error=exc)]
        # One request broke the batch: isolate it, so that the others still commit.
        out: list[AppendResult] = []
        failed: set[str] = set()
        for r in requests:
            r.retried = True  # the batch may have committed with its answer lost
            if r.run_id in failed:  # never write past a failed append of the same run
                out.append(AppendResult(ok=False, error=StoreError("an earlier append failed")))
                continue
            try:
                with db.raw() as c:
                    out.append(self._append_one(c, r, db.now(c)))
            except Exception as exc:
                out.append(AppendResult(ok=False, error=exc))
            if out[-1].error is not None or not out[-1].ok:
                failed.add(r.run_id)
        return out

    def _append_one(self, c: RawTx, req: AppendRequest, now: float) -> AppendResult:
        if not req.append_id:
            req.append_id = uuid.uuid4().hex
        elif req.retried:
            row = self._prep.first(
                c, "appended", _appended, {"run_id": req.run_id, "append_id": req.append_id}
            )
            if row is not None and row[0] is not None:
                # The first try committed; only its answer was lost. A signal it consumed is
                # the one marked with the append's first seq.
                got = None
                if req.consume_signal is not None:
                    got = self._signals.consumed_by(c, req.run_id, row[1])
                return AppendResult(ok=True, last_seq=int(row[0]), signal=got)
        evs = list(req.events)
        signal: tuple[int, bytes | None] | None = None
        if req.consume_signal is not None:
            name, position = req.consume_signal
            signal = self._signals.oldest(c, req.run_id, name)
            if signal is not None:
                payload = msgspec.Raw(signal[1]) if signal[1] is not None else None
                evs.insert(
                    0,
                    NewEvent(
                        T.SIGNAL_RECEIVED,
                        SignalData(payload=payload, signal_id=signal[0]),
                        position=position,
                        name=name,
                    ),
                )
        encoded = [encode_data(e.data) for e in evs]
        proj = project(evs, encoded, now)
        values = proj.values
        if proj.releases:
            self._appender.lock_for_suspend(c, req.run_id)
            due = self._due_on_suspend(c, req, proj.waiting_for, proj.wake_at, now)
            values["due_at"] = due
            if due is not None and due <= now:
                self._db.notify(c, "")
        increments = {**proj.increments, "last_seq": len(evs)}
        fence = {
            **{f"v_{k}": v for k, v in values.items()},
            **{f"i_{k}": v for k, v in increments.items()},
            "w_id": req.run_id,
            "w_epoch": req.epoch,
        }
        rows: list[dict[str, Any]] = [
            {
                "run_id": req.run_id,
                "seq": i,
                "type": e.type,
                "position": e.position,
                "name": e.name,
                "attempt": e.attempt,
                "epoch": req.epoch,
                "at": now,
                "outcome": OUTCOME_KIND.get(e.type),
                "data": raw,
                "append_id": req.append_id,
            }
            for i, (e, raw) in enumerate(zip(evs, encoded, strict=True))
        ]
        res = self._appender.write(c, values, increments, fence, rows)
        if res is None:
            return AppendResult(ok=False)
        last, parent_id, watched_until = res
        if proj.ends or (watched_until is not None and watched_until > now):
            # Unwatched appends that do not end the run are not announced: nobody listens.
            self._db.appended(c, req.run_id, final=proj.ends)
        if signal is not None:
            self._signals.consume(c, signal[0], last - len(evs) + 1)
        for child in req.new_runs:
            self._runs.insert(c, child, now)
        if proj.ends:
            self._db.notify(c, "")  # a queue slot frees up: workers blocked by a limit retry
            if parent_id is not None:
                self._runs.wake_parent(c, parent_id, now)
        return AppendResult(ok=True, last_seq=last, signal=signal)

    def _due_on_suspend(
        self,
        c: RawTx,
        req: AppendRequest,
        waiting_for: WaitFor | None,
        wake_at: float | None,
        now: float,
    ) -> float | None:
        """When a run that hands its lease back becomes due: now if what it waits for is
        already there (a signal in the inbox, an ended child), else at ``wake_at``."""
        if wake_at is None and waiting_for is None:
            return now  # released by a stopping worker
        if waiting_for is not None and waiting_for.kind is WaitKind.SIGNAL:
            assert waiting_for.name is not None
            if self._signals.oldest(c, req.run_id, waiting_for.name) is not None:
                return now
        elif (
            waiting_for is not None
            and waiting_for.kind is WaitKind.CHILDREN
            and req.wait_children
            and self._runs.any_ended(c, req.wait_children)
        ):
            return now
        return wake_at
