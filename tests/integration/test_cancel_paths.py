"""Every way a cancel reaches a step body, with an embedded worker, on every backend: sync and
async workflows calling sync and async steps, steps gathered, a grace of zero, child runs,
and the in-run functions outside a run. (Across processes: ``test_cancel.py``.)"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any

import pytest

import durable
from durable import CancelOutcome, Status


def _wait_entered(entered: threading.Event) -> None:
    assert entered.wait(10), "the step body never started"


def _types(h: durable.RunHandle) -> list[str]:
    return [e.type for e in h.events()]


def test_an_async_step_of_a_sync_workflow_gets_cancelled_error(
    make_app: Callable[..., durable.App],
) -> None:
    app = make_app()
    entered = threading.Event()
    seen: list[bool] = []

    @app.step(name="waits")
    async def waits() -> int:
        entered.set()
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            seen.append(durable.cancelled())
            durable.output("cleanup", 1)
            raise
        return 1

    @app.workflow(name="flow")
    def flow() -> int:
        return waits()

    client = app.client()
    with app.worker():
        h = client.start(flow)
        _wait_entered(entered)
        assert h.cancel() is CancelOutcome.REQUESTED
        with pytest.raises(durable.RunCancelledError):
            h.result(timeout=10)
    assert seen == [True]
    assert h.outputs()["main"] == {"waits": {"cleanup": 1}}
    assert "step_failed" not in _types(h) and _types(h)[-1] == "run_cancelled"


def test_a_sync_step_of_an_async_workflow_sees_cancelled(
    make_app: Callable[..., durable.App],
) -> None:
    app = make_app()
    entered = threading.Event()

    @app.step(name="loops")
    def loops() -> str:
        entered.set()
        while not durable.cancelled():
            threading.Event().wait(0.005)
        durable.progress(0.5)
        return "stopped"

    @app.step(name="never")
    def never() -> None:
        raise AssertionError("a step after the cancel ran")

    @app.workflow(name="flow")
    async def flow() -> str:
        out: str = await loops()
        await never()
        return out

    client = app.client()
    with app.worker():
        h = client.start(flow)
        _wait_entered(entered)
        h.cancel()
        with pytest.raises(durable.RunCancelledError):
            h.result(timeout=10)
    events = h.events()
    assert [e.name for e in events if e.type == "step_completed"] == ["loops"]
    assert any(e.type == "progress" for e in events)
    assert events[-1].type == "run_cancelled"


def test_gathered_async_steps_are_all_cancelled_and_their_cleanup_kept(
    make_app: Callable[..., durable.App],
) -> None:
    app = make_app()
    started: list[int] = []
    all_in = threading.Event()

    @app.step(name="part")
    async def part(i: int) -> int:
        started.append(i)
        if len(started) == 3:
            all_in.set()
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            durable.output(f"part-{i}", "cancelled")
            raise
        return i

    @app.workflow(name="flow")
    async def flow() -> list[int]:
        return list(await asyncio.gather(part(0), part(1), part(2)))

    client = app.client()
    with app.worker():
        h = client.start(flow)
        _wait_entered(all_in)
        h.cancel()
        with pytest.raises(durable.RunCancelledError):
            h.result(timeout=10)
    calls = ["part", "part#2", "part#3"]  # three calls of one step, each its own node
    assert h.outputs()["main"] == {calls[i]: {f"part-{i}": "cancelled"} for i in range(3)}
    assert _types(h)[-1] == "run_cancelled"


def test_with_a_grace_of_zero_the_run_ends_at_once(
    make_app: Callable[..., durable.App],
) -> None:
    app = make_app(cancel_grace=0)
    entered = threading.Event()
    release = threading.Event()
    after: list[str] = []

    @app.step(name="deaf")
    def deaf() -> int:
        entered.set()
        release.wait(10)
        after.append("returned")
        return 1

    @app.workflow(name="flow")
    def flow() -> int:
        return deaf()

    client = app.client()
    with app.worker():
        h = client.start(flow)
        _wait_entered(entered)
        h.cancel()
        with pytest.raises(durable.RunCancelledError):
            h.result(timeout=10)
        release.set()
    assert "step_completed" not in _types(h)
    assert app.cancel_grace == 0.0


def test_a_cancelled_parent_cancels_its_running_child(
    make_app: Callable[..., durable.App],
) -> None:
    app = make_app()
    entered = threading.Event()

    @app.step(name="child_step")
    def child_step() -> int:
        entered.set()
        while not durable.cancelled():
            threading.Event().wait(0.005)
        durable.check_cancelled()
        return 1

    @app.workflow(name="child")
    def child() -> int:
        return child_step()

    @app.workflow(name="parent")
    def parent() -> int:
        return child()

    client = app.client()
    with app.worker():
        h = client.start(parent)
        _wait_entered(entered)
        # The parent waits for its child, holding no worker: it ends at once; the child,
        # executing, is asked to stop.
        assert h.cancel() is CancelOutcome.CANCELLED
        kids = [r for r in client.list_runs() if r.id != h.id]
        assert len(kids) == 1
        with pytest.raises(durable.RunCancelledError):
            client.get(kids[0].id).result(timeout=10)
    assert h.status() is Status.CANCELLED


def test_a_resumed_run_runs_the_step_left_unfinished_and_completes(
    make_app: Callable[..., durable.App],
) -> None:
    app = make_app()
    tries: list[int] = []
    entered = threading.Event()

    @app.step(name="once")
    def once() -> str:
        tries.append(1)
        if len(tries) == 1:
            entered.set()
            while not durable.cancelled():
                threading.Event().wait(0.005)
            durable.check_cancelled()
        return "done"

    @app.workflow(name="flow")
    def flow() -> str:
        return once()

    client = app.client()
    with app.worker():
        h = client.start(flow)
        _wait_entered(entered)
        h.cancel()
        with pytest.raises(durable.RunCancelledError):
            h.result(timeout=10)
        assert client.resume(h.id).result(timeout=10) == "done"
    assert len(tries) == 2


def test_a_worker_carries_out_at_start_a_request_that_no_worker_holds(
    make_app: Callable[..., durable.App],
) -> None:
    from durable.events import EventType, NewEvent, SuspendData
    from durable.log.store import AppendRequest

    app = make_app()

    @app.workflow(name="flow")
    def flow() -> None:
        durable.sleep(3600)

    client = app.client()
    h = client.start(flow)
    store = app.store
    # As if a holder's suspension committed just after the request (and its worker then
    # went away before the push arrived): the run sleeps with an open request.
    (lease,) = store.lease("gone", 60.0, ["flow"], None, 1)
    assert client.cancel(h.id) is CancelOutcome.REQUESTED
    sleep = NewEvent(EventType.RUN_SUSPENDED, SuspendData(wake_at=lease.db_now + 3600))
    assert store.append([AppendRequest(h.id, lease.epoch, [sleep])])[0].ok
    assert h.status() is Status.SLEEPING
    # A worker looks for open requests when it starts.
    with app.worker(), pytest.raises(durable.RunCancelledError):
        h.result(timeout=10)


def test_outside_a_run_nothing_is_cancelled() -> None:
    assert durable.cancelled() is False
    durable.check_cancelled()  # does not raise


def test_in_workflow_code_cancelled_turns_true_and_the_next_step_stops_it(
    make_app: Callable[..., durable.App],
) -> None:
    app = make_app()
    seen: list[Any] = []
    entered = threading.Event()

    @app.step(name="tick")
    def tick(i: int) -> int:
        entered.set()
        threading.Event().wait(0.01)
        return i

    @app.workflow(name="flow")
    def flow() -> int:
        i = 0
        while not durable.cancelled():
            i = tick(i) + 1
        seen.append(("told", i))
        tick(-1)  # stops here
        seen.append("went on")
        return i

    client = app.client()
    with app.worker():
        h = client.start(flow)
        _wait_entered(entered)
        h.cancel()
        with pytest.raises(durable.RunCancelledError):
            h.result(timeout=10)
    assert len(seen) == 1 and seen[0][0] == "told"
