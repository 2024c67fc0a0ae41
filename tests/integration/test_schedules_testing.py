"""Schedules under ``durable.testing``: ticks follow the virtual clock, ``clock.advance()``
starts the ticks it passes before it returns, a long advance is an outage for
``catch_up``, and the ticks of Berlin's next daylight-saving changes, end to end."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import durable
from durable.testing import TestEnv, env

BERLIN = ZoneInfo("Europe/Berlin")


def make_app() -> durable.App:
    app = durable.App("sched-testing")

    @app.workflow(name="report")
    def report(tick: dt.datetime) -> str:
        assert tick.tzinfo is not None
        return tick.astimezone(BERLIN).isoformat()

    app.schedule(report, "0 3 * * *", name="nightly")
    return app


def _advance_to(t: TestEnv, when: dt.datetime) -> None:
    t.clock.advance(max(when.timestamp() - t.clock.now(), 0.0))


def _ids(t: TestEnv, prefix: str) -> list[str]:
    return sorted(r.id for r in t.client.list_runs(limit=1000) if r.id.startswith(prefix))


def test_advance_starts_the_tick_it_passes_before_it_returns() -> None:
    with env(make_app()) as t:
        (info,) = t.client.schedules()
        assert info.next_tick is not None and t.client.list_runs() == []
        _advance_to(t, info.next_tick + dt.timedelta(seconds=1))
        h = t.client.get(f"nightly:{info.next_tick.isoformat()}")  # there already
        assert h.result(timeout=10) == info.next_tick.astimezone(BERLIN).isoformat()
        after = t.client.schedules()[0]
        assert after.last_run_id == h.id
        assert after.next_tick == info.next_tick + dt.timedelta(days=1)


def test_a_long_advance_is_an_outage_that_catch_up_decides() -> None:
    app = make_app()
    with env(app) as t:
        t.client.create_schedule("report", "0 12 * * *", name="noon", catch_up="all")
        start = t.client.schedules()[1].next_tick
        assert start is not None
        _advance_to(t, start + dt.timedelta(days=2, hours=1))
        assert len(_ids(t, "noon:")) == 3  # every tick the jump passed
        assert len(_ids(t, "nightly:")) == 1  # catch_up="latest": the last one only


def test_the_next_daylight_saving_changes_in_berlin() -> None:
    with env(make_app()) as t:
        now = dt.datetime.fromtimestamp(t.clock.now(), BERLIN)
        spring, autumn = _changes_after(now)
        _advance_to(t, dt.datetime.combine(spring - dt.timedelta(days=1), dt.time(12), BERLIN))
        t.client.create_schedule(
            "report", "30 2 * * *", name="half-past-two", timezone="Europe/Berlin", catch_up="all"
        )
        _advance_to(t, dt.datetime.combine(spring + dt.timedelta(days=1), dt.time(12), BERLIN))
        day = spring.isoformat()
        assert _ids(t, "half-past-two:") == [
            f"half-past-two:{day}T03:00:00+02:00",  # 02:30 does not exist: at the jump
            f"half-past-two:{(spring + dt.timedelta(days=1)).isoformat()}T02:30:00+02:00",
        ]
        jumped = t.client.get(f"half-past-two:{day}T03:00:00+02:00")
        assert jumped.result(timeout=10) == f"{day}T03:00:00+02:00"

        t.client.pause_schedule("half-past-two")
        _advance_to(t, dt.datetime.combine(autumn - dt.timedelta(days=1), dt.time(12), BERLIN))
        t.client.resume_schedule("half-past-two")
        _advance_to(t, dt.datetime.combine(autumn + dt.timedelta(days=1), dt.time(12), BERLIN))
        on_the_day = _ids(t, f"half-past-two:{autumn.isoformat()}")
        assert on_the_day == [f"half-past-two:{autumn.isoformat()}T02:30:00+02:00"]  # once


def _changes_after(now: dt.datetime) -> tuple[dt.date, dt.date]:
    """The next day on which Berlin's clocks go forward, and the next one after it on which
    they go back."""
    found: list[dt.date] = []
    day = now.date() + dt.timedelta(days=2)
    while len(found) < 2:
        noon = dt.datetime.combine(day, dt.time(12), BERLIN)
        before = dt.datetime.combine(day - dt.timedelta(days=1), dt.time(12), BERLIN)
        forward = (noon.utcoffset() or dt.timedelta()) > (before.utcoffset() or dt.timedelta())
        if (forward and not found) or (
            found and not forward and noon.utcoffset() != before.utcoffset()
        ):
            found.append(day)
        day += dt.timedelta(days=1)
    return found[0], found[1]
