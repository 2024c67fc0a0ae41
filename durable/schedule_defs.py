"""A schedule before it is written, checked; and a schedule's row as users see it.

``app.schedule(...)`` and ``client.create_schedule(...)`` both go through
:func:`define_schedule`: every argument is checked (the cron expression, the time zone,
``catch_up``, the name, and the arguments against the workflow's parameters, with a tick
in front) before anything is written, so that a bad definition is refused where it is
written, not at its first tick.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from durable.codec import Codec
from durable.cron import Cron
from durable.engine.registry import WorkflowDef
from durable.engine.ticks import CATCH_UP, tick_input
from durable.errors import InvalidArgumentError, InvalidOptionError
from durable.log.schedule_store import NewSchedule, ScheduleRow
from durable.types import ScheduleInfo

__all__ = ["MAX_SCHEDULE_NAME", "define_schedule", "first_tick", "schedule_info"]

MAX_SCHEDULE_NAME = 200
"""The longest schedule name: its runs' ids (``"{name}:{tick}"``) must fit 255 characters."""

_SAMPLE_TICK = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)


def _name(value: object) -> str:
    if not isinstance(value, str) or not value:
        raise InvalidOptionError(f"a schedule's name must be a non-empty string, not {value!r}")
    if len(value) > MAX_SCHEDULE_NAME:
        raise InvalidOptionError(
            f"schedule name {value[:40]!r}... is longer than {MAX_SCHEDULE_NAME} characters"
        )
    if "\x00" in value:
        raise InvalidOptionError("a schedule's name cannot contain a NUL character")
    return value


def define_schedule(
    *,
    workflow: str,
    wf: WorkflowDef | None,
    cron: object,
    timezone: object,
    name: object,
    args: object,
    catch_up: object,
    queue: str,
    codec: Codec,
    app: str | None,
) -> tuple[NewSchedule, Cron]:
    """A checked definition of a schedule of ``workflow`` (``wf``: its code, if known).

    Raises:
        InvalidOptionError: the cron expression, the time zone, ``catch_up`` or the name is
            not valid, or the expression has no tick to come.
        InvalidArgumentError: ``args`` do not fit the workflow's parameters after the tick
            (checked when the code is known).
        SerializationError: an argument cannot be encoded.
    """
    ticks = Cron(cron, timezone)
    if ticks.next_after(dt.datetime.now(dt.UTC).timestamp()) is None:
        raise InvalidOptionError(f"cron {ticks.expr!r} has no tick to come")
    if catch_up not in CATCH_UP:
        raise InvalidOptionError(
            f"catch_up must be one of {', '.join(repr(c) for c in CATCH_UP)}, not {catch_up!r}"
        )
    if not isinstance(args, tuple | list):
        raise InvalidOptionError(
            f"args must be a tuple of the arguments after the tick, not {type(args).__name__}"
        )
    call: Sequence[Any] = (_SAMPLE_TICK, *args)
    if wf is not None:
        try:
            wf.signature.check(tuple(call), {})
        except TypeError as exc:
            raise InvalidArgumentError(
                f"workflow {workflow!r} cannot be called with the tick time and args={args!r} "
                f"(a schedule calls it as {workflow}(tick, *args)): {exc}"
            ) from None
    what = f"args of the schedule of workflow {workflow!r}"
    data = codec.encode_args(tuple(args), {}, what)
    if wf is not None:
        wf.signature.check_types(tick_input(codec, data, _SAMPLE_TICK), f"workflow {workflow!r}")
    new = NewSchedule(
        name=_name(workflow if name is None else name),
        workflow=workflow,
        queue=queue,
        cron=ticks.expr,
        timezone=ticks.timezone,
        args=data,
        catch_up=str(catch_up),
        app=app,
    )
    return new, ticks


def first_tick(new: NewSchedule, now: float) -> float | None:
    """A new schedule's first tick: the first after ``now``."""
    return Cron(new.cron, new.timezone).next_after(now)


def _utc(t: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(t, dt.UTC)


def schedule_info(row: ScheduleRow, codec: Codec) -> ScheduleInfo:
    """The public view of a schedule's row (its ticks in its own time zone)."""
    try:
        cron: Cron | None = Cron(row.cron, row.timezone)
    except InvalidOptionError:
        cron = None

    def local(t: float | None) -> dt.datetime | None:
        if t is None:
            return None
        return cron.local(t) if cron is not None else _utc(t)

    try:
        args = tuple(codec.decode(row.args)[0])
    except Exception:
        args = ()
    return ScheduleInfo(
        name=row.name,
        workflow=row.workflow,
        cron=row.cron,
        timezone=row.timezone,
        catch_up=row.catch_up,
        paused=row.paused,
        next_tick=local(row.next_tick),
        last_tick=local(row.last_tick),
        last_run_id=row.last_run_id,
        queue=row.queue,
        args=args,
        app=row.app,
        created_at=_utc(row.created_at),
        updated_at=_utc(row.updated_at),
    )
