"""Worker listeners (``app.on(WorkerEvent.X, fn)``), ``on_success``/``on_error`` callbacks, and
push wake-ups of the embedded worker."""

from __future__ import annotations

import contextlib
import threading
import time
from collections import Counter

import pytest

import durable
from durable import Retry, RunFailedError, Status, WorkerEvent


class Recorder:
    """Registers a listener for every WorkerEvent and keeps what each one received."""

    def __init__(self, app, **filters) -> None:
        self.lock = threading.Lock()
        self.seen: list[durable.WorkerEventInfo] = []
        for kind in WorkerEvent:
            app.on(kind, self._record, **filters)

    def _record(self, info: durable.WorkerEventInfo) -> None:
        with self.lock:
            self.seen.append(info)

    def of(self, run_id: str) -> list[durable.WorkerEventInfo]:
        with self.lock:
            return [i for i in self.seen if i.run_id == run_id]

    def kinds_for(self, run_id: str) -> list[WorkerEvent]:
        return [i.event for i in self.of(run_id)]

    def count(self, run_id: str) -> Counter:
        return Counter(self.kinds_for(run_id))


def lease_takes(h: durable.RunHandle) -> int:
    """How many times a worker took the run, as its journal says."""
    return [e.type for e in h.events()].count("lease_taken")


def counts_of(rec: Recorder, run_id: str) -> dict[str, int]:
    c = rec.count(run_id)
    return {k.name: c[k] for k in WorkerEvent if c[k]}


def test_a_run_that_completes_fires_processing_done_completed(app, client, wait_until):
    rec = Recorder(app)

    @app.workflow()
    def flow() -> int:
        return 1

    with app.worker() as worker:
        h = client.start(flow)
        assert h.result(timeout=10) == 1
        wait_until(lambda: WorkerEvent.COMPLETED in rec.kinds_for(h.id), what="COMPLETED")
    assert rec.kinds_for(h.id) == [WorkerEvent.PROCESSING, WorkerEvent.DONE, WorkerEvent.COMPLETED]
    done, completed = rec.of(h.id)[1:]
    assert done.result == 1 and completed.result == 1
    assert {i.worker_id for i in rec.of(h.id)} == {worker.worker_id}
    assert {(i.workflow, i.queue) for i in rec.of(h.id)} == {(h.info().workflow, "default")}


def test_each_failed_step_attempt_is_one_error_and_the_end_one_failed(app, client, wait_until):
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
        wait_until(lambda: WorkerEvent.COMPLETED in rec.kinds_for(h.id), what="COMPLETED")
    assert counts_of(rec, h.id) == {
        "PROCESSING": lease_takes(h),
        "ERROR": 2,  # one per attempt of the step; the workflow raising it is the same error
        "FAILED": 1,
        "COMPLETED": 1,
    }
    assert rec.kinds_for(h.id)[-2:] == [WorkerEvent.FAILED, WorkerEvent.COMPLETED]
    errors = [i.error for i in rec.of(h.id) if i.event is WorkerEvent.ERROR]
    assert all(isinstance(e, ValueError) for e in errors)


def test_two_failed_run_attempts_fire_two_errors(app, client, wait_until):
    rec = Recorder(app)

    @app.step()
    def broken() -> None:
        raise ValueError("broken step")

    @app.workflow(retry=Retry(attempts=2, initial_delay=0.01, jitter=False))
    def flow() -> None:
        broken()

    with app.worker():
        h = client.start(flow)
        with pytest.raises(RunFailedError):
            h.result(timeout=10)
        wait_until(lambda: WorkerEvent.COMPLETED in rec.kinds_for(h.id), what="COMPLETED")
    assert counts_of(rec, h.id) == {
        "PROCESSING": lease_takes(h),
        "ERROR": 2,
        "FAILED": 1,
        "COMPLETED": 1,
    }


def test_workflow_code_that_raises_then_succeeds_on_retry(app, client, wait_until):
    rec = Recorder(app)
    runs = []

    @app.workflow(retry=Retry(attempts=2, initial_delay=0.01, jitter=False))
    def flow() -> str:
        runs.append(1)
        if len(runs) == 1:
            raise KeyError("first try")
        return "second"

    with app.worker():
        h = client.start(flow)
        assert h.result(timeout=10) == "second"
        wait_until(lambda: WorkerEvent.COMPLETED in rec.kinds_for(h.id), what="COMPLETED")
    assert lease_takes(h) == 2
    assert counts_of(rec, h.id) == {"PROCESSING": 2, "ERROR": 1, "DONE": 1, "COMPLETED": 1}


