"""Schedules on every backend, with an embedded worker: a run per tick with its tick time,
pause and resume, trigger and backfill, catch-up after an outage, the declarations of an
App's code, schedules made at run time, and bad input refused before anything is written."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import Callable
from typing import Any

import pytest
import sqlalchemy as sa

import durable
from durable.cron import Cron
from durable.engine.ticks import MISSED_AFTER
from durable.log.schema import schedules

WaitUntil = Callable[..., Any]


def _define(app: durable.App) -> Callable[..., Any]:
    @app.workflow(name="report", queue="reports")
    def report(tick: dt.datetime, region: str = "eu") -> str:
        return f"{region} {tick.isoformat()}"

    return report  # type: ignore[no-any-return]


def _set_next_tick(db_url: str, name: str, when: float) -> None:
    """Leave the log as an outage leaves it: the schedule's next tick long past."""
    from durable.log.postgres import normalize_url

    engine = sa.create_engine(normalize_url(db_url) if "postgres" in db_url else db_url)
    try:
        with engine.begin() as c:
            c.execute(sa.update(schedules).where(schedules.c.name == name).values(next_tick=when))
    finally:
        engine.dispose()


def _tick_of(run_id: str) -> dt.datetime:
    return dt.datetime.fromisoformat(run_id.partition(":")[2])


def test_every_tick_starts_one_run_called_with_its_tick(
    app: durable.App, client: durable.Client, wait_until: WaitUntil
) -> None:
    report = _define(app)
    assert app.schedule(report, "* * * * * *", args=("us",)) == "report"
    with app.worker():
        wait_until(lambda: len(client.list_runs(workflow="report")) >= 3, timeout=20)
    runs = client.list_runs(workflow="report")
    ticks = sorted(_tick_of(r.id) for r in runs)
    assert len(set(ticks)) == len(ticks)
    assert all(t.microsecond == 0 and t.utcoffset() == dt.timedelta(0) for t in ticks)
    for r in runs:
        if r.status is durable.Status.COMPLETED:
            assert client.get(r.id).result() == f"us {_tick_of(r.id).isoformat()}"
    (info,) = client.schedules()
    assert (info.name, info.workflow, info.queue, info.app, info.in_code) == (
        "report",
        "report",
        "reports",
        app.name,
        True,
    )
    assert info.args == ("us",) and info.last_run_id is not None
    assert info.next_tick is not None and info.last_tick is not None
    assert info.next_tick > info.last_tick


def test_pause_stops_the_ticks_everywhere_and_resume_skips_the_paused_ones(
    app: durable.App, client: durable.Client, wait_until: WaitUntil
) -> None:
    _define(app)
    made = client.create_schedule("report", "* * * * * *", name="every-second")
    assert not made.paused and not made.in_code
    with app.worker():
        wait_until(lambda: client.list_runs(workflow="report"), timeout=20)
        assert client.pause_schedule("every-second").paused
        paused_at = dt.datetime.now(dt.UTC)
        before = {r.id for r in client.list_runs(workflow="report")}
        time.sleep(2.5)
        assert {r.id for r in client.list_runs(workflow="report")} == before
        assert client.pause_schedule("every-second").paused  # again: nothing changes
        resumed = client.resume_schedule("every-second")
        resumed_at = dt.datetime.now(dt.UTC)
        assert not resumed.paused and resumed.next_tick is not None
        assert resumed.next_tick > paused_at
        wait_until(lambda: len(client.list_runs(workflow="report")) > len(before), timeout=20)
    late = [_tick_of(r.id) for r in client.list_runs(workflow="report") if r.id not in before]
    assert all(t >= resumed_at - dt.timedelta(seconds=1) for t in late)


def test_trigger_and_backfill_start_runs_by_the_tick_ids(
    app: durable.App, client: durable.Client
) -> None:
    _define(app)
    client.create_schedule("report", "0 3 * * *", timezone="Europe/Berlin", args=("eu",))
    start, end = dt.datetime(2024, 3, 29), dt.datetime(2024, 4, 1, 12)  # Berlin wall time
    handles = client.backfill("report", start, end)
    assert [h.id for h in handles] == [
        "report:2024-03-29T03:00:00+01:00",
        "report:2024-03-30T03:00:00+01:00",
        "report:2024-03-31T03:00:00+02:00",
        "report:2024-04-01T03:00:00+02:00",
    ]
    again = client.backfill("report", dt.date(2024, 3, 31), dt.date(2024, 4, 1))
    assert [h.id for h in again] == [handles[2].id]  # the existing run, not a new one
    assert len(client.list_runs(workflow="report")) == 4
    assert all(h.status() is durable.Status.PENDING for h in handles)

    h = client.trigger_schedule("report")
    assert h.id.startswith("report:") and _tick_of(h.id) > dt.datetime.now(dt.UTC) - dt.timedelta(
        minutes=1
    )
    (info,) = client.schedules()
    assert info.last_run_id == h.id  # the latest tick's run
    client.backfill("report", start, end)  # older ticks leave the last run as it is
    assert client.schedules()[0].last_run_id == h.id


