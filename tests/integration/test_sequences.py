"""``app.sequence``: chained steps with journaled ``on_success``/``on_error`` handlers, and the
workflow's ``retry=``, ``timeout=`` and ``queue=`` honoured (on both backends). A handler run
once across a worker killed with SIGKILL is in ``test_sequence_crash.py``."""

from __future__ import annotations

import time

import pytest

import durable
from durable import Retry, RunFailedError, SequenceFailure, Status

FAST = Retry(attempts=3, initial_delay=0.01, backoff=1.0, jitter=False)


def _completed(handle: durable.RunHandle) -> list[str]:
    return [e.name or "" for e in handle.events() if e.type == "step_completed"]


def _fails(handle: durable.RunHandle) -> RunFailedError:
    with pytest.raises(RunFailedError) as caught:
        handle.result(timeout=20)
    return caught.value


# ---------------------------------------------------------------- on_success


def test_on_success_gets_the_last_result_once_and_the_result_stays(app, client):
    seen: list[int] = []

    @app.step(name="inc")
    def inc(x: int) -> int:
        return x + 1

    @app.step(name="double")
    def double(x: int) -> int:
        return x * 2

    def done(result: int) -> str:  # a plain function: run as the step "pipe.on_success"
        seen.append(result)
        return "ignored"

    app.sequence("pipe", [inc, double], on_success=done)
    with app.worker():
        h = client.start("pipe", 3)
        assert h.result(timeout=20) == 8
    assert seen == [8]
    assert _completed(h) == ["inc", "double", "pipe.on_success"]
    assert client.replay(h.id) == 8
    assert seen == [8], "a replay ran the handler again"


def test_a_step_can_be_a_handler_and_keeps_its_own_name(app, client):
    seen: list[object] = []

    @app.step(name="only")
    def only(x: str) -> str:
        return x.upper()

    @app.step(name="notify")
    def notify(result: str) -> None:
        seen.append((result, durable.info().step_name))

    app.sequence("shout", [only], on_success=notify)
    with app.worker():
        assert client.start("shout", "hi").result(timeout=20) == "HI"
    assert seen == [("HI", "notify")]


# ---------------------------------------------------------------- on_error


def test_on_error_gets_the_failure_once_and_the_run_still_fails(app, client):
    successes: list[object] = []
    errors: list[SequenceFailure] = []
    ran: list[str] = []

    @app.step(name="fetch")
    def fetch(x: int) -> int:
        ran.append("fetch")
        return x

    @app.step(name="parse")
    def parse(x: int) -> int:
        ran.append("parse")
        raise durable.PermanentError(f"bad record {x}")

    @app.step(name="store")
    def store(x: int) -> int:
        ran.append("store")
        return x

    app.sequence(
        "ingest",
        [fetch, parse, store],
        on_success=successes.append,
        on_error=errors.append,
    )
    with app.worker():
        h = client.start("ingest", 7)
        err = _fails(h)
    assert err.error_type == "PermanentError" and "bad record 7" in str(err)
    assert ran == ["fetch", "parse"]
    assert successes == []
    assert errors == [
        SequenceFailure(
            sequence="ingest",
            step="parse",
            error_type="PermanentError",
            message="bad record 7",
            run_id=h.id,
            attempt=1,
        )
    ]
    assert _completed(h) == ["fetch", "ingest.on_error"]
    assert h.status() == Status.FAILED


def test_on_error_runs_after_the_retries_of_the_sequence(app, client):
    attempts: list[int] = []
    errors: list[SequenceFailure] = []

    @app.step(name="flaky")
    def flaky(x: int) -> int:
        attempts.append(durable.info().attempt)
        raise ValueError("down")

    app.sequence("retried", [flaky], on_error=errors.append, retry=FAST)
    with app.worker():
        h = client.start("retried", 1)
        err = _fails(h)
    assert err.error_type == "ValueError"
    assert attempts == [1, 2, 3]
    assert [(f.step, f.error_type, f.message, f.attempt) for f in errors] == [
        ("flaky", "ValueError", "down", 3)
    ]
    assert h.info().attempt == 3


def test_a_run_that_succeeds_on_a_retry_calls_on_success_not_on_error(app, client):
    successes: list[int] = []
    errors: list[SequenceFailure] = []

    @app.step(name="first_try_fails")
    def first_try_fails(x: int) -> int:
        if durable.info().attempt == 1:
            raise ValueError("not yet")
        return x * 10

    app.sequence(
        "second_time",
        [first_try_fails],
        on_success=successes.append,
        on_error=errors.append,
        retry=FAST,
    )
    with app.worker():
        assert client.start("second_time", 4).result(timeout=20) == 40
    assert successes == [40]
    assert errors == []


def test_a_run_retry_given_at_start_overrides_the_sequence_retry(app, client):
    errors: list[SequenceFailure] = []

    @app.step(name="always")
    def always(x: int) -> int:
        raise ValueError("no")

    app.sequence("overridden", [always], on_error=errors.append, retry=FAST)
    with app.worker():
        h = client.start("overridden", 1, retry=Retry(attempts=1))
        _fails(h)
    assert [f.attempt for f in errors] == [1]


def test_a_failing_on_success_is_an_error_of_the_sequence(app, client):
    errors: list[SequenceFailure] = []

    @app.step(name="fine")
    def fine(x: int) -> int:
        return x

    def broken(result: int) -> None:
        raise KeyError("mailer")

    app.sequence("notify_fails", [fine], on_success=broken, on_error=errors.append)
    with app.worker():
        h = client.start("notify_fails", 1)
        err = _fails(h)
    assert err.error_type == "KeyError"
    assert [(f.step, f.error_type) for f in errors] == [("notify_fails.on_success", "KeyError")]


