"""What a worker starts of a schedule's due ticks (``durable.engine.ticks.plan_due``): the
three ``catch_up`` policies after an outage, the run of a tick (its id and input), and a
row that cannot be read."""

from __future__ import annotations

import datetime as dt
import logging

import msgspec
import pytest

from durable.codec import Codec
from durable.cron import Cron
from durable.engine.ticks import (
    ALL_PER_PASS,
    MISSED_AFTER,
    RETRY_BROKEN_AFTER,
    TickRuns,
    plan_due,
    tick_run_id,
)
from durable.log.schedule_store import ScheduleRow
from durable.telemetry import Telemetry

DAY = 86400.0
T0 = dt.datetime(2024, 3, 1, 3, tzinfo=dt.UTC).timestamp()
RUNS = TickRuns(Codec(), Telemetry(), version="v1", timeout_of=lambda wf: 60.0)


def row(catch_up: str = "latest", *, cron: str = "0 3 * * *", next_tick: float = T0) -> ScheduleRow:
    return ScheduleRow(
        name="nightly",
        app="shop",
        workflow="report",
        queue="reports",
        cron=cron,
        timezone="UTC",
        args=Codec().encode_args(("eu", 2), {}, "args"),
        catch_up=catch_up,
        paused=False,
        next_tick=next_tick,
        last_tick=None,
        last_run_id=None,
        created_at=T0 - DAY,
        updated_at=T0 - DAY,
    )


def ids(firing: object) -> list[str]:
    return [r.id for r in firing.runs]  # type: ignore[attr-defined]


@pytest.mark.parametrize("catch_up", ["latest", "all", "none"])
def test_a_tick_found_on_time_starts_its_run_whatever_catch_up(catch_up: str) -> None:
    f = plan_due(row(catch_up), T0 + 0.2, RUNS)
    assert ids(f) == ["nightly:2024-03-01T03:00:00+00:00"]
    assert f.next_tick == T0 + DAY
    assert f.last == (T0, "nightly:2024-03-01T03:00:00+00:00")


def test_after_an_outage_latest_starts_the_last_missed_tick() -> None:
    f = plan_due(row("latest"), T0 + 3 * DAY + 3600, RUNS)
    assert ids(f) == ["nightly:2024-03-04T03:00:00+00:00"]
    assert f.next_tick == T0 + 4 * DAY


def test_after_an_outage_all_starts_every_missed_tick_oldest_first() -> None:
    f = plan_due(row("all"), T0 + 3 * DAY + 3600, RUNS)
    assert ids(f) == [f"nightly:2024-03-0{d}T03:00:00+00:00" for d in (1, 2, 3, 4)]
    assert f.next_tick == T0 + 4 * DAY


def test_after_an_outage_none_starts_nothing_and_waits_for_the_next_tick() -> None:
    f = plan_due(row("none"), T0 + 3 * DAY + 3600, RUNS)
    assert ids(f) == [] and f.last is None
    assert f.next_tick == T0 + 4 * DAY


def test_none_still_starts_a_tick_that_is_less_than_a_minute_late() -> None:
    assert len(plan_due(row("none"), T0 + MISSED_AFTER - 1, RUNS).runs) == 1
    assert len(plan_due(row("none"), T0 + MISSED_AFTER + 1, RUNS).runs) == 0


def test_all_starts_a_bounded_number_per_pass_and_goes_on_from_there() -> None:
    r = row("all", cron="* * * * * *")
    f = plan_due(r, T0 + 5000, RUNS)
    assert len(f.runs) == ALL_PER_PASS
    assert f.next_tick == T0 + ALL_PER_PASS  # due still: the next pass goes on at once


def test_a_tick_run_gets_the_tick_then_the_args_and_the_workflow_options() -> None:
    run = plan_due(row(), T0, RUNS).runs[0]
    assert (run.workflow, run.queue, run.version, run.timeout) == ("report", "reports", "v1", 60.0)
    args, kwargs = msgspec.msgpack.decode(run.input)
    assert args[1:] == ["eu", 2] and kwargs == {}
    assert msgspec.msgpack.decode(msgspec.msgpack.encode(args[0]), type=dt.datetime) == (
        dt.datetime(2024, 3, 1, 3, tzinfo=dt.UTC)
    )


def test_the_run_id_is_the_name_and_the_tick_in_the_schedules_zone() -> None:
    berlin = Cron("30 2 * * *", "Europe/Berlin")
    tick = dt.datetime(2024, 3, 31, 1, tzinfo=dt.UTC).timestamp()
    assert tick_run_id("nightly", berlin, tick) == "nightly:2024-03-31T03:00:00+02:00"


def test_a_row_that_cannot_be_read_is_left_for_a_while(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR, logger="durable.engine.schedules"):
        f = plan_due(row(cron="not a cron"), T0, RUNS)
    assert f.runs == () and f.next_tick == T0 + RETRY_BROKEN_AFTER
    assert "cannot start its ticks" in caplog.text
