"""Consumer classes (``@app.consumer``) and the worker hooks, on both backends.

- ``durable worker`` in a real process: ``setup()`` once for two runs, ``teardown()`` at
  SIGTERM, in the documented order with the ``on_worker_start`` / ``on_worker_stop`` hooks;
- an embedded worker: the same order; ``setup()`` raising fails that attempt only;
- worker events routed to each consumer's ``on_event``, only its own runs';
- ``is_permanent`` stopping the retries of the run and of the steps it calls;
- starting by class and by name; an async ``process``; sleeps and replay on one instance.
"""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from harness.processes import Processes

import durable

pytestmark = pytest.mark.timeout(90)

PROCS = Path(__file__).resolve().parent / "procs"
SCRIPT = Path(sys.executable).with_name("durable")
COMMAND = [str(SCRIPT)] if SCRIPT.exists() else [sys.executable, "-m", "durable.cli"]

Make = Callable[..., durable.App]


def _lines(path: Path) -> list[list[str]]:
    return [line.split() for line in path.read_text().splitlines()] if path.exists() else []


@pytest.mark.skipif(sys.platform == "win32", reason="needs POSIX signals")
def test_a_durable_worker_process_sets_up_once_and_tears_down_at_sigterm(
    db_url: str, processes: Processes, tmp_path: Path
) -> None:
    trace = tmp_path / "trace.txt"
    env = {"CONSUMER_TRACE": str(trace)}
    argv = [*COMMAND, "--database", db_url, "worker", "consumerapp:app", "--worker-id", "w-1"]
    worker = processes.start(argv, name="worker", cwd=PROCS, env=env)
    worker.wait_for(trace.exists, 30, "the worker's start hook")
    sys.path.insert(0, str(PROCS))
    try:
        import consumerapp
    finally:
        sys.path.remove(str(PROCS))
    with durable.Client(db_url) as client:
        a = client.start(consumerapp.Scraper, {"url": "a"})  # by the class
        b = client.start("scraper", {"url": "b"}, queue="scraper")  # by name (and queue)
        assert a.result(timeout=30) == "A open"
        assert b.result(timeout=30) == "B open"
        assert a.info().queue == "scraper"
    assert worker.alive
    worker.signal(signal.SIGTERM)
    assert worker.wait(30) == 0, worker.describe()
    lines = _lines(trace)
    pid = str(worker.pid)
    assert [w[0] for w in lines] == ["start", "setup", "process", "process", "teardown", "stop"]
    assert all(w[-1] == pid for w in lines), lines  # all in the worker's process
    assert lines[0][1] == "w-1" and lines[-1][1] == "w-1"
    assert {lines[2][1], lines[3][1]} == {a.id, b.id}
    assert lines[4][1] == "open"  # teardown sees what setup made


def test_the_embedded_worker_calls_hooks_in_order(make_app: Make) -> None:
    app = make_app()
    seen: list[str] = []

    @app.consumer("orders")
    class Orders:  # no base class: the hooks it lacks do nothing
        def setup(self) -> None:
            seen.append("setup")

        def teardown(self) -> None:
            seen.append("teardown")

        def process(self, n: int) -> int:
            seen.append(f"process {n}")
            return n * 2

    app.on_worker_start(lambda w: seen.append(f"start {w.worker_id}"))
    app.on_worker_stop(lambda w: seen.append(f"stop {w.worker_id}"))
    client = app.client()
    with app.worker(worker_id="emb"):
        assert client.start(Orders, 2).result(timeout=20) == 4
        assert client.start("orders", 3).result(timeout=20) == 6
    assert seen == ["start emb", "setup", "process 2", "process 3", "teardown", "stop emb"]
    with app.worker(worker_id="again"):  # a new worker sets up afresh
        assert client.start(Orders, 1).result(timeout=20) == 2
    assert seen[6:] == ["start again", "setup", "process 1", "teardown", "stop again"]
    assert Orders().process(5) == 10  # the class stays a class


