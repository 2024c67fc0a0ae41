"""Durable timers and signals: ``durable.sleep`` and ``durable.wait_signal``."""

from __future__ import annotations

import threading
import time

import pytest

import durable
from durable import Status

HOUR = 3600.0
DAY = 24 * HOUR


def _waiting(h) -> bool:
    return any(e.type == "wait_started" for e in h.events())


# ---------------------------------------------------------------- sleep


def test_sleep_makes_the_run_sleeping_then_completes(virtual_app, durable_env, wait_status):
    # On the virtual clock (durable.testing): a day's sleep, measured on that clock.
    marks = []

    @virtual_app.workflow()
    def flow() -> str:
        marks.append(t.clock.now())
        durable.sleep(DAY)
        marks.append(t.clock.now())
        return "rested"

    t = durable_env(virtual_app)
    start = t.clock.now()
    h = t.client.start(flow)
    wait_status(h, Status.SLEEPING)
    info = h.info()
    assert info.wake_at is not None
    assert h.result(timeout=10) == "rested"
    assert t.clock.now() - start >= DAY
    assert marks[-1] - marks[0] >= DAY - 0.001
    types = [e.type for e in h.events()]
    assert types.count("sleep_started") == 1
    assert types.count("sleep_fired") == 1
    assert types.index("sleep_started") < types.index("sleep_fired")
    positions = {e.position for e in h.events() if e.type.startswith("sleep_")}
    assert positions == {1}


def test_sleeping_run_holds_no_worker(virtual_app, durable_env, wait_status):
    # The hour-long sleep ends once the test waits for it, and the quick run, started
    # meanwhile, takes the worker's only slot first.
    app = virtual_app

    @app.workflow()
    def sleeper() -> str:
        durable.sleep(3600)
        return "slept"

    @app.workflow()
    def quick(x: int) -> int:
        return x + 1

    t = durable_env(app, concurrency=1)
    s = t.client.start(sleeper)
    wait_status(s, Status.SLEEPING)
    q = t.client.start(quick, 1)
    assert q.result(timeout=10) == 2
    assert s.status() == Status.SLEEPING
    assert t.clock.skipped == 0.0  # nothing skipped while a run was runnable
    assert s.result(timeout=10) == "slept"
    assert t.clock.skipped >= 3600 - 5


def test_sleep_survives_a_worker_restart_and_steps_do_not_rerun(app, client, wait_status):
    calls = []

    @app.step()
    def before() -> int:
        calls.append("before")
        return 1

    @app.step()
    def after(x: int) -> int:
        calls.append("after")
        return x + 1

    @app.workflow()
    def flow() -> int:
        x = before()
        durable.sleep(1.0)
        return after(x)

    with app.worker():
        h = client.start(flow)
        wait_status(h, Status.SLEEPING)
    assert h.status() == Status.SLEEPING
    assert calls == ["before"]
    time.sleep(1.2)  # the timer fires while no worker runs
    assert h.status() in (Status.SLEEPING, Status.PENDING)
    with app.worker():
        assert h.result(timeout=10) == 2
    assert calls == ["before", "after"]


def test_zero_sleep_is_journaled_and_continues(app, client):
    @app.workflow()
    def flow() -> str:
        durable.sleep(0)
        return "ok"

    with app.worker():
        h = client.start(flow)
        assert h.result(timeout=10) == "ok"
    assert [e.type for e in h.events()].count("sleep_started") <= 1


def test_sleep_in_async_workflow(virtual_app, durable_env, wait_status):
    @virtual_app.step()
    async def tick() -> int:
        return 1

    @virtual_app.workflow()
    async def flow() -> int:
        a = await tick()
        durable.sleep(HOUR)
        return a + await tick()

    t = durable_env(virtual_app)
    h = t.client.start(flow)
    wait_status(h, Status.SLEEPING)
    assert h.result(timeout=10) == 2
    assert t.clock.skipped >= HOUR - 5


# ---------------------------------------------------------------- signals


def test_wait_signal_is_sleeping_and_returns_the_payload(virtual_app, durable_env, wait_status):
    @virtual_app.workflow()
    def flow() -> object:
        return durable.wait_signal("approve")

    t = durable_env(virtual_app)
    h = t.client.start(flow)
    wait_status(h, Status.SLEEPING)
    assert _waiting(h)
    t.clock.advance(30 * DAY)  # a wait without a timeout does not end by itself
    time.sleep(0.2)
    assert h.status() == Status.SLEEPING
    t.client.signal(h.id, "approve", {"ok": True, "by": "ada"})
    assert h.result(timeout=10) == {"ok": True, "by": "ada"}


def test_signal_sent_before_the_wait_is_kept(app, client):
    @app.workflow()
    def flow() -> object:
        return durable.wait_signal("go", timeout=30)

    h = client.start(flow)
    client.signal(h.id, "go", "early")  # the run has not even started
    assert h.status() == Status.PENDING
    with app.worker():
        assert h.result(timeout=10) == "early"


