"""Failures: step retries (attempts, backoff, max_delay, non_retryable, PermanentError), step
timeouts, workflow timeouts, exceptions raised by workflow code, workflow retry, and the
journal of every attempt."""

from __future__ import annotations

import asyncio
import time

import pytest

import durable
from durable import Retry, RunFailedError, Status


def _fast(attempts: int, **kwargs) -> Retry:
    kwargs.setdefault("initial_delay", 0.01)
    kwargs.setdefault("jitter", False)
    return Retry(attempts=attempts, **kwargs)


def _failed(h) -> RunFailedError:
    with pytest.raises(RunFailedError) as info:
        h.result(timeout=10)
    assert info.value.run_id == h.id
    return info.value


# ---------------------------------------------------------------- step retry


def test_step_retries_until_success_and_journals_every_attempt(app, client):
    calls = []

    @app.step(name="flaky", retry=_fast(3))
    def flaky(x: int) -> int:
        calls.append(durable.info().step_attempt)
        if len(calls) < 3:
            raise ValueError(f"attempt {len(calls)}")
        return x * 2

    @app.workflow()
    def flow(x: int) -> int:
        return flaky(x)

    with app.worker():
        h = client.start(flow, 21)
        assert h.result(timeout=10) == 42

    assert calls == [1, 2, 3]
    events = [e for e in h.events() if e.name == "flaky" or e.type == "retry_scheduled"]
    started = [e.attempt for e in events if e.type == "step_started"]
    failed = [e for e in events if e.type == "step_failed"]
    assert started == [1, 2, 3]
    assert [e.attempt for e in failed] == [1, 2]
    assert all(e.data.get("retryable") is True for e in failed)
    assert all("ValueError" in repr(e.data) for e in failed)
    assert sum(1 for e in h.events() if e.type == "retry_scheduled") == 2
    done = [e for e in events if e.type == "step_completed"]
    assert len(done) == 1
    assert done[0].attempt == 3
    # All attempts share one position.
    assert {e.position for e in events if e.position is not None} == {1}


def test_step_that_always_fails_runs_exactly_attempts_times(app, client):
    calls = []

    @app.step(name="broken", retry=_fast(4))
    def broken() -> None:
        calls.append(1)
        raise ValueError("always")

    @app.workflow()
    def flow() -> None:
        broken()

    with app.worker():
        h = client.start(flow)
        err = _failed(h)

    assert len(calls) == 4
    assert err.error_type == "ValueError"
    assert "always" in err.error_message
    info = h.info()
    assert info.status == Status.FAILED
    assert info.error_type == "ValueError"
    failed = [e for e in h.events() if e.type == "step_failed"]
    assert [e.attempt for e in failed] == [1, 2, 3, 4]
    assert [e.data.get("retryable") for e in failed] == [True, True, True, False]
    assert h.events()[-1].type == "run_failed"


def test_default_retry_is_one_attempt(app, client):
    calls = []

    @app.step()
    def once() -> None:
        calls.append(1)
        raise RuntimeError("no retry")

    @app.workflow()
    def flow() -> None:
        once()

    with app.worker():
        err = _failed(client.start(flow))
    assert calls == [1]
    assert err.error_type == "RuntimeError"


def test_retry_keeps_earlier_completed_steps(app, client):
    calls = []

    @app.step()
    def first() -> int:
        calls.append("first")
        return 1

    @app.step(retry=_fast(2))
    def second(x: int) -> int:
        calls.append("second")
        if calls.count("second") == 1:
            raise ConnectionError("blip")
        return x + 1

    @app.workflow()
    def flow() -> int:
        return second(first())

    with app.worker():
        assert client.start(flow).result(timeout=10) == 2
    assert calls == ["first", "second", "second"]


def test_backoff_delays_grow_by_factor(virtual_app, durable_env):
    # On the virtual clock (durable.testing): backoffs of minutes, measured exactly.
    app = virtual_app
    times = []

    @app.step(retry=Retry(attempts=3, initial_delay=60, backoff=2.0, max_delay=3600, jitter=False))
    def flaky() -> str:
        times.append(t.clock.now())
        if len(times) < 3:
            raise ValueError("again")
        return "ok"

    @app.workflow()
    def flow() -> str:
        return flaky()

    t = durable_env(app)
    assert t.client.start(flow).result(timeout=15) == "ok"
    gap1, gap2 = times[1] - times[0], times[2] - times[1]
    assert 60 <= gap1 < 60 + 5, gap1
    assert 120 <= gap2 < 120 + 5, gap2