def test_an_error_that_is_retried_then_completes(app, client, wait_until):
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
    assert counts_of(rec, h.id) == {
        "PROCESSING": lease_takes(h),
        "ERROR": 1,
        "DONE": 1,
        "COMPLETED": 1,
    }


def test_a_step_failure_the_workflow_catches_is_one_error(app, client, wait_until):
    rec = Recorder(app)

    @app.step()
    def broken() -> None:
        raise ValueError("caught")

    @app.workflow()
    def flow() -> str:
        try:
            broken()
        except ValueError:
            return "handled"
        return "no"

    with app.worker():
        h = client.start(flow)
        assert h.result(timeout=10) == "handled"
        wait_until(lambda: WorkerEvent.COMPLETED in rec.kinds_for(h.id), what="COMPLETED")
    assert counts_of(rec, h.id) == {"PROCESSING": 1, "ERROR": 1, "DONE": 1, "COMPLETED": 1}


def test_a_workflow_that_raises_a_new_error_over_a_step_failure(app, client, wait_until):
    """The workflow's own error raised from the step's is still that attempt's one error."""
    rec = Recorder(app)

    @app.step()
    def broken() -> None:
        raise ValueError("inner")

    @app.workflow()
    def flow() -> None:
        try:
            broken()
        except ValueError as exc:
            raise RuntimeError("outer") from exc

    with app.worker():
        h = client.start(flow)
        with pytest.raises(RunFailedError):
            h.result(timeout=10)
        wait_until(lambda: WorkerEvent.COMPLETED in rec.kinds_for(h.id), what="COMPLETED")
    assert counts_of(rec, h.id) == {"PROCESSING": 1, "ERROR": 1, "FAILED": 1, "COMPLETED": 1}


def test_each_take_of_a_sleeping_run_is_processing(app, client, wait_until):
    rec = Recorder(app)

    @app.workflow()
    def flow() -> str:
        durable.sleep(0.3)
        return "up"

    with app.worker():
        h = client.start(flow)
        assert h.result(timeout=10) == "up"
        wait_until(lambda: WorkerEvent.COMPLETED in rec.kinds_for(h.id), what="COMPLETED")
    assert lease_takes(h) == 2
    assert counts_of(rec, h.id) == {"PROCESSING": 2, "DONE": 1, "COMPLETED": 1}


def test_a_run_cancelled_while_it_runs_is_completed_not_done(app, client, wait_until):
    rec = Recorder(app)
    started = threading.Event()

    @app.step()
    def slow() -> None:
        started.set()
        time.sleep(0.5)

    @app.workflow()
    def flow() -> None:
        slow()
        slow()

    with app.worker():
        h = client.start(flow)
        assert started.wait(10)
        h.cancel()
        with pytest.raises(durable.RunCancelledError):
            h.result(timeout=10)
        wait_until(lambda: WorkerEvent.COMPLETED in rec.kinds_for(h.id), what="COMPLETED")
    assert counts_of(rec, h.id) == {"PROCESSING": 1, "COMPLETED": 1}


def test_listeners_filtered_by_workflow_and_queue(app, client, wait_until):
    @app.workflow(queue="qa")
    def flow_a(fail: bool) -> None:
        if fail:
            raise ValueError("a")

    @app.workflow(name="flow-b")
    def flow_b(fail: bool) -> None:
        if fail:
            raise ValueError("b")

    by_function = Recorder(app, workflow=flow_a)
    by_name = Recorder(app, workflow="flow-b")
    by_queue = Recorder(app, queue="qa")
    both = Recorder(app, workflow="flow-b", queue="qa")
    every = Recorder(app)
    with app.worker():
        runs = [
            client.start(flow_a, True),
            client.start(flow_b, True),
            client.start(flow_b, False, queue="qa"),
        ]
        for h in runs:
            with contextlib.suppress(RunFailedError):
                h.result(timeout=10)
        for h in runs:
            wait_until(lambda h=h: WorkerEvent.COMPLETED in every.kinds_for(h.id), what="ends")
    a, b, b_on_qa = (h.id for h in runs)

    def ids(rec: Recorder) -> set[str]:
        with rec.lock:
            return {i.run_id for i in rec.seen}

    assert ids(by_function) == {a}
    assert ids(by_name) == {b, b_on_qa}
    assert ids(by_queue) == {a, b_on_qa}
    assert ids(both) == {b_on_qa}
    assert ids(every) == {a, b, b_on_qa}
    failed = [i.run_id for i in by_name.seen if i.event is WorkerEvent.FAILED]
    assert failed == [b]