def test_signal_sent_while_the_run_is_busy_is_kept(app, client):
    entered = threading.Event()
    release = threading.Event()

    @app.step()
    def busy() -> None:
        entered.set()
        release.wait(10)

    @app.workflow()
    def flow() -> object:
        busy()
        return durable.wait_signal("go", timeout=30)

    with app.worker():
        h = client.start(flow)
        assert entered.wait(10)
        client.signal(h.id, "go", 42)
        release.set()
        assert h.result(timeout=10) == 42


def test_wait_signal_returns_oldest_unconsumed_first(virtual_app, durable_env):
    @virtual_app.workflow()
    def flow() -> list:
        got = [durable.wait_signal("item", timeout=DAY) for _ in range(3)]
        durable.sleep(HOUR)  # the code re-runs: consumed signals stay consumed
        got.append(durable.wait_signal("item", timeout=HOUR))
        return got

    t = durable_env(virtual_app)
    h = t.client.start(flow, delay=HOUR)  # the signals come before the run starts
    for payload in ["first", "second", "third"]:
        t.client.signal(h.id, "item", payload)
    assert h.result(timeout=10) == ["first", "second", "third", None]
    received = [e for e in h.events() if e.type == "signal_received"]
    consumed = [e.position for e in received if not e.data.get("timed_out")]
    timed_out = [e.position for e in received if e.data.get("timed_out")]
    assert consumed == [1, 2, 3]
    assert timed_out == [5]  # position 4 is the sleep


def test_signals_of_other_names_are_not_consumed(app, client):
    @app.workflow()
    def flow() -> list:
        a = durable.wait_signal("a", timeout=30)
        b = durable.wait_signal("b", timeout=30)
        return [a, b]

    h = client.start(flow)
    client.signal(h.id, "b", "bee")
    client.signal(h.id, "a", "ay")
    with app.worker():
        assert h.result(timeout=10) == ["ay", "bee"]


def test_each_signal_is_consumed_once(virtual_app, durable_env, wait_until):
    @virtual_app.workflow()
    def flow() -> list:
        first = durable.wait_signal("go", timeout=DAY)
        second = durable.wait_signal("go", timeout=HOUR)
        return [first, second]

    t = durable_env(virtual_app)
    h = t.client.start(flow)
    wait_until(lambda: _waiting(h), what="wait_started")
    t.client.signal(h.id, "go", "only")
    assert h.result(timeout=10) == ["only", None]


def test_wait_signal_timeout_returns_none(virtual_app, durable_env):
    @virtual_app.workflow()
    def flow() -> str:
        value = durable.wait_signal("never", timeout=7 * DAY)
        return "timed out" if value is None else f"got {value}"

    t = durable_env(virtual_app)
    start = t.clock.now()
    h = t.client.start(flow)
    assert h.result(timeout=10) == "timed out"
    assert t.clock.now() - start >= 7 * DAY


def test_waiting_run_holds_no_worker(virtual_app, durable_env, wait_until):
    @virtual_app.workflow()
    def waiter() -> object:
        return durable.wait_signal("go", timeout=DAY)

    @virtual_app.workflow()
    def quick() -> str:
        return "quick"

    t = durable_env(virtual_app, concurrency=1)
    w = t.client.start(waiter)
    wait_until(lambda: _waiting(w), what="wait_started")
    assert t.client.start(quick).result(timeout=2.5) == "quick"
    t.client.signal(w.id, "go", "done")
    assert w.result(timeout=10) == "done"


def test_signal_wakes_the_run_at_once(make_app, wait_until):
    app = make_app(poll_interval=10.0)

    @app.workflow()
    def flow() -> object:
        return durable.wait_signal("go")

    client = app.client()
    with app.worker():
        h = client.start(flow)
        wait_until(lambda: _waiting(h), what="wait_started")
        start = time.monotonic()
        client.signal(h.id, "go", "now")
        assert h.result(timeout=5) == "now"
        assert time.monotonic() - start < 4.0


def test_signal_from_code_free_client(app, db_url, wait_until):
    @app.workflow(name="approval")
    def flow() -> object:
        return durable.wait_signal("approve", timeout=30)

    with app.worker():
        h = app.client().start(flow)
        wait_until(lambda: _waiting(h), what="wait_started")
        durable.Client(db_url).signal(h.id, "approve", payload=True)
        assert h.result(timeout=10) is True


@pytest.mark.parametrize("payload", [None, 0, "", [1, {"a": "x"}], {"nested": {"k": [1.5]}}])
def test_signal_payloads_round_trip(app, client, payload):
    @app.workflow()
    def flow() -> list:
        return [durable.wait_signal("p", timeout=30), "end"]

    h = client.start(flow)
    client.signal(h.id, "p", payload)
    with app.worker():
        assert h.result(timeout=10) == [payload, "end"]


def test_consumed_signal_is_replayed_from_the_journal(app, client):
    @app.workflow()
    def flow() -> str:
        value = durable.wait_signal("go", timeout=30)
        durable.sleep(0.1)  # the code re-runs: the signal comes back from the journal
        return f"got {value}"

    h = client.start(flow)
    client.signal(h.id, "go", "payload")
    with app.worker():
        assert h.result(timeout=10) == "got payload"
    assert client.replay(h.id) == "got payload"
