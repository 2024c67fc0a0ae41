"""``durable.AsyncClient``: the same methods as ``Client``, as coroutines."""

from __future__ import annotations

import asyncio
import inspect
import time

import pytest

import durable
from durable import (
    NonDeterminismError,
    RunCancelledError,
    RunFailedError,
    RunNotFoundError,
    Status,
)


@pytest.fixture
def aclient(db_url):
    """An AsyncClient on the test's log (code-free, like ``durable.Client(url)``)."""
    c = durable.AsyncClient(db_url)
    yield c
    c.close()


def _app_async_client(app) -> durable.AsyncClient:
    """An AsyncClient that knows the App's code (replay needs it)."""
    return app.async_client()


def _run(coro):
    return asyncio.run(asyncio.wait_for(coro, timeout=30))


def test_async_client_methods_are_coroutines(aclient, app):
    @app.workflow(name="one")
    def one() -> int:
        return 1

    for name in ["start", "get", "list_runs", "cancel", "resume", "fork", "replay", "signal"]:
        assert inspect.iscoroutinefunction(getattr(aclient, name)), name

    async def main():
        h = await aclient.start("one")
        for name in ["status", "result", "info", "outputs", "events", "cancel"]:
            assert inspect.iscoroutinefunction(getattr(h, name)), name
        return h

    h = _run(main())
    assert isinstance(h.id, str)


def test_async_start_result_status_info_outputs_events(aclient, app):
    calls = []

    @app.step(name="charge")
    def charge(order: str) -> dict:
        calls.append(order)
        return {"order": order}

    @app.workflow(name="checkout")
    def checkout(order: str) -> str:
        with durable.stage("payment"):
            receipt = charge(order)
            durable.output("receipt", receipt)
        return "ok " + order

    async def main():
        h = await aclient.start(checkout, "o-1")
        h2 = await aclient.start("checkout", "o-2")
        assert await h.status() == Status.PENDING
        with app.worker():
            assert await h.result(timeout=10) == "ok o-1"
            assert await h2.result(timeout=10) == "ok o-2"
        info = await h.info()
        assert info.id == h.id
        assert info.workflow == "checkout"
        assert info.status == Status.COMPLETED
        assert await h.status() == Status.COMPLETED
        outputs = await h.outputs()
        assert outputs["payment"] == {
            "charge": {"result": {"order": "o-1"}},
            "receipt": {"order": "o-1"},
        }
        assert isinstance(outputs["payment"]["charge"], durable.StepOutputs)
        events = await h.events()
        assert events[0].type == "run_started"
        assert events[-1].type == "run_completed"
        assert [e.seq for e in events] == list(range(1, len(events) + 1))
        g = await aclient.get(h.id)
        assert g.id == h.id
        assert await g.result(timeout=5) == "ok o-1"

    _run(main())
    assert sorted(calls) == ["o-1", "o-2"]


def test_async_idempotent_id_and_list_runs(aclient, app):
    @app.workflow(name="w")
    def w(x: int) -> int:
        return x

    async def main():
        a = await aclient.start("w", 1, id="fixed")
        b = await aclient.start("w", 1, id="fixed")
        assert a.id == b.id == "fixed"
        c = await aclient.start("w", 2, queue="other", priority=3)
        with app.worker(queues=["default"]):
            assert await a.result(timeout=10) == 1
        runs = await aclient.list_runs()
        assert {r.id for r in runs} == {"fixed", c.id}
        done = await aclient.list_runs(status=Status.COMPLETED)
        assert [r.id for r in done] == ["fixed"]
        other = await aclient.list_runs(queue="other")
        assert [r.id for r in other] == [c.id]
        assert other[0].priority == 3
        assert await aclient.list_runs(workflow="nope") == []
        assert len(await aclient.list_runs(limit=1)) == 1

    _run(main())


