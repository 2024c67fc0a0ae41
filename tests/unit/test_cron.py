"""A schedule's ticks (``durable.cron``): the wall clock of its zone, its daylight-saving
changes (a tick that does not exist, a tick that happens twice), seconds, and the
expressions and zones it refuses."""

from __future__ import annotations

import datetime as dt
import itertools
from zoneinfo import ZoneInfo

import pytest

from durable import InvalidOptionError
from durable.cron import Cron

BERLIN = ZoneInfo("Europe/Berlin")


def ts(*fields: int, tz: dt.tzinfo = dt.UTC) -> float:
    return dt.datetime(*fields, tzinfo=tz).timestamp()


def isos(cron: Cron, after: float, n: int) -> list[str]:
    return [cron.iso(t) for t in itertools.islice(cron.iter_after(after), n)]


def test_a_daily_tick_in_utc() -> None:
    c = Cron("0 3 * * *")
    assert isos(c, ts(2024, 1, 1), 2) == ["2024-01-01T03:00:00+00:00", "2024-01-02T03:00:00+00:00"]
    assert c.next_after(ts(2024, 1, 1, 3)) == ts(2024, 1, 2, 3)  # strictly after
    assert c.latest_at_or_before(ts(2024, 1, 1, 3)) == ts(2024, 1, 1, 3)  # at counts
    assert c.latest_at_or_before(ts(2024, 1, 1, 2, 59)) == ts(2023, 12, 31, 3)


def test_a_tick_that_does_not_exist_fires_when_the_clocks_jump() -> None:
    """Berlin, 2024-03-31: 02:00 CET becomes 03:00 CEST; 02:30 never happens."""
    c = Cron("30 2 * * *", "Europe/Berlin")
    assert isos(c, ts(2024, 3, 29), 4) == [
        "2024-03-29T02:30:00+01:00",
        "2024-03-30T02:30:00+01:00",
        "2024-03-31T03:00:00+02:00",  # the instant of the jump, 01:00 UTC
        "2024-04-01T02:30:00+02:00",
    ]
    assert c.next_after(ts(2024, 3, 30, 12)) == ts(2024, 3, 31, 1)


def test_every_tick_inside_the_gap_fires_as_one() -> None:
    c = Cron("*/15 * * * *", "Europe/Berlin")
    assert isos(c, ts(2024, 3, 31, 0, 30), 4) == [
        "2024-03-31T01:45:00+01:00",
        "2024-03-31T03:00:00+02:00",  # 02:00, 02:15, 02:30, 02:45 and 03:00: one tick
        "2024-03-31T03:15:00+02:00",
        "2024-03-31T03:30:00+02:00",
    ]


def test_a_tick_that_happens_twice_fires_once_at_its_first_occurrence() -> None:
    """Berlin, 2024-10-27: 03:00 CEST becomes 02:00 CET; 02:30 happens twice."""
    c = Cron("30 2 * * *", "Europe/Berlin")
    assert isos(c, ts(2024, 10, 25), 4) == [
        "2024-10-25T02:30:00+02:00",
        "2024-10-26T02:30:00+02:00",
        "2024-10-27T02:30:00+02:00",  # 00:30 UTC; not again at 02:30+01:00
        "2024-10-28T02:30:00+01:00",
    ]


def test_the_repeated_hour_has_no_tick_of_its_own() -> None:
    c = Cron("*/15 * * * *", "Europe/Berlin")
    assert isos(c, ts(2024, 10, 27, 0, 30), 3) == [
        "2024-10-27T02:45:00+02:00",
        "2024-10-27T03:00:00+01:00",  # an hour and a quarter later in real time
        "2024-10-27T03:15:00+01:00",
    ]
    # From inside the repeated hour, the last tick is the one of its first pass.
    assert c.iso(c.latest_at_or_before(ts(2024, 10, 27, 1, 20))) == "2024-10-27T02:45:00+02:00"
    assert c.next_after(ts(2024, 10, 27, 1, 20)) == ts(2024, 10, 27, 2)


def test_utc_keeps_a_fixed_interval_through_the_changes() -> None:
    c = Cron("*/15 * * * *", "UTC")
    ticks = list(itertools.islice(c.iter_after(ts(2024, 10, 27, 0, 30)), 8))
    assert {b - a for a, b in itertools.pairwise(ticks)} == {900.0}


def test_a_sixth_field_is_seconds() -> None:
    c = Cron("* * * * * */20")
    assert isos(c, ts(2024, 1, 1), 3) == [
        "2024-01-01T00:00:20+00:00",
        "2024-01-01T00:00:40+00:00",
        "2024-01-01T00:01:00+00:00",
    ]


def test_between_counts_both_ends_and_stops_at_the_limit() -> None:
    c = Cron("0 * * * *")
    assert c.between(ts(2024, 1, 1, 1), ts(2024, 1, 1, 3), 10) == [
        ts(2024, 1, 1, 1),
        ts(2024, 1, 1, 2),
        ts(2024, 1, 1, 3),
    ]
    assert c.between(ts(2024, 1, 1), ts(2024, 1, 2), 24) is None  # 25 ticks
    assert c.between(ts(2024, 1, 1, 0, 1), ts(2024, 1, 1, 0, 2), 10) == []


def test_aliases_are_read_by_croniter() -> None:
    assert isos(Cron("@daily", "Europe/Berlin"), ts(2024, 1, 1), 1) == [
        "2024-01-02T00:00:00+01:00"  # 2024-01-01T00:00 UTC is 01:00 in Berlin
    ]


@pytest.mark.parametrize(
    ("expr", "says"),
    [
        ("61 * * * *", "not a valid cron expression"),
        ("* * *", "not a valid cron expression"),
        ("0 0 30 2 *", "never fires"),
        ("H * * * *", "hashed (H) and random (R)"),
        ("R/5 * * * *", "hashed (H) and random (R)"),
        ("", "must be a cron expression"),
        (5, "must be a cron expression"),
    ],
)
def test_bad_expressions_are_refused_with_their_reason(expr: object, says: str) -> None:
    with pytest.raises(InvalidOptionError, match=says.replace("(", r"\(").replace(")", r"\)")):
        Cron(expr)


@pytest.mark.parametrize("zone", ["Mars/Olympus_Mons", "", None, "../../etc/passwd", 3])
def test_unknown_time_zones_are_refused(zone: object) -> None:
    with pytest.raises(InvalidOptionError, match="time zone"):
        Cron("* * * * *", zone)


def test_months_named_with_an_r_are_not_taken_for_random_fields() -> None:
    assert Cron("0 0 1 MAR,APR *").next_after(ts(2024, 1, 1)) == ts(2024, 3, 1)
