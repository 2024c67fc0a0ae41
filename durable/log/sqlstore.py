"""The log on SQLAlchemy Core: one :class:`Store` for every backend, put together from parts.

Each part owns one noun and its SQL, and is handed the one :class:`~durable.log.db.Db`
(connections, prepared statements, dialect, clock):

- ``runs.py``: :class:`~durable.log.runs.Runs`: insert, read, fork, resume, cancel, and the
  one way to end a run outside its lease; ``dedup.py``: who holds a deduplication key;
  ``bulk.py``: :class:`~durable.log.bulk.Bulk`: cancel and resume many runs by filter;
- ``journal.py``: :class:`~durable.log.journal.Journal`: read and append events;
- ``leases.py``: :class:`~durable.log.leases.Leases`: take, extend, hand back;
- ``signals.py``: :class:`~durable.log.signals.Signals`: send and consume;
- ``listing.py``: the runs list (filters, keyset pages) and its counts per status;
- ``maintenance.py``: :class:`~durable.log.maintenance.Maintenance`: prune, statistics,
  backlog;
- ``workers.py``: :class:`~durable.log.workers.Workers`: who heartbeats against the log;
- ``schedules.py``: :class:`~durable.log.schedules.Schedules`: cron schedules and the runs
  of their ticks.

Where SQLite and Postgres differ in what the store does (taking runs, appending), a strategy
chosen once when the store opens does it: a :class:`~durable.log.leasing.Leasing`
(``leasing_sqlite.py``, ``leasing_postgres.py``) and an
:class:`~durable.log.appending.Appender` (``appending.py``). What differs in connections and
SQL dialect is the :class:`~durable.log.dialect.Dialect` (``sqlite.py``, ``postgres.py``).

When the deadline of a workflow's ``timeout`` is set, and where the run's input lives: see
``runs.py``.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Collection, Sequence
from typing import Any

from durable.errors import DuplicateRunError
from durable.log import listing
from durable.log.appending import Appender
from durable.log.bulk import Bulk
from durable.log.db import Db
from durable.log.dialect import Dialect
from durable.log.journal import Journal
from durable.log.leases import Leases
from durable.log.leasing import Leasing
from durable.log.maintenance import Maintenance
from durable.log.runs import Runs
from durable.log.schedule_store import Fired, NewSchedule, ScheduleRow, Ticker
from durable.log.schedules import FirstTick, Schedules
from durable.log.signals import Signals
from durable.log.store import (
    AppendRequest,
    AppendResult,
    JournalRow,
    Lease,
    NewRun,
    PruneRule,
    QueueLimit,
    RunFilter,
    RunRow,
    RunStats,
    Store,
    WorkerRecord,
)
from durable.log.workers import Workers
from durable.states import Status

__all__ = ["SqlStore"]


class SqlStore(Store):
    """The event log on a SQLAlchemy engine (see :class:`Store` for each method's promise)."""

    def __init__(
        self,
        url: str,
        dialect: Dialect,
        *,
        leasing: Callable[[Db, Runs, int], Leasing],
        appender: Callable[[Db], Appender],
        max_stalls: int = 10,
    ) -> None:
        self.url = url
        self.db = Db(url, dialect)
        self.runs = Runs(self.db)
        self.signals = Signals(self.db)
        self.bulk = Bulk(self.db, self.runs)
        self.journal = Journal(self.db, appender(self.db), self.runs, self.signals)
        self.leases = Leases(self.db, leasing(self.db, self.runs, max_stalls), self.journal)
        self.maintenance = Maintenance(self.db)
        self.workers = Workers(self.db)
        self.schedules = Schedules(self.db, self.runs)
        # A store nobody closed (``durable.Client(url).start(...)`` on one line) still
        # closes its connections when it is collected, rather than leave the driver to
        # warn about each; at exit, one still open is closed too.
        self._closer = weakref.finalize(self, self.db.close)

    def close(self) -> None:
        self._closer()

    # -- runs ----------------------------------------------------------------------------

    def create_run(self, run: NewRun) -> tuple[RunRow, bool]:
        return self.runs.create(run)

    def create_runs(self, new: Sequence[NewRun]) -> set[str]:
        return self.runs.create_many(new)

    def start_and_signal(
        self, run: NewRun, name: str, payload: bytes | None
    ) -> tuple[RunRow, bool]:
        return self.runs.create(run, then=self.signals.on_start(run.workflow, name, payload))

    def get_run(self, run_id: str) -> RunRow | None:
        return self.runs.get(run_id)

    def get_runs(self, run_ids: Sequence[str]) -> list[RunRow]:
        return self.runs.get_many(run_ids)

    def list_runs(self, flt: RunFilter) -> list[RunRow]:
        return listing.list_runs(self.db, flt)

    def count_runs(self, flt: RunFilter) -> dict[Status, int]:
        return listing.count_runs(self.db, flt)

    def cancel(self, run_id: str, reason: str) -> tuple[RunRow, bool] | None:
        return self.runs.cancel(run_id, reason)

    def cancel_requests(self) -> list[RunRow]:
        return self.runs.cancel_requests()

    def listen_cancels(self, on_cancel: Callable[[str], None]) -> Any:
        return self.db.dialect.listen_cancels(on_cancel)

    def resume(self, run_id: str) -> RunRow | None:
        return self.runs.resume(run_id)

    def cancel_many(
        self,
        statuses: Sequence[Status],
        workflow: str | None,
        queue: str | None,
        reason: str,
    ) -> list[tuple[str, str, str]]:
        return self.bulk.cancel(statuses, workflow, queue, reason)

    def resume_many(
        self, statuses: Sequence[Status], workflow: str | None, queue: str | None
    ) -> tuple[list[str], list[tuple[str, DuplicateRunError]]]:
        return self.bulk.resume(statuses, workflow, queue)

    def take_up_blocked(
        self, workflows: Sequence[str], queues: Sequence[str] | None, version: str | None
    ) -> list[str]:
        return self.runs.blocked.take_up(workflows, queues, version)

    def fork(self, run_id: str, new: NewRun, keep: Sequence[JournalRow]) -> RunRow:
        return self.runs.fork(run_id, new, keep)

    # -- journal and signals -------------------------------------------------------------

    def read_journal(self, run_id: str, after_seq: int = 0) -> list[JournalRow]:
        return self.journal.read(run_id, after_seq)

    def read_journals(self, run_ids: Sequence[str]) -> dict[str, list[JournalRow]]:
        return self.journal.read_many(run_ids)

    def append(self, requests: Sequence[AppendRequest]) -> list[AppendResult]:
        return self.journal.append(requests)

    def send_signal(self, run_id: str, name: str, payload: bytes | None) -> bool:
        return self.signals.send(run_id, name, payload)

    # -- leases --------------------------------------------------------------------------

    def lease(
        self,
        owner: str,
        ttl: float,
        workflows: Sequence[str],
        queues: Sequence[str] | None,
        limit: int,
        reclaim: Sequence[str] = (),
        limits: dict[str, QueueLimit] | None = None,
        version: str | None = None,
    ) -> list[Lease]:
        return self.leases.lease(owner, ttl, workflows, queues, limit, reclaim, limits, version)

    def heartbeat(self, owner: str, ttl: float, held: dict[str, int]) -> set[str]:
        return self.leases.heartbeat(owner, ttl, held)

    def release(self, held: dict[str, int]) -> None:
        self.leases.release(held)

    def owners_running(self, workflows: Sequence[str]) -> list[str]:
        return self.leases.owners_running(workflows)

    def next_due(
        self, workflows: Sequence[str], queues: Sequence[str] | None, version: str | None = None
    ) -> float | None:
        return self.leases.next_due(workflows, queues, version)

    def listen(self, on_notify: Callable[[str], None]) -> Any:
        return self.db.dialect.listen(on_notify)

    def listen_journals(self, on_append: Callable[[str], None]) -> Any:
        return self.db.dialect.listen_journals(on_append)

    def mark_watched(self, run_ids: Collection[str], seconds: float) -> None:
        self.journal.mark_watched(run_ids, seconds)

    # -- maintenance ---------------------------------------------------------------------

    def steps_of_last_completed(self, workflows: Sequence[str]) -> dict[str, int]:
        return self.maintenance.steps_of_last_completed(workflows)

    def queue_backlog(self) -> tuple[float, list[tuple[str, int, float]]]:
        return self.maintenance.queue_backlog()

    def prune(
        self, rules: Sequence[PruneRule], *, dry_run: bool = False, limit: int | None = 500
    ) -> list[str]:
        return self.maintenance.prune(rules, dry_run=dry_run, limit=limit)

    def run_stats(self, window: float | None, sample: int = 1000) -> RunStats:
        return self.maintenance.run_stats(window, sample)

    # -- workers -------------------------------------------------------------------------

    def worker_seen(self, worker: WorkerRecord, *, starting: bool = False) -> None:
        self.workers.seen(worker, starting=starting)

    def worker_gone(self, worker_id: str) -> None:
        self.workers.gone(worker_id)

    def live_workers(self) -> tuple[float, list[WorkerRecord]]:
        return self.workers.live()

    def prune_workers(self, older_than: float) -> int:
        return self.workers.prune(older_than)

    # -- schedules -----------------------------------------------------------------------

    def save_schedules(
        self, app: str, schedules: Sequence[NewSchedule], first_tick: FirstTick
    ) -> None:
        self.schedules.save(app, schedules, first_tick)

    def create_schedule(self, new: NewSchedule, first_tick: FirstTick) -> tuple[ScheduleRow, bool]:
        return self.schedules.create(new, first_tick)

    def get_schedules(self, names: Sequence[str] | None = None) -> list[ScheduleRow]:
        return self.schedules.get(names)

    def pause_schedule(
        self, name: str, paused: bool, next_tick: Callable[[ScheduleRow, float], float | None]
    ) -> ScheduleRow | None:
        return self.schedules.pause(name, paused, next_tick)

    def delete_schedule(self, name: str) -> bool:
        return self.schedules.delete(name)

    def next_schedule_tick(self, workflows: Sequence[str]) -> tuple[float, float | None]:
        return self.schedules.next_tick(workflows)

    def fire_schedules(self, workflows: Sequence[str], plan: Ticker, limit: int = 100) -> Fired:
        return self.schedules.fire(workflows, plan, limit)

    def start_schedule_runs(
        self, name: str, plan: Ticker
    ) -> tuple[ScheduleRow, Sequence[NewRun], set[str]] | None:
        return self.schedules.start_runs(name, plan)
