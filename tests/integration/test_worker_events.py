"""Worker listeners (``app.on(WorkerEvent.X, fn)``), ``on_success``/``on_error`` callbacks, and
push wake-ups of the embedded worker."""

from __future__ import annotations

import textwrap
import threading
import time
from collections import Counter

import pytest

import durable
from durable import Retry, RunFailedError, Status, WorkerEvent


class Recorder:
    """Registers a listener for every WorkerEvent and records what each one received."""

    def __init__(self, app) -> None:
        self.lock = threading.Lock()
        self.seen: list[tuple[WorkerEvent, str]] = []
        for kind in WorkerEvent:
            app.on(kind, self._listener(kind))

    def _listener(self, kind):
        def listener(*args, **kwargs):
            with self.lock:
                self.seen.append((kind, repr(args) + repr(kwargs)))

        return listener

    def kinds_for(self, run_id: str) -> list[WorkerEvent]:
        with self.lock:
            return [k for k, text in self.seen if run_id in text]

    def count(self, run_id: str) -> Counter:
        return Counter(self.kinds_for(run_id))


def test_listeners_see_a_completed_run(app, client, wait_until):
    rec = Recorder(app)

    @app.workflow()
    def flow() -> int:
        return 1

    with app.worker():
        h = client.start(flow)
        assert h.result(timeout=10) == 1
        wait_until(lambda: WorkerEvent.DONE in rec.kinds_for(h.id), what="DONE")
    counts = rec.count(h.id)
    assert counts[WorkerEvent.PROCESSING] == 1
    assert counts[WorkerEvent.COMPLETED] == 1
    assert counts[WorkerEvent.DONE] == 1
    assert counts[WorkerEvent.FAILED] == 0
    assert counts[WorkerEvent.ERROR] == 0
    kinds = rec.kinds_for(h.id)
    assert kinds.index(WorkerEvent.PROCESSING) < kinds.index(WorkerEvent.COMPLETED)


def test_listeners_see_errors_and_failure(app, client, wait_until):
    rec = Recorder(app)

    @app.step(retry=Retry(attempts=2, initial_delay=0.01, jitter=False))
    def broken() -> None:
        raise ValueError("broken step")

    @app.workflow()
    def flow() -> None:
        broken()

    with app.worker():
        h = client.start(flow)
        with pytest.raises(RunFailedError):
            h.result(timeout=10)
        wait_until(lambda: WorkerEvent.FAILED in rec.kinds_for(h.id), what="FAILED")
        wait_until(lambda: WorkerEvent.DONE in rec.kinds_for(h.id), what="DONE")
    counts = rec.count(h.id)
    assert counts[WorkerEvent.FAILED] == 1
    assert counts[WorkerEvent.ERROR] >= 1
    assert counts[WorkerEvent.COMPLETED] == 0


def test_listeners_see_an_error_that_is_retried_then_completes(app, client, wait_until):
    rec = Recorder(app)
    calls = []

    @app.step(retry=Retry(attempts=3, initial_delay=0.01, jitter=False))
    def flaky() -> str:
        calls.append(1)
        if len(calls) == 1:
            raise ValueError("once")
        return "ok"

    @app.workflow()
    def flow() -> str:
        return flaky()

    with app.worker():
        h = client.start(flow)
        assert h.result(timeout=10) == "ok"
        wait_until(lambda: WorkerEvent.COMPLETED in rec.kinds_for(h.id), what="COMPLETED")
    counts = rec.count(h.id)
    assert counts[WorkerEvent.ERROR] >= 1
    assert counts[WorkerEvent.FAILED] == 0
    assert counts[WorkerEvent.COMPLETED] == 1


def test_listeners_see_each_take_of_a_sleeping_run(app, client, wait_until):
    rec = Recorder(app)

    @app.workflow()
    def flow() -> str:
        durable.sleep(0.3)
        return "up"

    with app.worker():
        h = client.start(flow)
        assert h.result(timeout=10) == "up"
        wait_until(lambda: rec.count(h.id)[WorkerEvent.DONE] >= 2, what="two DONE")
    counts = rec.count(h.id)
    assert counts[WorkerEvent.PROCESSING] >= 2  # taken, suspended, taken again
    assert counts[WorkerEvent.COMPLETED] == 1


def test_a_raising_listener_does_not_break_the_worker(app, client):
    def bad_listener(*args, **kwargs):
        raise RuntimeError("listener bug")

    for kind in WorkerEvent:
        app.on(kind, bad_listener)

    @app.workflow()
    def flow(x: int) -> int:
        return x

    with app.worker():
        assert client.start(flow, 1).result(timeout=10) == 1
        assert client.start(flow, 2).result(timeout=10) == 2