def test_backfill_refuses_a_bad_range_before_writing(
    app: durable.App, client: durable.Client
) -> None:
    _define(app)
    client.create_schedule("report", "0 3 * * *")
    with pytest.raises(durable.InvalidOptionError, match="is after end"):
        client.backfill("report", dt.datetime(2024, 3, 2), dt.datetime(2024, 3, 1))
    with pytest.raises(durable.InvalidOptionError, match="more than 1000 ticks"):
        client.backfill("report", dt.datetime(2020, 1, 1), dt.datetime(2023, 1, 1))
    with pytest.raises(durable.InvalidOptionError, match="must be a datetime"):
        client.backfill("report", "2024-01-01", dt.datetime(2024, 3, 1))  # type: ignore[arg-type]
    with pytest.raises(durable.ScheduleNotFoundError, match="no schedule named 'nope'"):
        client.backfill("nope", dt.datetime(2024, 3, 1), dt.datetime(2024, 3, 2))
    assert client.list_runs() == []
    assert client.schedules()[0].last_run_id is None
    future = client.backfill(
        "report", dt.datetime.now(dt.UTC) + dt.timedelta(days=1), dt.datetime(2999, 1, 1)
    )
    assert future == []  # ticks after now are left to the schedule


@pytest.mark.parametrize("catch_up", ["latest", "all", "none"])
def test_after_an_outage_catch_up_decides_what_starts(
    db_url: str, app: durable.App, client: durable.Client, wait_until: WaitUntil, catch_up: str
) -> None:
    _define(app)
    now = dt.datetime.now(dt.UTC)
    cron = Cron(f"0 {(now.hour + 12) % 24} * * *")  # its latest tick: about 12 hours ago
    client.create_schedule("report", cron.expr, catch_up=catch_up)
    latest = cron.latest_at_or_before(now.timestamp())
    assert latest is not None and now.timestamp() - latest > MISSED_AFTER
    _set_next_tick(db_url, "report", latest - 3 * 86400)  # no worker for three days
    with app.worker():
        wait_until(lambda: client.schedules()[0].next_tick > now, timeout=20)
    ticks = sorted(_tick_of(r.id).timestamp() for r in client.list_runs())
    expected = {
        "all": [latest - d * 86400 for d in (3, 2, 1, 0)],
        "latest": [latest],
        "none": [],
    }
    assert ticks == expected[catch_up]


def test_the_code_declarations_are_written_when_a_worker_starts(
    make_app: Callable[..., durable.App], client: durable.Client
) -> None:
    old = make_app("shop")
    _define(old)
    old.schedule("report", "0 3 * * *", name="nightly", timezone="Europe/Berlin")
    old.schedule("report", "0 * * * *", name="hourly", catch_up="all")
    assert client.schedules() == []  # declared, not written yet
    with old.worker():
        pass
    assert [(s.name, s.app, s.cron) for s in client.schedules()] == [
        ("hourly", "shop", "0 * * * *"),
        ("nightly", "shop", "0 3 * * *"),
    ]
    client.pause_schedule("nightly")
    new = make_app("shop")  # the next deploy: "hourly" is gone, "nightly" moved to 04:00
    _define(new)
    new.schedule("report", "0 4 * * *", name="nightly", timezone="Europe/Berlin")
    with new.worker():
        pass
    (nightly,) = client.schedules()
    assert (nightly.name, nightly.cron, nightly.paused) == ("nightly", "0 4 * * *", True)
    assert nightly.next_tick is not None and nightly.next_tick.hour == 4
    with pytest.raises(durable.DurableError, match="declared in the code of App 'shop'"):
        client.delete_schedule("nightly")