def test_backoff_is_capped_by_max_delay(virtual_app, durable_env):
    app = virtual_app
    times = []

    @app.step(retry=Retry(attempts=3, initial_delay=60, backoff=20.0, max_delay=120, jitter=False))
    def flaky() -> str:
        times.append(t.clock.now())
        if len(times) < 3:
            raise ValueError("again")
        return "ok"

    @app.workflow()
    def flow() -> str:
        return flaky()

    t = durable_env(app)
    assert t.client.start(flow).result(timeout=15) == "ok"
    gap2 = times[2] - times[1]
    assert 120 <= gap2 < 120 + 5, gap2  # without the cap it would be 1200 s


def test_run_is_sleeping_during_retry_backoff(virtual_app, durable_env, wait_status):
    app = virtual_app
    calls = []

    @app.step(retry=Retry(attempts=2, initial_delay=3600, jitter=False))
    def flaky() -> str:
        calls.append(1)
        if len(calls) == 1:
            raise ValueError("later")
        return "ok"

    @app.workflow()
    def flow() -> str:
        return flaky()

    t = durable_env(app)
    h = t.client.start(flow)
    wait_status(h, Status.SLEEPING, timeout=5)
    assert len(calls) == 1
    assert h.info().wake_at is not None
    assert h.result(timeout=10) == "ok"
    assert len(calls) == 2


def test_non_retryable_type_fails_at_once(app, client):
    calls = []

    @app.step(retry=_fast(5, non_retryable=(KeyError,)))
    def lookup() -> None:
        calls.append(1)
        raise KeyError("missing")

    @app.workflow()
    def flow() -> None:
        lookup()

    with app.worker():
        h = client.start(flow)
        err = _failed(h)
    assert calls == [1]
    assert err.error_type == "KeyError"
    failed = [e for e in h.events() if e.type == "step_failed"]
    assert [e.data.get("retryable") for e in failed] == [False]


def test_non_retryable_matches_subclasses(app, client):
    calls = []

    @app.step(retry=_fast(5, non_retryable=(LookupError,)))
    def lookup() -> None:
        calls.append(1)
        raise IndexError("out of range")

    @app.workflow()
    def flow() -> None:
        lookup()

    with app.worker():
        err = _failed(client.start(flow))
    assert calls == [1]
    assert err.error_type == "IndexError"


def test_permanent_error_fails_step_at_once(app, client):
    calls = []

    @app.step(retry=_fast(5))
    def charge() -> None:
        calls.append(1)
        raise durable.PermanentError("card declined")

    @app.workflow()
    def flow() -> None:
        charge()

    with app.worker():
        err = _failed(client.start(flow))
    assert calls == [1]
    assert err.error_type == "PermanentError"
    assert "card declined" in err.error_message


def test_workflow_can_catch_a_failed_step_and_replay_raises_it_again(app, client):
    calls = []

    @app.step()
    def bad() -> None:
        calls.append(1)
        raise ValueError("nope")

    @app.workflow()
    def flow() -> str:
        try:
            bad()
        except ValueError as exc:
            caught = f"caught {exc}"
        durable.sleep(0.1)  # forces the code to re-run against the journal
        return caught

    with app.worker():
        h = client.start(flow)
        assert h.result(timeout=10) == "caught nope"
    assert calls == [1]
    assert client.replay(h.id) == "caught nope"
    assert calls == [1]


# ---------------------------------------------------------------- step timeout


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_step_timeout_is_retried_like_any_error(app, client, kind):
    calls = []

    if kind == "sync":

        @app.step(name="slow", timeout=0.3, retry=_fast(2))
        def slow() -> str:
            calls.append(1)
            if len(calls) == 1:
                time.sleep(1.5)
            return "fast enough"

    else:

        @app.step(name="slow", timeout=0.3, retry=_fast(2))
        async def slow() -> str:
            calls.append(1)
            if len(calls) == 1:
                await asyncio.sleep(1.5)
            return "fast enough"

    @app.workflow()
    def flow() -> str:
        return slow()

    with app.worker():
        h = client.start(flow)
        assert h.result(timeout=10) == "fast enough"

    assert len(calls) == 2
    failed = [e for e in h.events() if e.type == "step_failed"]
    assert len(failed) == 1
    assert "TimeoutError" in repr(failed[0].data)
    assert failed[0].data.get("retryable") is True
    completed = [e for e in h.events() if e.type == "step_completed"]
    assert [e.attempt for e in completed] == [2]