def test_a_failing_on_error_leaves_the_sequence_error_as_the_runs(app, client):
    @app.step(name="boom")
    def boom(x: int) -> int:
        raise ValueError("the real error")

    def handler(failure: SequenceFailure) -> None:
        raise RuntimeError("handler broke")

    app.sequence("double_fault", [boom], on_error=handler)
    with app.worker():
        h = client.start("double_fault", 1)
        err = _fails(h)
    assert err.error_type == "ValueError" and "the real error" in str(err)
    failed = [e.name for e in h.events() if e.type == "step_failed"]
    assert failed == ["boom", "double_fault.on_error"]


# ---------------------------------------------------------------- queue, timeout


def test_queue_is_honoured(app, client):
    @app.step(name="where")
    def where(x: int) -> str:
        return durable.info().queue

    app.sequence("queued_seq", [where], queue="batch")
    h = client.start("queued_seq", 1)
    assert h.info().queue == "batch"
    with app.worker(queues=["default"]):
        time.sleep(0.5)
        assert h.status() == Status.PENDING
    with app.worker(queues=["batch"]):
        assert h.result(timeout=20) == "batch"


def test_timeout_is_honoured_and_no_handler_runs(app, client):
    errors: list[SequenceFailure] = []

    @app.step(name="slow")
    def slow(x: int) -> int:
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and not durable.cancelled():
            time.sleep(0.02)
        return x

    app.sequence("too_slow", [slow], on_error=errors.append, timeout=0.5)
    with app.worker():
        h = client.start("too_slow", 1)
        err = _fails(h)
    assert err.error_type == "TimeoutError"
    assert errors == []


def test_the_first_step_receives_none_without_input(app, client):
    @app.step(name="starts")
    def starts(x: None) -> str:
        return f"got {x!r}"

    app.sequence("no_input", [starts])
    with app.worker():
        assert client.start("no_input").result(timeout=20) == "got None"


def test_a_plain_call_outside_a_run_calls_the_handlers_too(app):
    errors: list[SequenceFailure] = []

    @app.step(name="plain_fail")
    def plain_fail(x: int) -> int:
        raise ValueError("plain")

    seq = app.sequence("plain_seq", [plain_fail], on_error=errors.append)
    with pytest.raises(ValueError, match="plain"):
        seq(1)
    assert [(f.step, f.run_id, f.attempt) for f in errors] == [("plain_fail", "", 1)]


# ---------------------------------------------------------------- bad input, at definition


@pytest.fixture
def bare(tmp_path) -> durable.App:
    """An App whose log is never opened: definitions write nothing."""
    return durable.App("bad", database=f"sqlite:///{tmp_path}/never.db")


def test_bad_definitions_are_clear_errors(bare, tmp_path):
    @bare.step(name="ok")
    def ok(x: int) -> int:
        return x

    @bare.workflow(name="wf")
    def wf(x: int) -> int:
        return x

    def no_args() -> None: ...

    def two_args(a: int, b: int) -> None: ...

    cases = [
        (ValueError, "at least one step", dict(steps=[])),
        (TypeError, "is not a step", dict(steps=[ok, len])),
        (TypeError, "is a workflow, not a step", dict(steps=[wf])),
        (TypeError, "a list of steps", dict(steps="ok")),
        (TypeError, "a list of steps", dict(steps=ok)),
        (TypeError, "on_success must be a step or a function", dict(on_success=3)),
        (TypeError, "on_error must be a step or a function", dict(on_error="log")),
        (TypeError, "not the workflow", dict(on_error=wf)),
        (TypeError, "one positional argument", dict(on_success=no_args)),
        (TypeError, "one positional argument", dict(on_error=two_args)),
        (TypeError, "durable.Retry", dict(retry=3)),
        (TypeError, "queue must be a queue name", dict(queue=5)),
        (ValueError, "timeout must be positive", dict(timeout=0)),
        (TypeError, "timeout must be seconds", dict(timeout="5")),
    ]
    for error, text, kwargs in cases:
        kwargs.setdefault("steps", [ok])
        with pytest.raises(error, match=text):
            bare.sequence("s", **kwargs)
        assert "s" not in bare.registry.workflows, kwargs
    with pytest.raises(TypeError, match="non-empty str"):
        bare.sequence("", [ok])
    assert set(bare.registry.steps) == {"ok"}, "a refused sequence registered a handler"
    bare.sequence("s", [ok], on_success=print)
    with pytest.raises(ValueError, match="already registered"):
        bare.sequence("s", [ok], on_error=print)
    assert "s.on_error" not in bare.registry.steps
    assert not (tmp_path / "never.db").exists()


def test_async_steps_and_an_async_handler_in_a_sequence(app, client):
    seen: list[str] = []

    @app.step(name="aupper")
    async def aupper(x: str) -> str:
        return x.upper()

    @app.step(name="exclaim")
    def exclaim(x: str) -> str:
        return x + "!"

    async def done(result: str) -> None:
        seen.append(result)

    app.sequence("mixed", [aupper, exclaim], on_success=done)
    with app.worker():
        assert client.start("mixed", "hey").result(timeout=20) == "HEY!"
    assert seen == ["HEY!"]
