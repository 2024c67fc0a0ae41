"""The runs of a schedule's ticks, and what ``catch_up`` starts after an outage: pure
functions of a schedule's row and the log's clock, called inside the log's transaction
(:meth:`~durable.log.schedule_store.ScheduleStore.fire_schedules`).

A tick's run has the id ``"{name}:{tick}"`` (the tick in ISO 8601 in the schedule's zone,
with its offset: ``nightly:2024-03-31T03:00:00+02:00``) and is started with the tick
(a timezone-aware ``datetime``) as its first argument, then the schedule's arguments. The
id is the run's idempotency key: however many workers fire a tick, it has one run.

When a worker finds due ticks (``next_tick`` has come):

- ``"all"``: every due tick starts a run, oldest first (at most :data:`ALL_PER_PASS` per
  transaction; the next transaction goes on at once);
- ``"latest"``: the latest due tick starts a run, the earlier ones are skipped;
- ``"none"``: the latest due tick starts a run if it is at most :data:`MISSED_AFTER`
  seconds late, else none does.

Then ``next_tick`` moves to the first tick after the log's clock (``"all"``: after the
last tick started). When workers keep up, each pass finds one tick on time, and the three
behave alike.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass

import msgspec

from durable.codec import Codec
from durable.cron import Cron
from durable.errors import DurableError
from durable.log.schedule_store import Firing, ScheduleRow
from durable.log.store import NewRun
from durable.telemetry import Telemetry

__all__ = [
    "ALL_PER_PASS",
    "CATCH_UP",
    "MISSED_AFTER",
    "RETRY_BROKEN_AFTER",
    "TickRuns",
    "plan_due",
    "tick_input",
    "tick_run_id",
]

log = logging.getLogger("durable.engine.schedules")

CATCH_UP = ("latest", "all", "none")
"""The values of a schedule's ``catch_up``."""

MISSED_AFTER = 60.0
"""Seconds after which a tick that no worker started counts as missed (``catch_up="none"``
skips it)."""

ALL_PER_PASS = 1000
"""Most runs one transaction starts for one schedule with ``catch_up="all"``."""

RETRY_BROKEN_AFTER = 60.0
"""Seconds before a worker tries again a schedule whose row it cannot read."""

_Raw = tuple[list[msgspec.Raw], dict[str, msgspec.Raw]]
_raw_args = msgspec.msgpack.Decoder(_Raw)


def tick_run_id(name: str, cron: Cron, tick: float) -> str:
    """The id of a tick's run: ``"{name}:{tick in ISO 8601, in the schedule's zone}"``."""
    return f"{name}:{cron.iso(tick)}"


def tick_input(codec: Codec, args: bytes, tick: dt.datetime) -> bytes:
    """A tick run's encoded input: ``tick`` first, then the schedule's stored arguments
    (copied as they are, not decoded)."""
    raw, _kwargs = _raw_args.decode(args)
    return codec.encode(([tick, *raw], {}), "arguments of a schedule's run")


@dataclass(frozen=True, slots=True)
class TickRuns:
    """Makes the runs of ticks: their input, the workflow's timeout, the code version and
    the trace context a start gives."""

    codec: Codec
    telemetry: Telemetry
    version: str | None = None
    timeout_of: Callable[[str], float | None] = lambda _workflow: None
    """The timeout of a workflow whose code is known (``None``: none, or unknown)."""

    def run(self, row: ScheduleRow, cron: Cron, tick: float, run_id: str | None = None) -> NewRun:
        """The run of ``row``'s tick at ``tick`` (id: :func:`tick_run_id` unless given)."""
        rid = run_id or tick_run_id(row.name, cron, tick)
        return NewRun(
            id=rid,
            workflow=row.workflow,
            queue=row.queue,
            input=tick_input(self.codec, row.args, cron.local(tick)),
            timeout=self.timeout_of(row.workflow),
            trace_context=self.telemetry.start_context(row.workflow, rid, row.queue),
            version=self.version,
        )


def plan_due(row: ScheduleRow, now: float, runs: TickRuns) -> Firing:
    """The runs of ``row``'s due ticks at ``now`` by its ``catch_up``, and its next tick
    (see the module's docstring). A row that cannot be read is left for
    :data:`RETRY_BROKEN_AFTER` seconds, with an error logged."""
    try:
        cron = Cron(row.cron, row.timezone)
        if row.catch_up not in CATCH_UP:
            raise DurableError(f"catch_up {row.catch_up!r} is not one of {CATCH_UP}")
    except DurableError as exc:
        log.error("schedule %r cannot start its ticks: %s", row.name, exc)
        return Firing(next_tick=now + RETRY_BROKEN_AFTER)
    first = row.next_tick if row.next_tick is not None else now
    if row.catch_up == "all":
        ticks = [first]
        for tick in cron.iter_after(first):
            if tick > now or len(ticks) == ALL_PER_PASS:
                break
            ticks.append(tick)
        after = ticks[-1]
    else:
        latest = cron.latest_at_or_before(now)
        latest = first if latest is None or latest < first else latest
        on_time = now - latest <= MISSED_AFTER
        ticks = [latest] if row.catch_up == "latest" or on_time else []
        after = now
        if latest > first or not on_time:
            log.warning(
                "schedule %r: ticks missed since %s (no worker started them); catch_up=%r %s",
                row.name,
                cron.iso(first),
                row.catch_up,
                f"starts the latest, {cron.iso(latest)}" if ticks else "starts none",
            )
    new = [runs.run(row, cron, t) for t in ticks]
    last = (ticks[-1], new[-1].id) if new else None
    return Firing(runs=new, next_tick=cron.next_after(after), last=last)
