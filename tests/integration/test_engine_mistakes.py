"""What the engine tells a user about common mistakes, and what it does when a lease is lost:

- a step whose result does not decode into its return annotation fails (``step_failed``),
  naming the step;
- an async workflow that forgets ``await`` on a step call, or returns a coroutine, is told so;
- a sync workflow may call an async step (it runs to its end, as a sync step would);
- a call of an ``asyncio.gather`` that raises at the call leaves no coroutine un-awaited;
- a mismatch with the journal hints at ``durable.now()``/``durable.random()``;
- the log line of a failed try tells its duration from the backoff before the next one;
- an append under a stale epoch raises ``LeaseLostError`` inside the engine, and the worker
  drops the run and says why.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import threading
from typing import Any

import pytest

import durable
from durable import DurableError, LeaseLostError, RunFailedError, Status
from durable.log import open_store

pytestmark = [
    pytest.mark.filterwarnings("error::RuntimeWarning"),
    pytest.mark.filterwarnings("error::pytest.PytestUnraisableExceptionWarning"),
]


def test_step_result_that_does_not_fit_its_annotation_fails_the_step(app, client):
    @app.step(name="count")
    def count() -> int:
        return "x"  # type: ignore[return-value]

    @app.workflow()
    def flow() -> int:
        return count()

    with app.worker():
        h = client.start(flow)
        with pytest.raises(RunFailedError) as info:
            h.result(timeout=10)
    assert info.value.error_type == "SerializationError"
    assert "step 'count'" in info.value.error_message
    assert "return annotation int" in info.value.error_message
    failed = [e for e in h.events() if e.type == "step_failed"]
    assert len(failed) == 1 and failed[0].position == 1


def test_async_workflow_that_forgets_await_on_a_step_is_told(app, client):
    ran = []

    @app.step()
    def work(x: int) -> int:
        ran.append(x)
        return x

    @app.workflow()
    async def flow() -> int:
        work(1)  # forgot await
        return await work(2)

    with app.worker():
        h = client.start(flow)
        with pytest.raises(RunFailedError) as info:
            h.result(timeout=10)
    assert info.value.error_type == "DurableError"
    msg = info.value.error_message
    assert "never awaited" in msg and "did you forget await?" in msg
    assert "position 1" in msg
    assert ran == [2]


def test_async_workflow_returning_a_coroutine_is_told(app, client):
    async def helper() -> int:
        return 1

    @app.workflow()
    async def flow() -> Any:
        return helper()  # forgot await on a plain coroutine

    with app.worker():
        h = client.start(flow)
        with pytest.raises(RunFailedError) as info:
            h.result(timeout=10)
    assert info.value.error_type == "SerializationError"
    assert "did you forget await?" in info.value.error_message


def test_sync_workflow_may_call_an_async_step(app, client):
    @app.step()
    async def fetch(x: int) -> int:
        await asyncio.sleep(0)
        return x * 2

    @app.workflow()
    def flow(x: int) -> int:
        return fetch(x) + 1

    with app.worker():
        assert client.start(flow, 4).result(timeout=10) == 9


def test_gather_whose_second_call_raises_leaves_no_coroutine_unawaited(app, client, wait_status):
    """On resume, the gather's first call (a step due for its second try) has its coroutine
    made, then the second call raises at the call (today's code calls another step than the
    journal records): the first coroutine is closed, never left to warn when collected."""
    tries = []
    second = {"name": "b"}

    @app.step(retry=durable.Retry(attempts=2, initial_delay=0.1, jitter=False))
    def flaky() -> int:
        tries.append(1)
        if len(tries) == 1:
            raise ValueError("first try")
        return 1

    @app.step()
    def b() -> int:
        second["name"] = "c"  # the code changes under the run
        return 2

    @app.step()
    def c() -> int:
        return 3

    @app.workflow()
    async def flow() -> list[int]:
        calls = {"b": b, "c": c}
        return list(await asyncio.gather(flaky(), calls[second["name"]]()))

    with app.worker():
        h = client.start(flow)
        wait_status(h, Status.BLOCKED)
        gc.collect()
    assert h.info().error_type == "NonDeterminismError"
    assert tries == [1]  # the second try never started


def test_gather_interrupted_by_a_sleep_in_another_branch_leaves_nothing_unawaited(app, client):
    @app.step()
    def a() -> int:
        return 1

    @app.workflow()
    async def flow() -> int:
        durable.sleep(0.2)
        x, y = await asyncio.gather(a(), a())
        return x + y

    with app.worker():
        assert client.start(flow).result(timeout=10) == 2


def test_nondeterminism_of_a_live_run_hints_at_journaled_values(app, client, wait_status):
    choice = {"name": "one"}

    @app.step()
    def one() -> int:
        choice["name"] = "two"  # as if the code read the clock or a random number
        return 1

    @app.step()
    def two() -> int:
        return 2

    @app.workflow()
    def flow() -> int:
        steps = {"one": one, "two": two}
        x = steps[choice["name"]]()
        durable.sleep(0.2)
        return x

    with app.worker():
        h = client.start(flow)
        wait_status(h, Status.BLOCKED)
    info = h.info()
    assert info.error_type == "NonDeterminismError"
    assert info.error_message is not None and "durable.random()" in info.error_message


def test_failed_try_log_line_tells_duration_and_backoff(virtual_app, durable_env, caplog):
    # On the virtual clock (durable.testing): the ten minutes of backoff are not waited for.
    app = virtual_app
    tries = []

    @app.step(retry=durable.Retry(attempts=2, initial_delay=600, max_delay=3600, jitter=False))
    def flaky() -> int:
        tries.append(1)
        if len(tries) == 1:
            raise ValueError("once")
        return 1

    @app.workflow()
    def flow() -> int:
        return flaky()

    caplog.set_level(logging.INFO, logger="durable")
    t = durable_env(app)
    assert t.client.start(flow).result(timeout=10) == 1
    lines = [r.getMessage() for r in caplog.records if "step " in r.getMessage()]
    failed = [m for m in lines if "attempt 1)" in m and "flaky" in m]
    assert failed, lines
    assert "failed after " in failed[0] and "next attempt in 600.000s" in failed[0]


def test_stale_epoch_append_raises_lease_lost_and_the_run_is_dropped(
    app, client, db_url, caplog, wait_until
):
    started = threading.Event()
    go_on = threading.Event()

    @app.step()
    def slow() -> int:
        started.set()
        go_on.wait(10)
        return 1

    @app.workflow()
    def flow() -> int:
        return slow()

    caplog.set_level(logging.INFO, logger="durable.engine.runner")
    other = open_store(db_url)
    try:
        with app.worker(worker_id="worker-a"):
            h = client.start(flow)
            assert started.wait(10)
            # Another worker takes the run over (as if worker-a were dead): the epoch moves.
            workflow = h.info().workflow
            # On Postgres the lease skips a row that worker-a's heartbeat or append holds
            # locked at that instant (SKIP LOCKED): ask again until it is free.
            taken: list[Any] = []

            def take_over() -> bool:
                taken.extend(other.lease("worker-b", 30.0, [workflow], None, 1, ["worker-a"]))
                return bool(taken)

            wait_until(take_over, 10, what="worker-b to take the run over")
            assert [lease.run.id for lease in taken] == [h.id]
            go_on.set()

            def dropped() -> list[logging.LogRecord]:
                return [
                    r for r in caplog.records if r.getMessage().startswith(f"run {h.id} dropped")
                ]

            wait_until(dropped, what="the run dropped")
        record = dropped()[0]
        assert "lease" in record.getMessage()
        lost = record.args[1]  # type: ignore[index]
        assert isinstance(lost, LeaseLostError)
        assert isinstance(lost, DurableError)
        assert h.id in str(lost)
        # Nothing of worker-a's try was written once the lease moved on.
        assert [e.type for e in h.events()].count("step_completed") == 0
        assert h.info().status == Status.RUNNING
    finally:
        other.close()
