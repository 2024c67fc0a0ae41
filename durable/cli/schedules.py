"""``durable schedules list | pause | resume | trigger | backfill | delete``."""

from __future__ import annotations

import argparse
import datetime as dt
from collections.abc import Callable
from typing import Any

import durable
from durable.cli.context import Context
from durable.cli.errors import USAGE, CliError
from durable.cli.output import dump_json, fmt_time, jsonable, run_dict, table

__all__ = ["register"]

HEADERS = ("NAME", "WORKFLOW", "CRON", "TIMEZONE", "CATCH_UP", "STATE", "NEXT TICK", "LAST RUN")


def _moment(text: str) -> dt.datetime:
    """``backfill`` START and END: an ISO 8601 date or date and time (argparse's type)."""
    try:
        return dt.datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"not an ISO 8601 date or date and time (2024-03-01, 2024-03-01T03:00+01:00): {text!r}"
        ) from None


def _tick(t: dt.datetime | None) -> str:
    """A tick in its schedule's zone, to the second."""
    return "" if t is None else t.isoformat(sep=" ", timespec="seconds")


def _state(s: durable.ScheduleInfo) -> str:
    origin = f"app {s.app}" if s.app is not None else "made by a client"
    return f"{'paused' if s.paused else 'active'}, {origin}"


def schedules_list(ctx: Context) -> int:
    """``schedules list``: every schedule, by name."""
    found = ctx.client().schedules()
    if ctx.json:
        dump_json([{**jsonable(s), "in_code": s.in_code} for s in found])
        return 0
    if not found:
        print("no schedule in the log")
        return 0
    table(
        HEADERS,
        [
            (
                s.name,
                s.workflow,
                s.cron,
                s.timezone,
                s.catch_up,
                _state(s),
                _tick(s.next_tick),
                s.last_run_id or "",
            )
            for s in found
        ],
    )
    return 0


def _report(ctx: Context, info: durable.ScheduleInfo, verb: str) -> int:
    if ctx.json:
        dump_json({**jsonable(info), "in_code": info.in_code})
    else:
        print(f"{verb} schedule {info.name}: next tick {_tick(info.next_tick) or 'none'}")
    return 0


def schedules_pause(ctx: Context) -> int:
    """``schedules pause NAME``."""
    return _report(ctx, ctx.client().pause_schedule(ctx.args.name), "paused")


def schedules_resume(ctx: Context) -> int:
    """``schedules resume NAME``."""
    return _report(ctx, ctx.client().resume_schedule(ctx.args.name), "resumed")


def schedules_trigger(ctx: Context) -> int:
    """``schedules trigger NAME``: a run now."""
    info = ctx.client().trigger_schedule(ctx.args.name).info()
    if ctx.json:
        dump_json(run_dict(info))
    else:
        print(f"started {info.id} ({info.workflow}): {info.status.value}")
    return 0


def schedules_backfill(ctx: Context) -> int:
    """``schedules backfill NAME START END``: the runs of the ticks in the range."""
    a = ctx.args
    try:
        handles = ctx.client().backfill(a.name, a.start, a.end)
    except durable.InvalidOptionError as exc:
        raise CliError(str(exc), USAGE) from None
    infos = [h.info() for h in handles]
    if ctx.json:
        dump_json([run_dict(i) for i in infos])
        return 0
    for i in infos:
        print(f"{i.id}  {i.status.value}  {fmt_time(i.created_at)}")
    print(f"{len(infos)} tick{'s' if len(infos) != 1 else ''} of schedule {a.name}")
    return 0


def schedules_delete(ctx: Context) -> int:
    """``schedules delete NAME``: a schedule made at run time."""
    ctx.client().delete_schedule(ctx.args.name)
    if ctx.json:
        dump_json({"deleted": ctx.args.name})
    else:
        print(f"deleted schedule {ctx.args.name} (its runs stay)")
    return 0


def register(
    sub: Any,
    add: Callable[..., argparse.ArgumentParser],
    group: Callable[..., Any],
) -> None:
    """Add ``schedules`` and its sub-commands (``add`` adds one command, ``group`` a
    command of sub-commands: the parser's helpers)."""
    ss = group(
        sub,
        "schedules",
        "list schedules, pause, resume, trigger, backfill",
        "Schedules: `schedules list`, `schedules pause NAME`, `schedules resume NAME`, "
        "`schedules trigger NAME`, `schedules backfill NAME START END`, `schedules delete "
        "NAME`. Pause and resume reach every worker; a resumed schedule starts no run for the "
        "ticks that passed while it was paused.",
        "{list,pause,resume,trigger,backfill,delete}",
    )
    add(
        ss,
        "list",
        schedules_list,
        "every schedule: cron, time zone, next tick, last run",
        "List every schedule of the log, by name: its workflow, cron expression, time zone, "
        "catch_up, whether it is paused and where it comes from (an App's code or a "
        "client), its next tick and the id of its last run.",
    )
    for name, fn, text in (
        ("pause", schedules_pause, "pause a schedule: no tick starts a run"),
        ("resume", schedules_resume, "resume a paused schedule from its next tick"),
        ("trigger", schedules_trigger, "start a run of a schedule now"),
        ("delete", schedules_delete, "delete a schedule made by a client (its runs stay)"),
    ):
        p = add(ss, name, fn, text, text[0].upper() + text[1:] + ".")
        p.add_argument("name", help="the schedule's name")
    bf = add(
        ss,
        "backfill",
        schedules_backfill,
        "start the runs of the ticks in a range",
        "Start a run for every tick of the schedule from START to END (both included, up to "
        "now), paused or not; a tick that has a run already keeps it. START and END are ISO "
        "8601 dates or dates and times; without an offset they are read on the schedule's "
        "wall clock. At most 1000 ticks at once.",
    )
    bf.add_argument("name", help="the schedule's name")
    bf.add_argument("start", type=_moment, help="the first instant, e.g. 2024-03-01")
    bf.add_argument("end", type=_moment, help="the last instant, e.g. 2024-03-31T23:59")