def test_a_start_hook_that_raises_stops_the_start(make_app: Make) -> None:
    app = make_app()

    @app.workflow
    def noop() -> None:
        return None

    def broken(_w: durable.EmbeddedWorker) -> None:
        raise RuntimeError("no browser")

    app.on_worker_start(broken)
    with pytest.raises(RuntimeError, match="no browser"), app.worker():
        pytest.fail("the worker must not start")


def test_a_slow_setup_holds_back_no_event_and_a_stop_hook_that_raises_is_logged(
    make_app: Make, caplog: pytest.LogCaptureFixture
) -> None:
    app = make_app()
    release = threading.Event()
    events: list[str] = []
    teardowns: list[str] = []

    @app.consumer("slow-setup")
    class Slow(durable.Consumer):
        def setup(self) -> None:
            release.wait(10)  # a browser that takes its time to open

        def teardown(self) -> None:
            teardowns.append("teardown")

        def process(self, n: int) -> int:
            return n

        def on_event(self, event: durable.WorkerEventInfo) -> None:
            events.append(event.event.value)

    def broken(_w: durable.EmbeddedWorker) -> None:
        raise RuntimeError("stop hook bug")

    app.on_worker_stop(broken)
    client = app.client()
    with app.worker():
        first, second = client.start(Slow, 1), client.start(Slow, 2)
        durable_wait(lambda: events.count("processing") == 2)  # while setup() still runs
        release.set()
        assert (first.result(timeout=20), second.result(timeout=20)) == (1, 2)
    assert teardowns == ["teardown"]
    assert "stop hook bug" in caplog.text


def test_setup_that_raises_fails_that_attempt_and_is_tried_again(make_app: Make) -> None:
    app = make_app()
    tries: list[int] = []

    @app.consumer("flaky", retry=durable.Retry(attempts=2, initial_delay=0.01, jitter=False))
    class Flaky(durable.Consumer):
        def setup(self) -> None:
            tries.append(1)
            if len(tries) == 1:
                raise ConnectionError("browser did not start")

        def process(self, payload: str) -> str:
            return payload

    client = app.client()
    with app.worker():
        h = client.start(Flaky, "ok")
        assert h.result(timeout=20) == "ok"
    assert len(tries) == 2 and h.info().attempt == 2


def test_each_consumer_sees_only_its_own_runs_events(make_app: Make) -> None:
    app = make_app()
    got: dict[str, list[tuple[str, str]]] = {"a": [], "b": []}
    lock = threading.Lock()

    def make(queue: str) -> type:
        class Recorder(durable.Consumer):
            def process(self, fail: bool) -> str:
                if fail:
                    raise ValueError(f"{queue} broke")
                return queue

            def on_event(self, event: durable.WorkerEventInfo) -> None:
                assert event.workflow == queue and event.queue == queue
                with lock:
                    got[queue].append((event.event.value, event.run_id))

        return app.consumer(queue)(Recorder)

    a, b = make("a"), make("b")
    client = app.client()
    with app.worker():
        ra = client.start(a, False)
        rb = client.start(b, True)
        assert ra.result(timeout=20) == "a"
        with pytest.raises(durable.RunFailedError, match="b broke"):
            rb.result(timeout=20)
        durable_wait(lambda: len(got["b"]) >= 4)
    assert got["a"] == [("processing", ra.id), ("done", ra.id), ("completed", ra.id)]
    assert got["b"] == [
        ("processing", rb.id),
        ("error", rb.id),
        ("failed", rb.id),
        ("completed", rb.id),
    ]


def durable_wait(cond: Callable[[], bool], timeout: float = 10.0) -> None:
    """Wait for ``cond`` (events are delivered after the outcome's commit)."""
    done = threading.Event()
    for _ in range(int(timeout / 0.02)):
        if cond():
            return
        done.wait(0.02)
    raise AssertionError("timed out")


class Gone(Exception):
    """The page is gone: not worth another try."""


