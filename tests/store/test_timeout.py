"""A workflow's timeout counts from the run's first start: a ``delay`` or a wait in a queue
does not use it up; a resumed run gets a fresh deadline when it is next taken."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import msgspec
import pytest

import durable
from durable.events import ErrorInfo, EventType, Failure, NewEvent
from durable.log import AppendRequest, NewRun, Store

WF = "wf"
FAR = 3600.0


@pytest.fixture
def app(db_url: str) -> Iterator[durable.App]:
    a = durable.App("timeouts", database=db_url, poll_interval=0.05)
    try:
        yield a
    finally:
        a.close()


def _new(run_id: str, **kw: Any) -> NewRun:
    return NewRun(id=run_id, workflow=WF, queue="default", input=msgspec.msgpack.encode([]), **kw)


def test_a_new_run_has_no_deadline_until_its_first_lease(store: Store) -> None:
    row, _ = store.create_run(_new("r", timeout=5.0))
    assert (row.timeout, row.deadline_at) == (5.0, None)
    (lease,) = store.lease("w1", 0.05, [WF], None, 1)
    assert lease.run.deadline_at == pytest.approx(lease.db_now + 5.0)
    assert store.get_run("r").deadline_at == lease.run.deadline_at  # type: ignore[union-attr]
    time.sleep(0.1)
    (again,) = store.lease("w2", FAR, [WF], None, 1)  # a takeover keeps the first deadline
    assert again.takeover and again.run.deadline_at == lease.run.deadline_at


def test_a_run_without_timeout_has_no_deadline(store: Store) -> None:
    store.create_run(_new("r"))
    (lease,) = store.lease("w1", FAR, [WF], None, 1)
    assert lease.run.deadline_at is None


def test_a_resumed_run_gets_a_fresh_deadline_at_its_next_lease(store: Store) -> None:
    store.create_run(_new("r", timeout=5.0))
    (first,) = store.lease("w1", FAR, [WF], None, 1)
    err = ErrorInfo(type="ValueError", message="boom")
    [res] = store.append(
        [AppendRequest("r", first.epoch, [NewEvent(EventType.RUN_FAILED, Failure(error=err))])]
    )
    assert res.ok
    resumed = store.resume("r")
    assert resumed is not None and resumed.deadline_at is None
    time.sleep(0.05)
    (second,) = store.lease("w1", FAR, [WF], None, 1)
    assert second.run.deadline_at == pytest.approx(second.db_now + 5.0)
    assert second.run.deadline_at > first.run.deadline_at  # type: ignore[operator]


def test_a_delay_does_not_use_up_the_timeout(app: durable.App) -> None:
    @app.workflow(timeout=1.5)
    def quick() -> int:
        return 7

    client = app.client()
    with app.worker():
        handle = client.start(quick, delay=2.0)
        assert handle.result(timeout=30) == 7
    row = app.store.get_run(handle.id)
    assert row is not None and row.started_at is not None
    assert row.started_at - row.created_at >= 2.0  # it waited longer than its timeout


def test_a_wait_in_a_queue_does_not_use_up_the_timeout(app: durable.App) -> None:
    app.queue("one", concurrency=1)

    @app.step()
    def hold(seconds: float) -> None:
        time.sleep(seconds)

    @app.workflow(queue="one")
    def hog() -> str:
        hold(2.0)
        return "done"

    @app.workflow(queue="one", timeout=1.0)
    def quick() -> int:
        return 7

    client = app.client()
    with app.worker(concurrency=4):
        first = client.start(hog)
        deadline = time.monotonic() + 20
        while first.status() is not durable.Status.RUNNING:
            assert time.monotonic() < deadline, "the first run never started"
            time.sleep(0.02)
        second = client.start(quick)
        assert second.result(timeout=30) == 7
        assert first.result(timeout=30) == "done"
    row = app.store.get_run(second.id)
    assert row is not None and row.started_at is not None
    assert row.started_at - row.created_at > 1.0  # it waited in the queue past its timeout


def test_the_timeout_still_fails_a_run_that_runs_too_long(app: durable.App) -> None:
    @app.step()
    def hold(seconds: float) -> None:
        time.sleep(seconds)

    @app.workflow(timeout=0.5)
    def slow() -> int:
        for _ in range(20):
            hold(0.1)
        return 7

    client = app.client()
    with app.worker():
        handle = client.start(slow, delay=1.0)
        with pytest.raises(durable.RunFailedError) as info:
            handle.result(timeout=30)
    assert info.value.error_type == "TimeoutError"