def test_schedules_made_at_run_time_by_a_client_without_code(db_url: str) -> None:
    with durable.Client(db_url) as c:
        made = c.create_schedule("anything", "*/5 * * * *", name="poll", queue="q", args=[1])
        assert (made.workflow, made.queue, made.args, made.app) == ("anything", "q", (1,), None)
        assert c.create_schedule("anything", "*/5 * * * *", name="poll", queue="q", args=[1])
        with pytest.raises(durable.IdConflictError, match="another definition"):
            c.create_schedule("anything", "*/10 * * * *", name="poll", queue="q")
        run = c.trigger_schedule("poll")
        assert run.info().queue == "q" and run.info().workflow == "anything"
        c.delete_schedule("poll")
        assert c.schedules() == []
        assert run.status() is durable.Status.PENDING  # its runs stay
        with pytest.raises(durable.ScheduleNotFoundError):
            c.delete_schedule("poll")
        with pytest.raises(durable.ScheduleNotFoundError):
            c.pause_schedule("poll")
        with pytest.raises(durable.ScheduleNotFoundError):
            c.trigger_schedule("poll")


def test_bad_definitions_are_refused_before_anything_is_written(
    app: durable.App, client: durable.Client
) -> None:
    report = _define(app)

    @app.workflow(name="plain")
    def plain() -> None:
        return None

    other = durable.App("other")

    @other.workflow(name="theirs")
    def theirs(tick: dt.datetime) -> None:
        return None

    cases: list[tuple[type[Exception], str, Callable[[], object]]] = [
        (
            durable.InvalidOptionError,
            "not a valid cron",
            lambda: app.schedule(report, "99 * * * *"),
        ),
        (
            durable.InvalidOptionError,
            "unknown time zone",
            lambda: app.schedule(report, "* * * * *", timezone="Nowhere/City"),
        ),
        (
            durable.InvalidOptionError,
            "catch_up must be one of",
            lambda: app.schedule(report, "* * * * *", catch_up="some"),
        ),
        (durable.InvalidOptionError, "never fires", lambda: app.schedule(report, "0 0 31 2 *")),
        (
            durable.InvalidOptionError,
            "longer than 200",
            lambda: app.schedule(report, "* * * * *", name="n" * 201),
        ),
        (
            durable.InvalidOptionError,
            "args must be a tuple",
            lambda: app.schedule(report, "* * * * *", args="eu"),
        ),
        (
            durable.InvalidArgumentError,
            "cannot be called with the tick",
            lambda: app.schedule(plain, "* * * * *"),
        ),
        (
            durable.InvalidArgumentError,
            "cannot be called with the tick",
            lambda: app.schedule(report, "* * * * *", args=(1, 2)),
        ),
        (
            durable.InvalidArgumentError,
            "does not fit its annotation",
            lambda: app.schedule(report, "* * * * *", args=(5,)),
        ),
        (
            durable.SerializationError,
            "cannot encode",
            lambda: app.schedule(report, "* * * * *", args=(object(),)),
        ),
        (ValueError, "a workflow of App", lambda: app.schedule(theirs, "* * * * *")),
        (ValueError, "a workflow of App", lambda: app.schedule("missing", "* * * * *")),
        (
            durable.InvalidOptionError,
            "not a valid cron",
            lambda: client.create_schedule(report, "bad"),
        ),
        (
            durable.InvalidArgumentError,
            "does not fit",
            lambda: client.create_schedule(report, "* * * * *", args=(5,)),
        ),
    ]
    for error, says, call in cases:
        with pytest.raises(error, match=says):
            call()
    app.schedule(report, "* * * * *")
    with pytest.raises(ValueError, match="declared twice"):
        app.schedule(report, "0 * * * *")
    assert client.schedules() == [] and client.list_runs() == []


def test_the_async_client_has_the_schedule_methods(app: durable.App) -> None:
    _define(app)

    async def main() -> list[str]:
        c = app.async_client()
        await c.create_schedule("report", "0 3 * * *", name="n")
        await c.pause_schedule("n")
        await c.resume_schedule("n")
        runs = await c.backfill("n", dt.datetime(2024, 1, 1), dt.datetime(2024, 1, 2, 12))
        now = await c.trigger_schedule("n")
        names = [s.name for s in await c.schedules()]
        await c.delete_schedule("n")
        return [*names, *(r.id for r in runs), now.id.split(":")[0], str(await c.schedules())]

    got = asyncio.run(main())
    assert got == [
        "n",
        "n:2024-01-01T03:00:00+00:00",
        "n:2024-01-02T03:00:00+00:00",
        "n",
        "[]",
    ]
