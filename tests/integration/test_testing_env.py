"""``durable.testing.env``: an App's workflows on a temporary log with a virtual clock.

The env is SQLite by construction (its own temporary file), so these tests take no
``db_url``: they run once, not per backend.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import pytest

import durable
from durable import App, Retry, Status
from durable.testing import TestEnv, VirtualClock, env

DAY = 86400.0
WEEK = 7 * DAY
HOUR = 3600.0


def _app(tmp_path: Path, name: str = "testing") -> App:
    return App(name, database=f"sqlite:///{tmp_path / 'own.db'}")


def _approval(tmp_path: Path) -> tuple[App, Any]:
    """An App whose workflow waits a week for the signal ``approve``."""
    app = _app(tmp_path)

    @app.workflow()
    def approval() -> str:
        got = durable.wait_signal("approve", timeout=WEEK)
        return "timed out" if got is None else f"got {got}"

    return app, approval


def _napper(tmp_path: Path, seconds: float) -> tuple[App, Any]:
    """An App whose workflow sleeps ``seconds``, then returns ``"up"``."""
    app = _app(tmp_path)

    @app.workflow()
    def nap() -> str:
        durable.sleep(seconds)
        return "up"

    return app, nap


def _shape(events: list[durable.LogEvent]) -> list[tuple[str, int | None]]:
    return [(str(e.type), e.position) for e in events]


def _wait(what, timeout: float = 10.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not what():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.005)


def test_a_thirty_day_sleep_returns_in_milliseconds(tmp_path: Path) -> None:
    app = _app(tmp_path)

    @app.workflow()
    def month() -> str:
        before = durable.now()
        durable.sleep(30 * DAY)
        return str(round((durable.now() - before).total_seconds() / DAY))

    with env(app) as t:
        started = time.monotonic()
        h = t.client.start(month)
        assert h.result(timeout=10) == "30"
        assert time.monotonic() - started < 5.0
        assert t.clock.skipped >= 30 * DAY - 5  # less the real time that passed meanwhile
        assert t.clock.now() - time.time() >= 30 * DAY - 1
        assert h.status() == Status.COMPLETED


def test_a_signal_wait_with_a_week_timeout_returns_none(tmp_path: Path) -> None:
    app, approval = _approval(tmp_path)

    with env(app) as t:
        h = t.client.start(approval)
        assert h.result(timeout=10) == "timed out"
        assert WEEK - 5 <= t.clock.skipped < WEEK + 60


def test_three_retries_with_an_hour_of_backoff(tmp_path: Path) -> None:
    app = _app(tmp_path)
    tries: list[int | None] = []

    @app.step(retry=Retry(attempts=4, initial_delay=HOUR, max_delay=HOUR, jitter=False))
    def flaky() -> int:
        tries.append(durable.info().step_attempt)
        if len(tries) < 4:
            raise ConnectionError("not yet")
        return len(tries)

    @app.workflow()
    def work() -> int:
        return flaky()

    with env(app) as t:
        h = t.client.start(work)
        assert h.result(timeout=10) == 4
        assert 3 * HOUR - 5 <= t.clock.skipped < 3 * HOUR + 60
        types = [str(e.type) for e in h.events()]
        assert types.count("retry_scheduled") == 3


def test_a_signal_from_the_test_wakes_a_waiting_run(tmp_path: Path) -> None:
    app, approval = _approval(tmp_path)

    with env(app) as t:
        h = t.client.start(approval)
        # The clock skips only while the test waits for a result: polling lets real time
        # pass, so the week does not go by while the test gets the signal ready.
        _wait(lambda: any(e.type == "wait_started" for e in h.events()))
        t.client.signal(h.id, "approve", "yes")
        assert h.result(timeout=10) == "got yes"
        assert t.clock.skipped == 0.0


def test_a_signal_sent_right_after_the_start_is_not_raced_by_the_clock(tmp_path: Path) -> None:
    app, approval = _approval(tmp_path)

    with env(app) as t:
        for i in range(20):
            h = t.client.start(approval, id=f"a-{i}")
            t.client.signal(h.id, "approve", i)
            assert h.result(timeout=10) == f"got {i}"
        assert t.clock.skipped == 0.0


def test_the_clock_does_not_skip_once_the_awaited_run_has_ended(tmp_path: Path) -> None:
    # Between a run's end and the return of the result() that waited for it, the worker
    # holds no run while that result() still counts as waiting: it must not skip then.
    app, approval = _approval(tmp_path)

    @app.workflow()
    def quick(i: int) -> int:
        return i

    with env(app) as t:
        waiting = t.client.start(approval)
        _wait(lambda: waiting.status() is Status.SLEEPING)
        for i in range(40):
            assert t.client.start(quick, i).result(timeout=10) == i
            assert t.clock.skipped == 0.0, f"the clock skipped after run {i} ended"
        t.client.signal(waiting.id, "approve", "late")
        assert waiting.result(timeout=10) == "got late"


def test_cancel_from_the_test(tmp_path: Path) -> None:
    app = _app(tmp_path)

    @app.workflow()
    def long() -> str:
        durable.sleep(365 * DAY)
        return "done"

    with env(app) as t:
        h = t.client.start(long)
        _wait(lambda: h.status() == Status.SLEEPING)
        h.cancel()
        with pytest.raises(durable.RunCancelledError):
            h.result(timeout=10)
        assert h.status() == Status.CANCELLED


def test_clock_advance_and_now(tmp_path: Path) -> None:
    app, nap = _napper(tmp_path, HOUR)

    with env(app) as t:
        assert abs(t.clock.now() - time.time()) < 1.0
        h = t.client.start(nap)
        _wait(lambda: h.status() == Status.SLEEPING)
        before = t.clock.now()
        after = t.clock.advance(2 * HOUR)
        assert after - before >= 2 * HOUR
        assert t.clock.now() >= after
        _wait(lambda: h.status() == Status.COMPLETED)  # due by then: no result() needed
        assert h.result(timeout=1) == "up"
        assert t.clock.advance(0) >= after


def test_advance_while_a_run_holds_its_lease_does_not_expire_it(tmp_path: Path) -> None:
    app = _app(tmp_path)
    release: list[bool] = []

    @app.step()
    def busy() -> str:
        _wait(lambda: bool(release))
        return "worked"

    @app.workflow()
    def job() -> str:
        return busy()

    with env(app) as t:
        h = t.client.start(job)
        _wait(lambda: h.status() == Status.RUNNING)
        t.clock.advance(30 * DAY)  # far beyond the lease timeout
        time.sleep(0.1)  # the worker looks for due runs meanwhile
        release.append(True)
        assert h.result(timeout=10) == "worked"
        types = [str(e.type) for e in h.events()]
        assert types.count("lease_taken") == 1  # no takeover


def test_a_delayed_start_and_a_child_workflow(tmp_path: Path) -> None:
    app = _app(tmp_path)

    @app.workflow()
    def child(x: int) -> int:
        durable.sleep(DAY)
        return x * 2

    @app.workflow()
    def parent(x: int) -> int:
        return child(x) + 1

    with env(app) as t:
        h = t.client.start(parent, 20, delay=WEEK)
        assert h.result(timeout=10) == 41
        assert t.clock.skipped >= WEEK + DAY - 5
        kids = [r for r in t.client.list_runs(workflow=child)]
        assert [k.status for k in kids] == [Status.COMPLETED]


def test_a_workflow_timeout_is_measured_on_the_virtual_clock(tmp_path: Path) -> None:
    app = _app(tmp_path)

    @app.workflow(timeout=DAY)
    def slow() -> str:
        durable.sleep(WEEK)
        return "late"

    with env(app) as t:
        h = t.client.start(slow)
        with pytest.raises(durable.RunFailedError):
            h.result(timeout=10)
        assert DAY - 5 <= t.clock.skipped < WEEK


def test_the_journal_has_the_shape_of_a_real_run(tmp_path: Path) -> None:
    app = _app(tmp_path)
    tries: list[int] = []

    @app.step(retry=Retry(attempts=2, initial_delay=0.05, jitter=False))
    def once_flaky(scale: float) -> str:
        tries.append(1)
        if len(tries) % 2:
            raise ConnectionError("first try")
        return "ok"

    @app.workflow()
    def flow(scale: float) -> str:
        durable.sleep(0.05 * scale)
        got = durable.wait_signal("never", timeout=0.05 * scale)
        return f"{got} {once_flaky(scale)}"

    with app.worker():
        real = app.client().start(flow, 1.0)
        assert real.result(timeout=10) == "None ok"
        real_events = real.events()
    with env(app) as t:
        virtual = t.client.start(flow, 30 * DAY / 0.05)
        assert virtual.result(timeout=10) == "None ok"
        virtual_events = virtual.events()
    assert _shape(virtual_events) == _shape(real_events)
    app.close()


def test_the_app_is_untouched_and_usable_afterwards(tmp_path: Path) -> None:
    app = _app(tmp_path)

    @app.workflow()
    def hello(name: str) -> str:
        return f"hello {name}"

    own = app.client()
    own.start(hello, "before", id="before")
    with env(app) as t:
        assert t.database != app.database
        folder = Path(t.database.removeprefix("sqlite:///")).parent
        assert t.client.start(hello, "env").result(timeout=10) == "hello env"
        assert [r.id for r in t.client.list_runs()] != ["before"]
    assert not folder.exists()
    assert app.database == f"sqlite:///{tmp_path / 'own.db'}"
    with app.worker():
        assert own.result("before", timeout=10) == "hello before"
        assert own.start(hello, "after").result(timeout=10) == "hello after"
    assert {r.id for r in own.list_runs()} >= {"before"}
    assert len(own.list_runs()) == 2
    app.close()


def test_an_app_on_postgres_runs_on_the_env_log(tmp_path: Path) -> None:
    app = App("pg-bound", database="postgresql://nobody@127.0.0.1:1/none")

    @app.workflow()
    def ping() -> str:
        return "pong"

    with env(app) as t:
        assert t.database.startswith("sqlite:///")
        assert t.client.start(ping).result(timeout=10) == "pong"


def test_bad_input() -> None:
    with pytest.raises(TypeError, match=r"durable\.App"):
        env("not an app")  # type: ignore[arg-type]
    empty = App("empty", database="sqlite:///unused.db")
    with pytest.raises(ValueError, match="no workflows"):
        env(empty)
    app = App("one", database="sqlite:///unused.db")

    @app.workflow()
    def one() -> int:
        return 1

    with pytest.raises(ValueError, match="concurrency"):
        env(app, concurrency=0)
    t = env(app)
    with pytest.raises(RuntimeError, match="not started"):
        t.client  # noqa: B018
    clock = VirtualClock()
    with pytest.raises(ValueError, match="negative"):
        clock.advance(-1)
    with pytest.raises(ValueError, match="finite"):
        clock.advance(float("inf"))
    with pytest.raises(TypeError, match="number"):
        clock.advance("1h")  # type: ignore[arg-type]
    assert not os.path.exists("unused.db")


def test_an_env_starts_once(tmp_path: Path) -> None:
    app = _app(tmp_path)

    @app.workflow()
    def one() -> int:
        return 1

    t: TestEnv = env(app)
    with t:
        assert t.client.start(one).result(timeout=10) == 1
        with pytest.raises(ValueError, match="negative"):
            t.clock.advance(-0.5)
    with pytest.raises(RuntimeError, match="started already"):
        t.start()


def test_an_async_workflow_and_the_async_client(tmp_path: Path) -> None:
    import asyncio

    app = _app(tmp_path)
    tries: list[int] = []

    @app.step(retry=Retry(attempts=3, initial_delay=HOUR, max_delay=HOUR, jitter=False))
    async def fetch() -> int:
        tries.append(1)
        if len(tries) < 3:
            raise ConnectionError("later")
        return len(tries)

    @app.workflow()
    async def pipeline() -> int:
        durable.sleep(DAY)
        return await fetch()

    async def main(t: TestEnv) -> int:
        c = t.app.async_client()
        h = await c.start(pipeline)
        return await h.result(timeout=10)  # type: ignore[no-any-return]

    with env(app) as t:
        assert asyncio.run(main(t)) == 3
        assert DAY + 2 * HOUR - 5 <= t.clock.skipped < DAY + 2 * HOUR + 60


def test_the_worker_stays_alive_and_a_watch_sees_every_event_across_jumps(tmp_path: Path) -> None:
    app, nap = _napper(tmp_path, WEEK)

    with env(app) as t:
        h = t.client.start(nap)
        assert h.result(timeout=10) == "up"
        assert [w.id for w in t.client.workers()] == ["durable-testing"]
        seen = [str(e.type) for e in t.client.watch(h.id, timeout=10)]
        assert seen == [str(e.type) for e in h.events()]
        assert seen[-1] == "run_completed"