def test_is_permanent_stops_the_retries_of_the_run_and_of_its_steps(make_app: Make) -> None:
    app = make_app()
    calls: list[str] = []
    quick = durable.Retry(attempts=3, initial_delay=0.01, jitter=False)

    @app.step(retry=quick)
    def fetch(what: str) -> str:
        calls.append(what)
        if what == "gone":
            raise Gone("404")
        if what == "flaky" and calls.count("flaky") < 3:
            raise TimeoutError("slow")
        return what

    @app.consumer("pages", retry=quick)
    class Pages(durable.Consumer):
        def is_permanent(self, error: BaseException) -> bool:
            return isinstance(error, Gone)

        def process(self, what: str) -> str:
            if what == "late-gone":
                raise Gone("in the body")
            return fetch(what)

    client = app.client()
    with app.worker():
        gone = client.start(Pages, "gone")
        with pytest.raises(durable.RunFailedError) as info:
            gone.result(timeout=20)
        late = client.start(Pages, "late-gone")
        with pytest.raises(durable.RunFailedError):
            late.result(timeout=20)
        assert client.start(Pages, "flaky").result(timeout=20) == "flaky"
    assert info.value.error_type == "Gone"
    assert calls.count("gone") == 1  # the step's own Retry(attempts=3) stopped at once
    assert gone.info().attempt == 1 and late.info().attempt == 1  # and the run's
    failed = [e for e in gone.events() if e.type == "step_failed"]
    assert [e.data["retryable"] for e in failed] == [False]
    assert calls.count("flaky") == 3  # other errors are retried as before


def test_an_async_process_sleeps_and_resumes_on_the_same_instance(make_app: Make) -> None:
    app = make_app()
    made: list[object] = []

    @app.step
    async def double(n: int) -> int:
        return n * 2

    @app.consumer("async-jobs")
    class Jobs(durable.Consumer):
        def __init__(self) -> None:
            made.append(self)

        async def process(self, n: int) -> int:
            first = await double(n)
            durable.sleep(0.2)  # suspends: the run is replayed on resume
            return first + await double(first)

    client = app.client()
    with app.worker():
        assert client.start(Jobs, 1).result(timeout=20) == 6
        assert client.start(Jobs, 2).result(timeout=20) == 12
    assert len(made) == 1
    assert client.replay(client.list_runs(workflow="async-jobs")[0].id) in (6, 12)


def test_bad_consumers_are_refused_when_defined(make_app: Make) -> None:
    app = make_app()
    with pytest.raises(TypeError, match="has no process method"):

        @app.consumer("q")
        class NoProcess:
            def run(self, payload: Any) -> None: ...

    with pytest.raises(TypeError, match=r"process must be a method .* not int"):

        @app.consumer("q")
        class NotAFunction:
            process = 3

    with pytest.raises(TypeError, match="not staticmethod"):

        @app.consumer("q")
        class Static:
            @staticmethod
            def process(payload: Any) -> None: ...

    with pytest.raises(TypeError, match=r"decorates a class .* not function"):

        @app.consumer("q")  # type: ignore[type-var]
        def handler(payload: Any) -> None: ...

    with pytest.raises(TypeError, match=r"needs the queue's name: @app.consumer\('bare'\)"):

        @app.consumer  # type: ignore[arg-type]
        class Bare:
            def process(self, payload: Any) -> None: ...

    with pytest.raises(
        TypeError, match=r"made with no arguments .* it needs url: give them defaults"
    ):

        @app.consumer("q")
        class NeedsArguments:
            def __init__(self, url: str) -> None:
                self.url = url

            def process(self, payload: Any) -> None: ...

    with pytest.raises(TypeError, match=r"NotAHook.is_permanent must be a method, not bool"):

        @app.consumer("q")
        class NotAHook:
            is_permanent = True

            def process(self, payload: Any) -> None: ...

    with pytest.raises(ValueError, match="cannot be empty"):
        app.consumer("")
    with pytest.raises(ValueError, match="timeout must be positive"):
        app.consumer("q", timeout=0)
    with pytest.raises(TypeError, match="on_worker_start takes a function"):
        app.on_worker_start("not a function")  # type: ignore[arg-type]
    assert "q" not in app.registry.workflows  # nothing half-registered