def test_on_refuses_a_workflow_that_is_not_one(app):
    with pytest.raises(TypeError):
        app.on(WorkerEvent.FAILED, print, workflow=42)  # type: ignore[arg-type]


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


STALL_APP = """
import sys
import time

import durable

app = durable.App("stall", database=sys.argv[1], lease_timeout=LEASE, poll_interval=0.1)

@app.step(name="slow")
def slow() -> str:
    open(sys.argv[2], "w").close()  # tells the test the body is in flight
    time.sleep(120)
    return "never"

@app.workflow(name="stall-flow")
def flow() -> str:
    return slow()

app.run_worker(worker_id=sys.argv[3], concurrency=1)
"""


def _doomed_worker(tmp_path, db_url, processes, worker_id: str, lease: float) -> durable.RunHandle:
    """Start a run, let a worker process take it and enter its step, then SIGKILL it."""
    module = tmp_path / "stall_app.py"
    module.write_text(STALL_APP.replace("LEASE", repr(lease)))
    with durable.Client(db_url) as c:
        run_id = c.start("stall-flow").id
    marker = tmp_path / "in-step"
    proc = processes.python(module, db_url, marker, worker_id, name="doomed")
    try:
        proc.wait_for(marker.exists, 30, "the doomed worker to enter the step")
    finally:
        proc.kill()
    return run_id


def _rescue(make_app, run_id: str, worker_id: str, wait_until) -> Recorder:
    app = make_app(lease_timeout=1.0)
    rec = Recorder(app)

    @app.step(name="slow")
    def slow() -> str:
        return "recovered"

    @app.workflow(name="stall-flow")
    def flow() -> str:
        return slow()

    client = app.client()
    with app.worker(worker_id=worker_id):
        assert client.result(run_id, timeout=20) == "recovered"
        wait_until(lambda: WorkerEvent.COMPLETED in rec.kinds_for(run_id), what="COMPLETED")
    return rec


def test_stalled_when_a_dead_workers_run_is_taken_over(
    tmp_path, db_url, make_app, wait_until, processes
):
    run_id = _doomed_worker(tmp_path, db_url, processes, "doomed", lease=1.0)
    rec = _rescue(make_app, run_id, "rescuer", wait_until)
    assert rec.kinds_for(run_id) == [
        WorkerEvent.PROCESSING,
        WorkerEvent.STALLED,
        WorkerEvent.DONE,
        WorkerEvent.COMPLETED,
    ]


def test_stalled_when_the_same_worker_restarts_and_reclaims(
    tmp_path, db_url, make_app, wait_until, processes
):
    # A long lease: only the reclaim of a restart under the same identity takes it back.
    run_id = _doomed_worker(tmp_path, db_url, processes, "same-worker", lease=600.0)
    rec = _rescue(make_app, run_id, "same-worker", wait_until)
    assert rec.kinds_for(run_id) == [
        WorkerEvent.PROCESSING,
        WorkerEvent.STALLED,
        WorkerEvent.DONE,
        WorkerEvent.COMPLETED,
    ]


def test_a_run_taken_for_the_first_time_is_not_stalled(app, client, wait_until):
    rec = Recorder(app)

    @app.workflow()
    def flow() -> int:
        return 3

    with app.worker(worker_id="fresh"):
        h = client.start(flow)
        assert h.result(timeout=10) == 3
        wait_until(lambda: WorkerEvent.COMPLETED in rec.kinds_for(h.id), what="COMPLETED")
    assert WorkerEvent.STALLED not in rec.kinds_for(h.id)


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
