"""The dashboard's pure parts: query parsing, id and duration formatting, timeline layout."""

from __future__ import annotations

import datetime as dt

import pytest

from durable import LogEvent, Status
from durable.ui.format import call, duration, jsonable, short, why_blocked
from durable.ui.inputs import blocked_view, step_calls
from durable.ui.query import BadQuery, RunQuery
from durable.ui.timeline import build_timeline

T0 = dt.datetime(2026, 1, 1, 12, 0, 0, tzinfo=dt.UTC)


def test_query_parameters_become_typed_values() -> None:
    q = RunQuery.parse(
        {"status": "failed", "workflow": " etl ", "limit": "20", "range": "1h", "version": "v2"},
        T0,
    )
    assert q.status is Status.FAILED and q.workflow == "etl" and q.limit == 20
    assert q.version == "v2" and q.count_key() == ("etl", None, "v2", None, "1h", None)
    assert q.since == T0 - dt.timedelta(hours=1)
    assert q.params(before="x") == {
        "status": "failed",
        "workflow": "etl",
        "version": "v2",
        "range": "1h",
        "limit": "20",
        "before": "x",
    }
    q = RunQuery.parse({"since": "2026-01-01T10:00", "until": "2026-01-01T11:00+01:00"})
    assert q.since == dt.datetime(2026, 1, 1, 10, tzinfo=dt.UTC)
    assert q.until == dt.datetime(2026, 1, 1, 10, tzinfo=dt.UTC)
    for bad in (
        {"status": "done"},
        {"limit": "ten"},
        {"limit": "501"},
        {"range": "1y"},
        {"since": "yesterday"},
        {"workflow": "x" * 300},
        {"queue": "a\x00b"},
        {"version": "v" * 256},
    ):
        with pytest.raises(BadQuery):
            RunQuery.parse(bad)


def test_formatting() -> None:
    assert [duration(x) for x in (None, 0.25, 2.44, 42, 192, 3840, 183600, 60, 7200)] == [
        "-",
        "250 ms",
        "2.4 s",
        "42 s",
        "3 m 12 s",
        "1 h 4 m",
        "2 d 3 h",
        "1 m",
        "2 h",
    ]
    assert short("01a23648-e037-721f-862a-6283747353d8") == "01a23648…747353d8"
    assert short("01a23648-e004-7e56-bc5e-a6dd7aa7a870:4") == "01a23648…7a870:4"
    assert short("order-7") == "order-7"
    assert jsonable({"b": b"\x00", "t": T0, "n": float("nan"), "s": {1}}) == {
        "b": {"base64": "AA=="},
        "t": "2026-01-01T12:00:00+00:00",
        "n": None,
        "s": [1],
    }


def _ev(seq: int, at: float, type_: str, **kw: object) -> LogEvent:
    data = kw.pop("data", {})
    assert isinstance(data, dict)
    return LogEvent(
        seq=seq,
        type=type_,
        name=kw.get("name"),  # type: ignore[arg-type]
        position=kw.get("position"),  # type: ignore[arg-type]
        attempt=kw.get("attempt"),  # type: ignore[arg-type]
        at=T0 + dt.timedelta(seconds=at),
        data=data,
    )


def test_timeline_lanes_bars_and_open_calls() -> None:
    t = T0.timestamp()
    events = [
        _ev(1, 0, "run_started"),
        _ev(2, 1, "lease_taken", data={"owner": "w1"}),
        _ev(3, 1, "stage_entered", name="load"),
        _ev(4, 1, "step_started", name="fetch", position=1, attempt=1),
        _ev(
            5,
            2,
            "step_failed",
            name="fetch",
            position=1,
            attempt=1,
            data={"retryable": True, "started_at": t + 1, "error": {"type": "E", "message": "m"}},
        ),
        _ev(6, 2, "retry_scheduled", name="fetch", position=1, attempt=2, data={"wake_at": t + 4}),
        _ev(7, 4, "step_started", name="fetch", position=1, attempt=2),
        _ev(
            8, 5, "step_completed", name="fetch", position=1, attempt=2, data={"started_at": t + 4}
        ),
        _ev(9, 5, "stage_left", name="load"),
        _ev(10, 5, "wait_started", name="approve", position=2),
    ]
    tl = build_timeline(events, Status.SLEEPING, T0 + dt.timedelta(seconds=10))
    assert [(lane.label, lane.kind) for lane in tl.lanes] == [
        ("run", "run"),
        ("load", "stage"),
        ("fetch", "step"),
        ("approve", "wait"),
    ]
    got = [(b.lane, b.kind, b.outcome, b.start, b.end) for b in tl.bars]
    assert (2, "step", "retrying", 1.0, 2.0) in got
    assert (2, "backoff", "backoff", 2.0, 4.0) in got
    assert (2, "step", "completed", 4.0, 5.0) in got
    assert (1, "stage", "completed", 1.0, 5.0) in got
    assert (3, "wait", "waiting", 5.0, 10.0) in got  # open until now
    assert (0, "queued", "queued", 0.0, 1.0) in got
    assert (0, "run", "running", 1.0, 10.0) in got
    assert tl.total == 10.0
    assert all(tl.label_w <= b.x <= tl.width for b in tl.bars)
    assert [m.title for m in tl.markers] == ["w1 took the run"]
    assert tl.ticks[0] == (tl.label_w, "+0 ms")