def test_step_timeout_without_retry_fails_run_with_timeout_error(app, client):
    @app.step(timeout=0.2)
    async def slow() -> None:
        await asyncio.sleep(5)

    @app.workflow()
    def flow() -> None:
        slow()

    with app.worker():
        start = time.monotonic()
        err = _failed(client.start(flow))
        assert time.monotonic() - start < 4
    assert err.error_type == "TimeoutError"


# ---------------------------------------------------------------- workflow timeout


def test_workflow_timeout_fails_a_sleeping_run(virtual_app, durable_env):
    app = virtual_app

    @app.workflow(timeout=3600)
    def flow() -> str:
        durable.sleep(30 * 86400)
        return "woke"

    t = durable_env(app)
    h = t.client.start(flow)
    err = _failed(h)
    assert 3600 - 5 <= t.clock.skipped < 30 * 86400  # ended at the deadline, not the wake-up
    assert err.error_type == "TimeoutError"
    info = h.info()
    assert info.status == Status.FAILED
    assert info.error_type == "TimeoutError"
    assert h.events()[-1].type == "run_failed"


def test_workflow_timeout_fails_a_busy_run(app, client):
    calls = []

    @app.step()
    def tick(i: int) -> int:
        calls.append(i)
        time.sleep(0.05)
        return i

    @app.workflow(timeout=0.6)
    def flow() -> int:
        i = 0
        while i < 1000:
            i = tick(i) + 1
        return i

    with app.worker():
        h = client.start(flow)
        err = _failed(h)
    assert err.error_type == "TimeoutError"
    assert 0 < len(calls) < 1000


def test_workflow_timeout_fails_a_run_waiting_for_a_signal(virtual_app, durable_env):
    app = virtual_app

    @app.workflow(timeout=3600)
    def flow() -> object:
        return durable.wait_signal("never")

    t = durable_env(app)
    err = _failed(t.client.start(flow))
    assert err.error_type == "TimeoutError"
    assert t.clock.skipped >= 3600 - 5  # ended at the deadline, an hour on the virtual clock


# ---------------------------------------------------------------- workflow exceptions


def test_exception_in_workflow_code_fails_the_run_once(app, client):
    runs = []
    calls = []

    @app.step()
    def ok() -> int:
        calls.append(1)
        return 1

    @app.workflow()
    def flow() -> None:
        runs.append(1)
        ok()
        raise RuntimeError("workflow bug")

    with app.worker():
        h = client.start(flow)
        err = _failed(h)
    assert err.error_type == "RuntimeError"
    assert err.error_message == "workflow bug"
    assert runs == [1]
    assert calls == [1]
    info = h.info()
    assert info.status == Status.FAILED
    assert info.attempt == 1
    assert info.error_type == "RuntimeError"
    assert "workflow bug" in (info.error or "")
    types = [e.type for e in h.events()]
    assert types.count("run_failed") == 1
    assert types[-1] == "run_failed"


def test_workflow_with_retry_runs_again_after_an_exception(app, client):
    runs = []

    @app.workflow(retry=_fast(3))
    def flow() -> str:
        runs.append(1)
        if len(runs) < 3:
            raise RuntimeError(f"try {len(runs)}")
        return "third time"

    with app.worker():
        h = client.start(flow)
        assert h.result(timeout=10) == "third time"
    assert len(runs) == 3
    info = h.info()
    assert info.status == Status.COMPLETED
    assert info.attempt == 3
    assert [e.type for e in h.events()].count("run_retry_scheduled") == 2


def test_workflow_retry_exhausted_fails_the_run(app, client):
    runs = []

    @app.workflow(retry=_fast(2))
    def flow() -> None:
        runs.append(1)
        raise RuntimeError("always")

    with app.worker():
        err = _failed(client.start(flow))
    assert len(runs) == 2
    assert err.error_type == "RuntimeError"


def test_step_key_is_stable_across_attempts(app, client):
    keys = []

    @app.step(retry=_fast(3))
    def flaky() -> str:
        info = durable.info()
        keys.append((info.step_key, info.step_attempt))
        if len(keys) < 3:
            raise ValueError("again")
        return info.step_key

    @app.workflow()
    def flow() -> str:
        return flaky()

    with app.worker():
        h = client.start(flow)
        assert h.result(timeout=10) == f"{h.id}:1"
    assert keys == [(f"{h.id}:1", 1), (f"{h.id}:1", 2), (f"{h.id}:1", 3)]
