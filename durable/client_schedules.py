"""The schedules' half of :class:`~durable.client.Client`: list, pause, resume, trigger,
backfill, and the schedules made at run time (create, delete).

Mixins, so that ``client.py`` stays about runs; every method is one transaction of the log
(:mod:`durable.log.schedule_store`), and the runs of a trigger or a backfill are planned
inside it (:mod:`durable.engine.ticks`): a backfill refused for its range writes nothing.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from durable.codec import Codec
from durable.cron import Cron
from durable.engine.registry import Registry, WorkflowDef
from durable.engine.ticks import TickRuns
from durable.errors import DurableError, IdConflictError, InvalidOptionError, ScheduleNotFoundError
from durable.hub import LocalHub
from durable.log.schedule_store import Firing, ScheduleRow
from durable.log.store import Store
from durable.schedule_defs import define_schedule, first_tick, schedule_info
from durable.telemetry import Telemetry
from durable.types import ScheduleInfo

if TYPE_CHECKING:
    from durable.client import AsyncRunHandle, Client, RunHandle

__all__ = ["MAX_BACKFILL", "AsyncScheduleOps", "ScheduleOps"]

MAX_BACKFILL = 1000
"""The most ticks one ``backfill`` starts: a longer range is refused (split it)."""


def _not_found(name: str) -> ScheduleNotFoundError:
    return ScheduleNotFoundError(
        f"no schedule named {name!r} in the log (a schedule of app.schedule is written to "
        "the log when a worker of its App starts)"
    )


def _instant(value: object, what: str, cron: Cron) -> float:
    """A backfill bound as Unix seconds: an aware datetime, or a naive one (or a date: its
    midnight) read on the schedule's wall clock."""
    if isinstance(value, dt.datetime):
        moment = value if value.tzinfo is not None else value.replace(tzinfo=cron.tz)
    elif isinstance(value, dt.date):
        moment = dt.datetime.combine(value, dt.time(), cron.tz)
    else:
        raise InvalidOptionError(f"backfill {what} must be a datetime, not {value!r}")
    return moment.timestamp()


