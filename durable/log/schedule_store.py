"""The schedules' half of the log's contract: their rows, and the transactions on them.

A *schedule* is a row of ``durable_schedules``: a workflow, a cron expression in a time
zone, the arguments its runs get after their tick, and where it stands (``next_tick``, the
next tick to start; ``last_tick`` and ``last_run_id``, the latest run started; ``paused``).
A row declared in an App's code names that App (``app``); one made by a client at run time
has none.

The log knows no cron: where a transaction needs a tick, the caller hands in a function
that the log calls inside it, with the row and the database's clock, and that computes
nothing but values (no I/O). So reading a row, deciding its runs and writing them is one
transaction, and the runs of a tick are inserted with the row's move to the next tick or
not at all. A run's id is its idempotency key: a tick's run inserted twice (two workers, a
retry) is one run.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from durable.log.store import NewRun

__all__ = [
    "Fired",
    "Firing",
    "NewSchedule",
    "ScheduleRow",
    "ScheduleStore",
    "Ticker",
]


@dataclass(frozen=True, slots=True)
class NewSchedule:
    """A schedule's definition, to write (see :meth:`ScheduleStore.save_schedules`)."""

    name: str
    workflow: str
    queue: str
    cron: str
    timezone: str
    args: bytes
    """The encoded arguments that every run gets after its tick."""
    catch_up: str
    app: str | None = None
    """The App whose code declares it; ``None``: made by a client at run time."""

    def same_ticks(self, row: ScheduleRow) -> bool:
        """Whether ``row`` has the ticks of this definition (same cron, same zone)."""
        return (row.cron, row.timezone) == (self.cron, self.timezone)

    def same_as(self, row: ScheduleRow) -> bool:
        """Whether ``row`` holds this definition (paused and ticks aside)."""
        return (
            row.workflow,
            row.queue,
            row.cron,
            row.timezone,
            row.args,
            row.catch_up,
            row.app,
        ) == (
            self.workflow,
            self.queue,
            self.cron,
            self.timezone,
            self.args,
            self.catch_up,
            self.app,
        )


@dataclass(frozen=True, slots=True)
class ScheduleRow:
    """One row of ``durable_schedules``."""

    name: str
    app: str | None
    workflow: str
    queue: str
    cron: str
    timezone: str
    args: bytes
    catch_up: str
    paused: bool
    next_tick: float | None
    """The next tick to start (Unix seconds); ``None``: the expression has no tick left."""
    last_tick: float | None
    """The tick of the latest run started (by the schedule, a trigger or a backfill)."""
    last_run_id: str | None
    created_at: float
    updated_at: float


@dataclass(frozen=True, slots=True)
class Firing:
    """What a transaction on one schedule writes: runs, and where the schedule stands."""

    runs: Sequence[NewRun] = ()
    """Runs to insert (an id that exists keeps its run)."""
    next_tick: float | None = None
    """The schedule's next tick after this (read by :meth:`ScheduleStore.fire_schedules`
    only)."""
    last: tuple[float, str] | None = None
    """``(tick, run id)`` of the latest run among ``runs``: it becomes the schedule's last
    run if its tick is later than the one recorded."""


Ticker = Callable[[ScheduleRow, float], Firing]
"""``plan(row, now)``: what to write for a schedule, given its row and the database's clock
inside the transaction. It may raise: the transaction then writes nothing."""


@dataclass(frozen=True, slots=True)
class Fired:
    """What :meth:`ScheduleStore.fire_schedules` did."""

    created: list[NewRun] = field(default_factory=list)
    """The runs it inserted (the others existed)."""
    now: float = 0.0
    """The database's clock in the transaction."""


class ScheduleStore(abc.ABC):
    """The schedule transactions of the log (a part of :class:`~durable.log.store.Store`)."""

    @abc.abstractmethod
    def save_schedules(
        self,
        app: str,
        schedules: Sequence[NewSchedule],
        first_tick: Callable[[NewSchedule, float], float | None],
    ) -> None:
        """Make the rows of App ``app``'s code declarations match ``schedules``, in one
        transaction: insert those that are new (``next_tick = first_tick(new, now)``,
        unpaused); update the definition of those that exist, keeping ``paused`` and the
        ticks unless the cron or the zone changed (then ``next_tick = first_tick(...)``);
        delete the rows of ``app`` that ``schedules`` no longer names.

        Raises:
            IdConflictError: a name is taken by a schedule made by a client (nothing is
                written).
        """

    @abc.abstractmethod
    def create_schedule(
        self, new: NewSchedule, first_tick: Callable[[NewSchedule, float], float | None]
    ) -> tuple[ScheduleRow, bool]:
        """Insert a schedule made at run time unless its name exists; return the row (the
        existing one if the name was taken) and whether it was created."""

    @abc.abstractmethod
    def get_schedules(self, names: Sequence[str] | None = None) -> list[ScheduleRow]:
        """The rows of ``names`` that exist (``None``: every schedule), by name."""

    @abc.abstractmethod
    def pause_schedule(
        self, name: str, paused: bool, next_tick: Callable[[ScheduleRow, float], float | None]
    ) -> ScheduleRow | None:
        """Pause the schedule, or resume a paused one with ``next_tick(row, now)`` as its
        next tick (ticks that passed while it was paused are not started); either is left
        as it is if it is so already. Returns the row after, ``None`` if there is none."""

    @abc.abstractmethod
    def delete_schedule(self, name: str) -> bool:
        """Delete the schedule if a client made it (``app`` is ``NULL``); its runs stay.
        ``False``: there is no such schedule made by a client."""

    @abc.abstractmethod
    def next_schedule_tick(self, workflows: Sequence[str]) -> tuple[float, float | None]:
        """The database's clock, and the earliest ``next_tick`` of the schedules of
        ``workflows`` that are not paused (``None``: none has one). A read."""

    @abc.abstractmethod
    def fire_schedules(self, workflows: Sequence[str], plan: Ticker, limit: int = 100) -> Fired:
        """For up to ``limit`` schedules of ``workflows``, not paused, whose ``next_tick``
        has come: insert the runs of ``plan(row, now)`` and move the row to its
        ``next_tick`` (and ``last``), in one transaction. A row that another transaction
        holds is skipped (Postgres ``SKIP LOCKED``; SQLite serializes writes)."""

    @abc.abstractmethod
    def start_schedule_runs(
        self, name: str, plan: Ticker
    ) -> tuple[ScheduleRow, Sequence[NewRun], set[str]] | None:
        """Insert the runs of ``plan(row, now)`` for one schedule (a trigger, a backfill),
        paused or not, and record ``last``, in one transaction; ``next_tick`` is left as it
        is. Returns the row, the runs planned and the ids inserted (the others existed);
        ``None``: there is no such schedule."""