def test_async_result_timeout_and_failure(aclient, app):
    @app.workflow(name="sleepy")
    def sleepy() -> None:
        durable.sleep(30)

    @app.workflow(name="bad")
    def bad() -> None:
        raise ValueError("bad run")

    async def main():
        with app.worker():
            s = await aclient.start("sleepy")
            t0 = time.monotonic()
            with pytest.raises(TimeoutError):
                await s.result(timeout=0.3)
            assert time.monotonic() - t0 < 3
            b = await aclient.start("bad")
            with pytest.raises(RunFailedError) as err:
                await b.result(timeout=10)
            assert err.value.error_type == "ValueError"
            assert err.value.run_id == b.id
            await s.cancel()
            with pytest.raises(RunCancelledError):
                await s.result(timeout=5)

    _run(main())


def test_async_signal_cancel_resume(aclient, app):
    calls = []

    @app.step(name="prep")
    def prep() -> int:
        calls.append("prep")
        return 1

    @app.workflow(name="approval")
    def approval() -> object:
        prep()
        return durable.wait_signal("approve", timeout=60)

    async def wait_for_wait(h):
        deadline = time.monotonic() + 10
        while await h.status() != Status.SLEEPING:
            assert time.monotonic() < deadline, "never waited"
            await asyncio.sleep(0.02)
        assert any(e.type == "wait_started" for e in await h.events())

    async def main():
        with app.worker():
            h = await aclient.start("approval")
            await wait_for_wait(h)
            await aclient.cancel(h.id)
            assert await h.status() == Status.CANCELLED
            r = await aclient.resume(h.id)
            assert r.id == h.id
            await aclient.signal(h.id, "approve", {"ok": 1})
            assert await r.result(timeout=10) == {"ok": 1}

    _run(main())
    assert calls == ["prep"]


def test_async_fork_and_replay(aclient, app):
    calls = []

    @app.step(name="a")
    def a() -> int:
        calls.append("a")
        return 1

    @app.step(name="b")
    def b() -> int:
        calls.append("b")
        return len(calls)

    @app.workflow(name="ab")
    def ab() -> int:
        return a() * 100 + b()

    async def main():
        with app.worker():
            h = await aclient.start("ab")
            assert await h.result(timeout=10) == 102
            f = await aclient.fork(h.id, from_step=2)
            assert f.id != h.id
            assert await f.result(timeout=10) == 103
        return h

    h = _run(main())
    assert calls == ["a", "b", "b"]

    async def replay():
        return await _app_async_client(app).replay(h.id)

    # Replay needs the code: through the App's async client.
    assert _run(replay()) == 102
    assert calls == ["a", "b", "b"]


def test_async_replay_detects_changed_code(make_app):
    old = make_app()

    @old.step(name="a")
    def a() -> int:
        return 1

    @old.workflow(name="flow")
    def flow() -> int:
        return a()

    with old.worker():
        h = old.client().start(flow)
        assert h.result(timeout=10) == 1

    new = make_app()

    @new.step(name="other")
    def other() -> int:
        return 1

    @new.workflow(name="flow")
    def flow2() -> int:
        return other()

    async def main():
        with pytest.raises(NonDeterminismError):
            await _app_async_client(new).replay(h.id)

    _run(main())


@pytest.mark.parametrize("method", ["get", "cancel", "resume", "fork", "replay", "signal"])
def test_async_unknown_id_raises_run_not_found(aclient, method):
    calls = {
        "get": lambda: aclient.get("missing"),
        "cancel": lambda: aclient.cancel("missing"),
        "resume": lambda: aclient.resume("missing"),
        "fork": lambda: aclient.fork("missing", from_step=1),
        "replay": lambda: aclient.replay("missing"),
        "signal": lambda: aclient.signal("missing", "go", None),
    }

    async def main():
        with pytest.raises(RunNotFoundError):
            await calls[method]()

    _run(main())


def test_async_unknown_workflow_from_app_client(app, db_url):
    @app.workflow()
    def known() -> int:
        return 1

    async def main():
        with pytest.raises(durable.UnknownWorkflowError):
            await _app_async_client(app).start("nope")

    _run(main())
    assert durable.Client(db_url).list_runs() == []