class ScheduleOps:
    """The schedule methods of :class:`~durable.client.Client` (a mixin)."""

    _store: Store
    _codec: Codec
    _registry: Registry | None
    _hub: LocalHub | None
    _telemetry: Telemetry
    _version_of: Callable[[], str | None]

    def _handle(self, run_id: str) -> RunHandle:
        raise NotImplementedError  # pragma: no cover - Client defines it

    def _resolve(self, workflow: Callable[..., Any] | str) -> tuple[str, WorkflowDef | None]:
        raise NotImplementedError  # pragma: no cover - Client defines it

    def _tick_runs(self) -> TickRuns:
        registry = self._registry

        def timeout_of(workflow: str) -> float | None:
            wf = registry.workflows.get(workflow) if registry is not None else None
            return wf.timeout if wf is not None else None

        return TickRuns(self._codec, self._telemetry, self._version_of(), timeout_of)

    def _changed(self) -> None:
        if self._hub is not None:
            self._hub.schedules_changed()

    def _info(self, row: ScheduleRow) -> ScheduleInfo:
        return schedule_info(row, self._codec)

    # -- reading and pausing -------------------------------------------------------------

    def schedules(self) -> list[ScheduleInfo]:
        """Every schedule in the log, by name: those declared in an App's code (written when
        a worker of the App starts) and those made by :meth:`create_schedule`."""
        return [self._info(r) for r in self._store.get_schedules()]

    def _paused(self, name: str, paused: bool) -> ScheduleInfo:
        def next_tick(row: ScheduleRow, now: float) -> float | None:
            return Cron(row.cron, row.timezone).next_after(now)

        row = self._store.pause_schedule(name, paused, next_tick)
        if row is None:
            raise _not_found(name)
        self._changed()
        return self._info(row)

    def pause_schedule(self, name: str) -> ScheduleInfo:
        """Pause the schedule: no tick starts a run until :meth:`resume_schedule`, in any
        process (runs started already go on). Pausing a paused schedule does nothing.

        Raises:
            ScheduleNotFoundError: no schedule has that name.
        """
        return self._paused(name, True)

    def resume_schedule(self, name: str) -> ScheduleInfo:
        """Resume a paused schedule from its next tick after now: the ticks that passed
        while it was paused start no run (:meth:`backfill` starts them if need be).
        Resuming a schedule that is not paused does nothing.

        Raises:
            ScheduleNotFoundError: no schedule has that name.
        """
        return self._paused(name, False)

    # -- starting runs -------------------------------------------------------------------

    def trigger_schedule(self, name: str) -> RunHandle:
        """Start a run of the schedule now, paused or not, outside its ticks: its tick time
        is now (the log's clock), its id ``"{name}:{now in ISO 8601}"``.

        Raises:
            ScheduleNotFoundError: no schedule has that name.
        """
        runs = self._tick_runs()

        def plan(row: ScheduleRow, now: float) -> Firing:
            run = runs.run(row, Cron(row.cron, row.timezone), now)
            return Firing(runs=[run], last=(now, run.id))

        run_ids = self._start_runs(name, plan)
        return self._handle(run_ids[0])

    def backfill(self, name: str, start: dt.datetime, end: dt.datetime) -> list[RunHandle]:
        """Start the runs of the schedule's ticks from ``start`` to ``end`` (both included,
        up to now: later ticks are left to the schedule), paused or not; a tick that has a
        run already keeps it. Naive datetimes (and dates) are read on the schedule's wall
        clock. Returns the handles in tick order.

        Raises:
            ScheduleNotFoundError: no schedule has that name.
            InvalidOptionError: ``start`` is after ``end``, or the range holds more than
                :data:`MAX_BACKFILL` ticks (1000): nothing is written.
        """
        runs = self._tick_runs()

        def plan(row: ScheduleRow, now: float) -> Firing:
            cron = Cron(row.cron, row.timezone)
            a, b = _instant(start, "start", cron), _instant(end, "end", cron)
            if a > b:
                raise InvalidOptionError(
                    f"backfill of schedule {name!r}: start {cron.iso(a)} is after end "
                    f"{cron.iso(b)} (give the earlier one first)"
                )
            ticks = cron.between(a, min(b, now), MAX_BACKFILL)
            if ticks is None:
                raise InvalidOptionError(
                    f"backfill of schedule {name!r}: {cron.iso(a)} to {cron.iso(b)} holds "
                    f"more than {MAX_BACKFILL} ticks, the most one backfill starts: split "
                    "the range"
                )
            new = [runs.run(row, cron, t) for t in ticks]
            return Firing(runs=new, last=(ticks[-1], new[-1].id) if new else None)

        return [self._handle(rid) for rid in self._start_runs(name, plan)]

    def _start_runs(self, name: str, plan: Callable[[ScheduleRow, float], Firing]) -> list[str]:
        got = self._store.start_schedule_runs(name, plan)
        if got is None:
            raise _not_found(name)
        _row, planned, created = got
        for run in planned:
            if run.id in created:
                self._telemetry.run_started(run.workflow, run.queue)
        if created and self._hub is not None:
            self._hub.work()
        return [run.id for run in planned]

    # -- schedules made at run time ------------------------------------------------------

    def create_schedule(
        self,
        workflow: Callable[..., Any] | str,
        cron: str,
        *,
        timezone: str = "UTC",
        name: str | None = None,
        args: Sequence[Any] = (),
        catch_up: str = "latest",
        queue: str | None = None,
    ) -> ScheduleInfo:
        """Make a schedule at run time, as ``app.schedule`` declares one in code (the same
        arguments; ``queue``: the queue of its runs, default the workflow's). It is kept in
        the log until :meth:`delete_schedule`, and its ticks are started by any worker
        whose App registers the workflow. Creating it again with the same definition
        returns it as it is.

        Raises:
            InvalidOptionError: the cron expression, time zone, ``catch_up`` or name is not
                valid.
            InvalidArgumentError: ``args`` do not fit the workflow (known to an App's
                client) after the tick.
            IdConflictError: a schedule of that name exists with another definition.
        """
        wf_name, wf = self._resolve(workflow)
        new, _ = define_schedule(
            workflow=wf_name,
            wf=wf,
            cron=cron,
            timezone=timezone,
            name=name,
            args=args,
            catch_up=catch_up,
            queue=queue or (wf.queue if wf is not None else "default"),
            codec=self._codec,
            app=None,
        )
        row, created = self._store.create_schedule(new, first_tick)
        if not created and not new.same_as(row):
            where = f"declared in the code of App {row.app!r}" if row.app else "made by a client"
            raise IdConflictError(
                f"schedule {new.name!r} exists ({where}) with another definition: delete it "
                "first, or choose another name"
            )
        self._changed()
        return self._info(row)

    def delete_schedule(self, name: str) -> None:
        """Delete a schedule made by :meth:`create_schedule` (its runs stay).

        Raises:
            ScheduleNotFoundError: no schedule has that name.
            DurableError: the schedule is declared in an App's code: remove the
                ``app.schedule`` call instead (a worker of the new code deletes its row).
        """
        found = self._store.get_schedules([name])
        if not found:
            raise _not_found(name)
        if found[0].app is not None:
            raise DurableError(
                f"schedule {name!r} is declared in the code of App {found[0].app!r}: remove "
                "its app.schedule call (the next worker of that App deletes it), or pause it"
            )
        if not self._store.delete_schedule(name):
            raise _not_found(name)
        self._changed()


class AsyncScheduleOps:
    """The schedule methods of :class:`~durable.client.AsyncClient` as coroutines."""

    _c: Client

    async def schedules(self) -> list[ScheduleInfo]:
        """Every schedule in the log (see ``Client.schedules``)."""
        return await asyncio.to_thread(self._c.schedules)

    async def pause_schedule(self, name: str) -> ScheduleInfo:
        """Pause a schedule (see ``Client.pause_schedule``)."""
        return await asyncio.to_thread(self._c.pause_schedule, name)

    async def resume_schedule(self, name: str) -> ScheduleInfo:
        """Resume a paused schedule (see ``Client.resume_schedule``)."""
        return await asyncio.to_thread(self._c.resume_schedule, name)

    async def trigger_schedule(self, name: str) -> AsyncRunHandle:
        """Start a run of a schedule now (see ``Client.trigger_schedule``)."""
        from durable.client import AsyncRunHandle

        return AsyncRunHandle(await asyncio.to_thread(self._c.trigger_schedule, name))

    async def backfill(
        self, name: str, start: dt.datetime, end: dt.datetime
    ) -> list[AsyncRunHandle]:
        """Start the runs of a range of ticks (see ``Client.backfill``)."""
        from durable.client import AsyncRunHandle

        handles = await asyncio.to_thread(self._c.backfill, name, start, end)
        return [AsyncRunHandle(h) for h in handles]

    async def create_schedule(
        self, workflow: Callable[..., Any] | str, cron: str, **options: Any
    ) -> ScheduleInfo:
        """Make a schedule at run time (see ``Client.create_schedule``)."""
        return await asyncio.to_thread(self._c.create_schedule, workflow, cron, **options)

    async def delete_schedule(self, name: str) -> None:
        """Delete a schedule made at run time (see ``Client.delete_schedule``)."""
        await asyncio.to_thread(self._c.delete_schedule, name)
