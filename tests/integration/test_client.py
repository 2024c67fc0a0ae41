"""Starting and managing runs through ``app.client()`` and ``durable.Client(url)``."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime

import pytest

import durable
from durable import (
    DurableError,
    NonDeterminismError,
    RunCancelledError,
    RunFailedError,
    RunNotFoundError,
    Status,
    UnknownWorkflowError,
)

# ---------------------------------------------------------------- start


def test_start_by_object_and_by_name(app, client):
    calls = []

    @app.step()
    def hello(name: str) -> str:
        calls.append(name)
        return f"hello {name}"

    @app.workflow(name="greet")
    def greet(name: str) -> str:
        return hello(name)

    with app.worker():
        a = client.start(greet, "a")
        b = client.start("greet", "b")
        assert a.result(timeout=10) == "hello a"
        assert b.result(timeout=10) == "hello b"
    assert a.id != b.id
    assert isinstance(a.id, str)
    assert sorted(calls) == ["a", "b"]
    assert a.info().workflow == b.info().workflow == "greet"


def test_same_id_returns_the_same_run(app, client):
    calls = []

    @app.step()
    def work(x: int) -> int:
        calls.append(x)
        return x

    @app.workflow()
    def flow(x: int) -> int:
        return work(x)

    h1 = client.start(flow, 1, id="order-1")
    h2 = client.start(flow, 1, id="order-1")
    assert h1.id == h2.id == "order-1"
    with app.worker():
        assert h1.result(timeout=10) == 1
        h3 = client.start(flow, 1, id="order-1")  # after completion too
        assert h3.id == "order-1"
        assert h3.result(timeout=10) == 1
    assert calls == [1]
    assert [r.id for r in client.list_runs()] == ["order-1"]
    assert [e.type for e in h1.events()].count("run_started") == 1


def test_same_id_for_another_workflow_raises(app, client):
    @app.workflow()
    def one() -> int:
        return 1

    @app.workflow()
    def two() -> int:
        return 2

    client.start(one, id="shared")
    with pytest.raises(DurableError):
        client.start(two, id="shared")
    runs = client.list_runs()
    assert len(runs) == 1
    assert runs[0].workflow.endswith("one")


def test_delay_keeps_run_pending_until_due(virtual_app, durable_env):
    # On the virtual clock (durable.testing): an hour's delay, measured on that clock.
    ran_at = []

    @virtual_app.workflow()
    def flow() -> str:
        ran_at.append(t.clock.now())
        return "late"

    t = durable_env(virtual_app)
    start = t.clock.now()
    h = t.client.start(flow, delay=3600)
    t.clock.advance(0.4 * 3600)  # wakes the worker: the run is not due yet
    time.sleep(0.4)
    assert h.status() == Status.PENDING
    assert ran_at == []
    assert h.info().wake_at is not None
    assert h.result(timeout=10) == "late"
    assert ran_at[0] - start >= 3600


def test_priority_runs_higher_first_fifo_within_priority(app, client):
    order = []

    @app.step()
    def record(label: str) -> None:
        order.append(label)

    @app.workflow()
    def flow(label: str) -> str:
        record(label)
        return label

    plan = [("p0-a", 0), ("p5-a", 5), ("p0-b", 0), ("p10", 10), ("p5-b", 5), ("p0-c", 0)]
    handles = []
    for label, priority in plan:
        handles.append(client.start(flow, label, priority=priority))
        time.sleep(0.01)  # distinct creation instants
    assert handles[3].info().priority == 10
    assert handles[0].info().priority == 0

    with app.worker(concurrency=1):
        for h in handles:
            h.result(timeout=15)
    assert order == ["p10", "p5-a", "p5-b", "p0-a", "p0-b", "p0-c"]


def test_queue_routes_runs_to_workers_of_that_queue(app, client):
    @app.workflow(queue="reports")
    def report() -> str:
        return "report"

    @app.workflow()
    def flow() -> str:
        return "flow"

    h_default = client.start(flow)
    h_payments = client.start(flow, queue="payments")
    h_reports = client.start(report)
    assert h_default.info().queue == "default"
    assert h_payments.info().queue == "payments"
    assert h_reports.info().queue == "reports"

    with app.worker(queues=["default"]):
        assert h_default.result(timeout=10) == "flow"
        time.sleep(0.5)
        assert h_payments.status() == Status.PENDING
        assert h_reports.status() == Status.PENDING
    with app.worker(queues=["payments", "reports"]):
        assert h_payments.result(timeout=10) == "flow"
        assert h_reports.result(timeout=10) == "report"


# ---------------------------------------------------------------- inspecting


def test_get_status_info_events(app, client):
    @app.step(name="double")
    def double(x: int) -> int:
        return 2 * x

    @app.workflow(name="doubler")
    def flow(x: int) -> int:
        return double(x)

    before = datetime.now(UTC)
    h = client.start(flow, 4)
    assert h.status() == Status.PENDING
    assert h.status() == "pending"  # Status is a str enum
    with app.worker():
        assert h.result(timeout=10) == 8

    g = client.get(h.id)
    assert g.id == h.id
    assert g.result(timeout=5) == 8
    assert g.status() is Status.COMPLETED
    info = g.info()
    assert isinstance(info, durable.RunInfo)
    assert info.id == h.id
    assert info.workflow == "doubler"
    assert info.status == Status.COMPLETED
    assert info.queue == "default"
    assert info.attempt == 1
    assert info.error is None
    assert info.progress == 1.0
    assert info.created_at.tzinfo is not None
    assert before.timestamp() - 5 <= info.created_at.timestamp() <= info.updated_at.timestamp()
    assert info.updated_at.timestamp() <= datetime.now(UTC).timestamp() + 5

    events = g.events()
    assert all(isinstance(e, durable.LogEvent) for e in events)
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    assert events[0].type == "run_started"
    assert events[-1].type == "run_completed"
    step = [e for e in events if e.type == "step_completed"]
    assert [(e.name, e.position, e.attempt) for e in step] == [("double", 1, 1)]
    assert all(e.at.tzinfo is not None for e in events)
    assert [e.at for e in events] == sorted(e.at for e in events)


def test_result_timeout_raises_builtin_timeout_error(app, client):
    @app.workflow()
    def flow() -> None:
        durable.sleep(30)

    with app.worker():
        h = client.start(flow)
        start = time.monotonic()
        with pytest.raises(TimeoutError):
            h.result(timeout=0.3)
        assert time.monotonic() - start < 3


def test_list_runs_filters(app, client, wait_until):
    @app.workflow(name="alpha")
    def alpha() -> int:
        return 1

    @app.workflow(name="beta")
    def beta() -> None:
        raise ValueError("beta fails")

    with app.worker(queues=["default"]):
        a1 = client.start(alpha)
        a2 = client.start(alpha)
        b1 = client.start(beta)
        a1.result(timeout=10)
        a2.result(timeout=10)
        with pytest.raises(RunFailedError):
            b1.result(timeout=10)
        a3 = client.start(alpha, queue="elsewhere")  # no worker for it: stays pending

    def ids(runs):
        return {r.id for r in runs}

    assert ids(client.list_runs()) == {a1.id, a2.id, b1.id, a3.id}
    assert all(isinstance(r, durable.RunInfo) for r in client.list_runs())
    assert ids(client.list_runs(status=Status.COMPLETED)) == {a1.id, a2.id}
    assert ids(client.list_runs(status="failed")) == {b1.id}
    assert ids(client.list_runs(status=Status.PENDING)) == {a3.id}
    assert ids(client.list_runs(workflow="alpha")) == {a1.id, a2.id, a3.id}
    assert ids(client.list_runs(workflow="beta")) == {b1.id}
    assert ids(client.list_runs(queue="elsewhere")) == {a3.id}
    assert ids(client.list_runs(queue="default")) == {a1.id, a2.id, b1.id}
    assert ids(client.list_runs(workflow="alpha", status=Status.COMPLETED)) == {a1.id, a2.id}
    assert client.list_runs(workflow="gamma") == []
    assert len(client.list_runs(limit=2)) == 2
    assert ids(client.list_runs(limit=100)) == ids(client.list_runs())


# ---------------------------------------------------------------- cancel


def test_cancel_a_running_run(app, client, wait_until):
    entered = threading.Event()
    release = threading.Event()
    calls = []

    @app.step(name="blocking")
    def blocking() -> str:
        calls.append("blocking")
        entered.set()
        while not durable.cancelled():  # told by the cancel; Python cannot stop a thread
            release.wait(0.01)
        calls.append("told")
        return "stopped"

    @app.step(name="after")
    def after() -> None:
        calls.append("after")

    @app.workflow()
    def flow() -> None:
        blocking()
        after()

    with app.worker():
        h = client.start(flow)
        assert entered.wait(10)
        assert h.status() == Status.RUNNING
        assert h.cancel() is durable.CancelOutcome.REQUESTED
        with pytest.raises(RunCancelledError):
            h.result(timeout=5)
        assert h.cancel() is durable.CancelOutcome.FINISHED

    assert calls == ["blocking", "told"]
    assert h.status() == Status.CANCELLED
    events = h.events()
    assert events[-1].type == "run_cancelled"
    assert [e.name for e in events if e.type == "step_completed"] == ["blocking"]


def test_a_body_that_ignores_a_cancel_is_abandoned_after_the_grace(make_app, wait_until):
    app = make_app(cancel_grace=0.2)
    release = threading.Event()
    entered = threading.Event()
    late: list[BaseException] = []

    @app.step(name="stubborn")
    def stubborn() -> str:
        entered.set()
        release.wait(10)
        try:
            durable.output("late", 1)
        except durable.RunCancelledError as exc:
            late.append(exc)
        return "late"

    @app.workflow()
    def flow() -> None:
        stubborn()

    client = app.client()
    with app.worker():
        h = client.start(flow)
        assert entered.wait(10)
        h.cancel()
        with pytest.raises(RunCancelledError):
            h.result(timeout=5)
        release.set()
        wait_until(lambda: late, what="the late write to be refused")
    types = [e.type for e in h.events()]
    assert types[-1] == "run_cancelled"
    assert "output" not in types and "step_completed" not in types


@pytest.mark.parametrize("grace", [-1, float("nan"), float("inf"), "10", None, True])
def test_a_bad_cancel_grace_is_refused(grace):
    with pytest.raises((ValueError, TypeError), match="cancel_grace"):
        durable.App("bad", database="sqlite:///never.db", cancel_grace=grace)


def test_cancel_a_sleeping_run_at_once(app, client, wait_status):
    @app.workflow()
    def flow() -> None:
        durable.sleep(60)

    with app.worker():
        h = client.start(flow)
        wait_status(h, Status.SLEEPING)
        client.cancel(h.id)
        assert h.status() == Status.CANCELLED
        with pytest.raises(RunCancelledError):
            h.result(timeout=5)
    assert h.events()[-1].type == "run_cancelled"


def test_cancel_a_run_waiting_for_a_signal(app, client, wait_until):
    @app.workflow()
    def flow() -> object:
        return durable.wait_signal("go")

    with app.worker():
        h = client.start(flow)
        wait_until(lambda: any(e.type == "wait_started" for e in h.events()), what="wait")
        client.cancel(h.id)
        with pytest.raises(RunCancelledError):
            h.result(timeout=5)
    assert h.status() == Status.CANCELLED


def test_cancel_a_pending_run(app, client):
    @app.workflow()
    def flow() -> int:
        return 1

    h = client.start(flow)
    h.cancel()
    assert h.status() == Status.CANCELLED
    with app.worker():
        with pytest.raises(RunCancelledError):
            h.result(timeout=5)
        time.sleep(0.3)
    assert h.status() == Status.CANCELLED


# ---------------------------------------------------------------- resume


def test_resume_a_failed_run_continues_from_its_journal(app, client):
    calls = []
    broken = [True]

    @app.step()
    def first() -> int:
        calls.append("first")
        return 10

    @app.step()
    def second(x: int) -> int:
        calls.append("second")
        if broken[0]:
            raise ValueError("not yet")
        return x + 1

    @app.workflow()
    def flow() -> int:
        return second(first())

    with app.worker():
        h = client.start(flow)
        with pytest.raises(RunFailedError):
            h.result(timeout=10)
        broken[0] = False
        r = client.resume(h.id)
        assert r.id == h.id
        assert r.result(timeout=10) == 11

    assert calls == ["first", "second", "second"]
    info = h.info()
    assert info.status == Status.COMPLETED
    assert info.attempt == 2
    types = [e.type for e in h.events()]
    assert "run_resumed" in types
    assert types.index("run_failed") < types.index("run_resumed")
    assert types[-1] == "run_completed"


def test_resume_a_cancelled_run(app, client, wait_until):
    calls = []

    @app.step()
    def before() -> int:
        calls.append("before")
        return 1

    @app.workflow()
    def flow() -> object:
        before()
        return durable.wait_signal("go")

    with app.worker():
        h = client.start(flow)
        wait_until(lambda: any(e.type == "wait_started" for e in h.events()), what="wait")
        client.cancel(h.id)
        with pytest.raises(RunCancelledError):
            h.result(timeout=5)
        r = client.resume(h.id)
        assert r.id == h.id
        client.signal(h.id, "go", {"ok": True})
        assert r.result(timeout=10) == {"ok": True}
    assert calls == ["before"]


def test_resume_a_completed_run_does_nothing(app, client):
    calls = []

    @app.workflow()
    def flow() -> int:
        calls.append(1)
        return 5

    with app.worker():
        h = client.start(flow)
        assert h.result(timeout=10) == 5
        n_events = len(h.events())
        r = client.resume(h.id)
        assert r.id == h.id
        assert r.result(timeout=5) == 5
        time.sleep(0.3)
    assert calls == [1]
    assert len(h.events()) == n_events
    assert h.info().attempt == 1


def test_resume_after_a_code_change_that_breaks_the_journal_blocks_the_run(
    make_app, wait_until, wait_status
):
    old = make_app()
    calls = []

    @old.step(name="a")
    def a() -> int:
        return 1

    @old.step(name="b")
    def b() -> int:
        raise ValueError("fails, to be resumed")

    @old.workflow(name="flow")
    def flow() -> int:
        return a() + b()

    with old.worker():
        h = old.client().start(flow)
        with pytest.raises(RunFailedError):
            h.result(timeout=10)

    new = make_app()

    @new.step(name="renamed")
    def renamed() -> int:
        calls.append("renamed")
        return 1

    @new.workflow(name="flow")
    def flow2() -> int:
        return renamed()

    with new.worker():
        r = new.client().resume(h.id)
        wait_status(r, Status.BLOCKED)
    assert r.info().error_type == "NonDeterminismError"
    assert calls == []


# ---------------------------------------------------------------- fork


def test_fork_keeps_outcomes_before_the_given_step(app, client):
    calls = []

    @app.step(name="a")
    def a() -> str:
        calls.append("a")
        return f"a{calls.count('a')}"

    @app.step(name="b")
    def b() -> str:
        calls.append("b")
        return f"b{calls.count('b')}"

    @app.step(name="c")
    def c() -> str:
        calls.append("c")
        return f"c{calls.count('c')}"

    @app.workflow()
    def flow() -> str:
        return a() + b() + c()

    with app.worker():
        h = client.start(flow)
        assert h.result(timeout=10) == "a1b1c1"
        f = client.fork(h.id, from_step=2)
        assert f.id != h.id
        assert f.result(timeout=10) == "a1b2c2"
        g = client.fork(h.id, from_step=3)
        assert g.result(timeout=10) == "a1b1c3"

    assert calls.count("a") == 1
    assert calls.count("b") == 2
    assert calls.count("c") == 3
    assert h.result(timeout=1) == "a1b1c1"  # the original is untouched
    assert f.info().workflow == h.info().workflow
    forked = [(e.name, e.position) for e in f.events() if e.type == "step_completed"]
    assert forked == [("a", 1), ("b", 2), ("c", 3)]


def test_fork_of_a_failed_run_after_a_fix(app, client):
    broken = [True]
    calls = []

    @app.step()
    def fetch() -> int:
        calls.append("fetch")
        return 3

    @app.step()
    def compute(x: int) -> int:
        calls.append("compute")
        if broken[0]:
            raise ValueError("bug")
        return x * 3

    @app.workflow()
    def flow() -> int:
        return compute(fetch())

    with app.worker():
        h = client.start(flow)
        with pytest.raises(RunFailedError):
            h.result(timeout=10)
        broken[0] = False
        f = client.fork(h.id, from_step=2)
        assert f.result(timeout=10) == 9
    assert calls == ["fetch", "compute", "compute"]
    assert h.status() == Status.FAILED


# ---------------------------------------------------------------- replay


def test_replay_runs_no_step_and_returns_the_result(app, client):
    calls = []

    @app.step()
    def side_effect(x: int) -> int:
        calls.append(x)
        return x + 1

    @app.workflow()
    def flow(x: int) -> int:
        y = side_effect(x)
        durable.sleep(0.05)
        return side_effect(y)

    with app.worker():
        h = client.start(flow, 1)
        assert h.result(timeout=10) == 3
    assert calls == [1, 2]
    n_events = len(h.events())
    assert client.replay(h.id) == 3
    assert calls == [1, 2]
    assert len(h.events()) == n_events  # replay writes nothing


def _completed_then_changed(make_app, change):
    """Run a 2-step workflow "flow" to completion, then build new code with ``change``."""
    old = make_app()

    @old.step(name="a")
    def a() -> int:
        return 1

    @old.step(name="b")
    def b() -> int:
        return 2

    @old.workflow(name="flow")
    def flow() -> int:
        return a() + b()

    with old.worker():
        h = old.client().start(flow)
        assert h.result(timeout=10) == 3

    new = make_app()
    calls = []

    @new.step(name="a")
    def a2() -> int:
        calls.append("a")
        return 1

    @new.step(name="b")
    def b2() -> int:
        calls.append("b")
        return 2

    @new.step(name="z")
    def z() -> int:
        calls.append("z")
        return 9

    bodies = {
        "renamed": lambda: a2() + z(),
        "reordered": lambda: b2() + a2(),
        "now_inserted": lambda: (durable.now(), a2() + b2())[1],
        "fewer_steps": lambda: a2(),
    }
    body = bodies[change]

    @new.workflow(name="flow")
    def flow2() -> int:
        return body()

    return new, h, calls


@pytest.mark.parametrize("change", ["renamed", "reordered", "now_inserted", "fewer_steps"])
def test_replay_raises_nondeterminism_on_changed_code(make_app, change):
    new, h, calls = _completed_then_changed(make_app, change)
    with pytest.raises(NonDeterminismError):
        new.client().replay(h.id)
    assert calls == []


def test_replay_accepts_unchanged_code_from_a_new_app(make_app):
    _new, h, calls = _completed_then_changed(make_app, "reordered")
    # Same journal, but with "flow" registered identically (a, b): no error.
    same = make_app()

    @same.step(name="a")
    def a() -> int:
        calls.append("a")
        return 1

    @same.step(name="b")
    def b() -> int:
        calls.append("b")
        return 2

    @same.workflow(name="flow")
    def flow() -> int:
        return a() + b()

    assert same.client().replay(h.id) == 3
    assert calls == []


# ---------------------------------------------------------------- signal


def test_signal_delivers_payload(app, client):
    @app.workflow()
    def flow() -> object:
        return durable.wait_signal("approve", timeout=30)

    with app.worker():
        h = client.start(flow)
        client.signal(h.id, "approve", {"by": "ada", "ok": True})
        assert h.result(timeout=10) == {"by": "ada", "ok": True}
    received = [e for e in h.events() if e.type == "signal_received"]
    assert len(received) == 1
    assert received[0].name == "approve"


# ---------------------------------------------------------------- unknown ids and names


@pytest.mark.parametrize("method", ["get", "cancel", "resume", "fork", "replay", "signal"])
def test_unknown_run_id_raises_run_not_found(app, client, method):
    @app.workflow()
    def flow() -> int:
        return 1

    client.start(flow)  # the log exists and is not empty
    calls = {
        "get": lambda: client.get("no-such-run"),
        "cancel": lambda: client.cancel("no-such-run"),
        "resume": lambda: client.resume("no-such-run"),
        "fork": lambda: client.fork("no-such-run", from_step=1),
        "replay": lambda: client.replay("no-such-run"),
        "signal": lambda: client.signal("no-such-run", "go", 1),
    }
    with pytest.raises(RunNotFoundError) as err:
        calls[method]()
    assert isinstance(err.value, LookupError)
    assert isinstance(err.value, DurableError)
    assert len(client.list_runs()) == 1


def test_start_of_unknown_name_raises_before_writing(app, db_url):
    @app.workflow()
    def flow() -> int:
        return 1

    with pytest.raises(UnknownWorkflowError):
        app.client().start("nope")
    assert durable.Client(db_url).list_runs() == []


def test_code_free_client_accepts_any_name_and_run_stays_pending(make_app, db_url):
    app = make_app()

    @app.workflow(name="known")
    def known() -> str:
        return "known"

    bare = durable.Client(db_url)
    h = bare.start("later", 5)
    k = bare.start("known")
    with app.worker():
        assert k.result(timeout=10) == "known"
        time.sleep(0.5)
        assert h.status() == Status.PENDING
    assert h.info().workflow == "later"

    later_app = make_app()

    @later_app.workflow(name="later")
    def later(x: int) -> int:
        return x * 2

    with later_app.worker():
        assert h.result(timeout=10) == 10
    assert bare.get(h.id).status() == Status.COMPLETED


def test_code_free_client_manages_runs(app, db_url):
    @app.workflow(name="waiter")
    def waiter() -> object:
        return durable.wait_signal("go", timeout=30)

    bare = durable.Client(db_url)
    with app.worker():
        h = bare.start("waiter")
        bare.signal(h.id, "go", [1, 2])
        assert bare.get(h.id).result(timeout=10) == [1, 2]
    assert [r.id for r in bare.list_runs(workflow="waiter")] == [h.id]
    assert bare.get(h.id).events()[-1].type == "run_completed"