def test_many_calls_share_one_lane_per_name() -> None:
    t = T0.timestamp()
    events = [_ev(1, 0, "run_started")]
    for pos in range(1, 51):
        name = "tick" if pos % 10 else "tock"
        events.append(
            _ev(
                pos + 1,
                pos,
                "step_completed",
                name=name,
                position=pos,
                attempt=1,
                data={"started_at": t + pos - 0.5},
            )
        )
    tl = build_timeline(events, Status.COMPLETED, T0)
    assert tl.compact
    assert [(lane.label, lane.detail) for lane in tl.lanes] == [
        ("run", "completed"),
        ("tick", "45×"),
        ("tock", "5×"),
    ]
    assert sum(1 for b in tl.bars if b.lane == 1) == 45


def test_a_blocked_run_is_drawn_parked_at_the_call_it_cannot_replay() -> None:
    blocked = {
        "error": {"type": "NonDeterminismError", "message": "m"},
        "position": 2,
        "called": "step 'fraud'",
        "recorded": "sleep",
        "version": "v2",
        "tried": ["v2"],
    }
    events = [
        _ev(1, 0, "run_started"),
        _ev(2, 1, "lease_taken", data={"owner": "w1"}),
        _ev(3, 1, "step_started", name="reserve", position=1, attempt=1, data={"args": [[1], {}]}),
        _ev(4, 2, "step_completed", name="reserve", position=1, attempt=1),
        _ev(5, 2, "sleep_started", position=2, data={"wake_at": T0.timestamp() + 5}),
        _ev(6, 2, "run_suspended"),
        _ev(7, 5, "lease_taken", data={"owner": "w2"}),
        _ev(8, 5, "run_blocked", data=blocked),
    ]
    tl = build_timeline(events, Status.BLOCKED, T0 + dt.timedelta(days=3))
    got = [(b.lane, b.kind, b.outcome, b.start, b.end) for b in tl.bars]
    assert (2, "sleep", "blocked", 2.0, 5.0) in got  # open calls stop where it was parked
    assert any(k == "mismatch" and lane == 2 and s == 5.0 for lane, k, _, s, _ in got)
    assert (0, "blocked", "blocked", 5.0, tl.total) in got
    assert 5.0 < tl.total < 6.0  # not drawn out to now, days later
    assert tl.has_blocked
    assert "the code calls step 'fraud', the journal records sleep" in tl.markers[-1].title

    view = blocked_view(events)
    assert view is not None and (view.position, view.called, view.recorded) == (
        2,
        "step 'fraud'",
        "sleep",
    )
    assert view.version == "v2" and view.tried == ("v2",) and view.seq == 8
    assert blocked_view(events[:-1]) is None


def test_step_calls_carry_their_arguments_and_outcome() -> None:
    events = [
        _ev(1, 0, "step_started", name="fetch", position=1, attempt=1, data={"args": [["a"], {}]}),
        _ev(2, 1, "step_failed", name="fetch", position=1, attempt=1, data={"retryable": True}),
        _ev(3, 2, "step_started", name="fetch", position=1, attempt=2, data={"args": [["a"], {}]}),
        _ev(4, 3, "step_completed", name="fetch", position=1, attempt=2),
        _ev(5, 3, "step_started", name="old", position=2, attempt=1),  # no args recorded
        _ev(
            6,
            4,
            "step_started",
            name="send",
            position=3,
            attempt=1,
            data={"args": [[], {"to": "<b>"}]},
        ),
    ]
    calls, cut = step_calls(events)
    assert cut == 0
    assert [(c.position, c.text, c.attempts, c.outcome) for c in calls] == [
        (1, 'fetch("a")', 2, "completed"),
        (2, "old(…)", 1, "running"),
        (3, 'send(to="<b>")', 1, "running"),
    ]
    assert calls[0].seqs == [1, 2, 3, 4]


def test_calls_and_reasons_read_as_text() -> None:
    assert call("f", [["x", 2, None], {"k": [1]}]) == 'f("x", 2, null, k=[1])'
    assert call("f", [[], {}]) == "f()"
    assert call("f", "odd") == 'f("odd")'
    long = call("f", [["y" * 500], {}])
    assert len(long) == 160 and long.endswith("…)")
    message = (
        "run 'r-1' at position 2: the code calls step 'fraud' but the journal records "
        "wait 'shipped'. Workflow code must make the same calls"
    )
    assert why_blocked(message) == "#2: calls step 'fraud', journal has wait 'shipped'"
    assert why_blocked("run 'r-1' at position 3: the recorded result no longer decodes") == (
        "#3: the recorded result no longer decodes"
    )
    assert why_blocked(None) == "blocked"