def test_stalled_when_a_dead_workers_run_is_taken_over(
    tmp_path, db_url, make_app, wait_until, processes
):
    module = tmp_path / "stall_app.py"
    module.write_text(
        textwrap.dedent(
            """
            import sys
            import time

            import durable

            app = durable.App("stall", database=sys.argv[1], lease_timeout=1.0,
                              poll_interval=0.1)

            @app.step(name="slow")
            def slow() -> str:
                open(sys.argv[2], "w").close()  # tells the test the body is in flight
                time.sleep(120)
                return "never"

            @app.workflow(name="stall-flow")
            def flow() -> str:
                return slow()

            app.run_worker(worker_id="doomed", concurrency=1)
            """
        )
    )
    h = durable.Client(db_url).start("stall-flow")
    marker = tmp_path / "in-step"
    proc = processes.python(module, db_url, marker, name="doomed")
    try:
        proc.wait_for(marker.exists, 30, "the doomed worker to enter the step")
    finally:
        proc.kill()

    app = make_app(lease_timeout=1.0)
    rec = Recorder(app)

    @app.step(name="slow")
    def slow() -> str:
        return "recovered"

    @app.workflow(name="stall-flow")
    def flow() -> str:
        return slow()

    with app.worker(worker_id="rescuer"):
        assert h.result(timeout=20) == "recovered"
        wait_until(lambda: WorkerEvent.STALLED in rec.kinds_for(h.id), what="STALLED")
    assert rec.count(h.id)[WorkerEvent.STALLED] == 1


# ---------------------------------------------------------------- on_success / on_error


def test_on_success_is_called_once_and_on_error_not(app, client, wait_until):
    succeeded, errored = [], []

    @app.workflow(
        on_success=lambda *a, **k: succeeded.append(repr(a) + repr(k)),
        on_error=lambda *a, **k: errored.append(repr(a) + repr(k)),
    )
    def flow() -> str:
        return "RESULT-MARK"

    with app.worker():
        h = client.start(flow)
        assert h.result(timeout=10) == "RESULT-MARK"
        wait_until(lambda: succeeded, what="on_success")
        time.sleep(0.2)
    assert len(succeeded) == 1
    assert "RESULT-MARK" in succeeded[0] or h.id in succeeded[0]
    assert errored == []


def test_on_error_is_called_once_for_a_failed_run(app, client, wait_until):
    succeeded, errored = [], []

    @app.workflow(
        on_success=lambda *a, **k: succeeded.append(repr(a) + repr(k)),
        on_error=lambda *a, **k: errored.append(repr(a) + repr(k)),
    )
    def flow() -> None:
        raise ValueError("ERR-MARK")

    with app.worker():
        h = client.start(flow)
        with pytest.raises(RunFailedError):
            h.result(timeout=10)
        wait_until(lambda: errored, what="on_error")
        time.sleep(0.2)
    assert len(errored) == 1
    assert "ERR-MARK" in errored[0] or h.id in errored[0]
    assert succeeded == []


def test_on_error_waits_for_the_final_failure(app, client, wait_until):
    succeeded, errored = [], []
    runs = []

    @app.workflow(
        retry=Retry(attempts=2, initial_delay=0.01, jitter=False),
        on_success=lambda *a, **k: succeeded.append(1),
        on_error=lambda *a, **k: errored.append(1),
    )
    def flow() -> str:
        runs.append(1)
        if len(runs) == 1:
            raise ValueError("first try")
        return "second"

    with app.worker():
        assert client.start(flow).result(timeout=10) == "second"
        wait_until(lambda: succeeded, what="on_success")
        time.sleep(0.2)
    assert succeeded == [1]
    assert errored == []


def test_failing_callback_does_not_change_the_outcome(app, client):
    def bad(*args, **kwargs):
        raise RuntimeError("callback bug")

    @app.workflow(on_success=bad)
    def flow() -> int:
        return 7

    with app.worker():
        h = client.start(flow)
        assert h.result(timeout=10) == 7
        time.sleep(0.2)
    assert h.status() == Status.COMPLETED


# ---------------------------------------------------------------- push wake-ups


@pytest.fixture
def slow_poll_app(make_app):
    """An App whose poll interval is far longer than any wait below: only pushes wake it."""
    return make_app(poll_interval=10.0)


def test_worker_wakes_at_once_when_a_run_is_started(slow_poll_app):
    app = slow_poll_app

    @app.workflow()
    def flow(x: int) -> int:
        return x

    client = app.client()
    with app.worker():
        time.sleep(0.5)  # the worker is idle, between polls
        for i in range(3):
            start = time.monotonic()
            assert client.start(flow, i).result(timeout=5) == i
            assert time.monotonic() - start < 5.0


def test_worker_wakes_when_a_sleep_is_due(slow_poll_app):
    app = slow_poll_app

    @app.workflow()
    def flow() -> str:
        durable.sleep(0.5)
        return "awake"

    client = app.client()
    with app.worker():
        time.sleep(0.3)
        start = time.monotonic()
        assert client.start(flow).result(timeout=8) == "awake"
        assert time.monotonic() - start < 6.0


def test_worker_wakes_when_a_delayed_run_is_due(slow_poll_app):
    app = slow_poll_app

    @app.workflow()
    def flow() -> str:
        return "due"

    client = app.client()
    with app.worker():
        time.sleep(0.3)
        start = time.monotonic()
        h = client.start(flow, delay=0.5)
        assert h.result(timeout=8) == "due"
        assert 0.45 <= time.monotonic() - start < 6.0


def test_worker_started_after_the_run_takes_it_at_once(slow_poll_app):
    app = slow_poll_app

    @app.workflow()
    def flow() -> str:
        return "backlog"

    client = app.client()
    h = client.start(flow)
    start = time.monotonic()
    with app.worker():
        assert h.result(timeout=5) == "backlog"
    assert time.monotonic() - start < 5.0
