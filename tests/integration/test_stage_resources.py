"""Stage resources: ``durable.stage(name, resources=...)`` and ``durable.resource(name)``,
on SQLite and Postgres.

A resource opens at the first live step body of its stage that asks for it (never while
recorded steps replay), is shared by the stage's bodies (sync, async, in threads), closes
when the stage block ends or the run suspends, and opens again after a resume. Across
processes: a worker killed with SIGKILL mid-stage, and the run finished by another.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from harness.processes import Processes

import durable
from durable import Status

pytestmark = pytest.mark.timeout(120)

HERE = Path(__file__).resolve().parent
WORKER = HERE / "procs" / "stagesapp.py"


class Counted:
    """A resource factory that counts its opens and closes (thread-safe)."""

    def __init__(self) -> None:
        self.log: list[str] = []
        self.lock = threading.Lock()

    def __call__(self) -> contextlib.AbstractContextManager[dict[str, Any]]:
        @contextlib.contextmanager
        def cm() -> Iterator[dict[str, Any]]:
            with self.lock:
                n = sum(1 for e in self.log if e.startswith("open")) + 1
                self.log.append(f"open-{n}")
            try:
                yield {"n": n, "uses": 0}
            finally:
                with self.lock:
                    self.log.append(f"close-{n}")

        return cm()


def test_opened_once_per_live_stage_and_closed_at_its_end(
    make_app: Callable[..., durable.App],
) -> None:
    app = make_app()
    db = Counted()
    seen: list[tuple[str, int]] = []

    @app.step(name="use")
    def use(i: int) -> int:
        res = durable.resource("db")
        res["uses"] += 1
        seen.append((f"use-{i}", res["n"]))
        return int(res["uses"])

    @app.step(name="after")
    def after() -> int:
        seen.append(("after", len(db.log)))
        return 0

    @app.workflow(name="flow")
    def flow() -> list[int]:
        with durable.stage("s", resources={"db": db}):
            out = [use(1), use(2), use(3)]
        after()
        with durable.stage("s", resources={"db": db}):  # a new block: a new resource
            out.append(use(4))
        return out

    with app.worker():
        h = app.client().start(flow)
        assert h.result(timeout=20) == [1, 2, 3, 1]
    assert db.log == ["open-1", "close-1", "open-2", "close-2"]
    assert seen == [("use-1", 1), ("use-2", 1), ("use-3", 1), ("after", 2), ("use-4", 2)]


def test_not_opened_by_a_stage_whose_steps_do_not_ask(
    make_app: Callable[..., durable.App],
) -> None:
    app = make_app()
    db = Counted()

    @app.step(name="plain")
    def plain() -> int:
        return 1

    @app.workflow(name="flow")
    def flow() -> int:
        with durable.stage("s", resources={"db": db}):
            return plain()

    with app.worker():
        assert app.client().start(flow).result(timeout=20) == 1
    assert db.log == []


def test_closed_on_a_sleep_and_opened_again_after_it_not_on_replay(
    make_app: Callable[..., durable.App],
) -> None:
    app = make_app()
    db = Counted()
    ran: list[str] = []

    @app.step(name="use")
    def use(i: int) -> int:
        ran.append(f"use-{i}")
        return int(durable.resource("db")["n"])

    @app.workflow(name="flow")
    def flow() -> list[int]:
        with durable.stage("s", resources={"db": db}):
            first = [use(1), use(2)]
            durable.sleep(0.3)  # the run suspends: the resource closes
            return [*first, use(3)]

    with app.worker():
        h = app.client().start(flow)
        assert h.result(timeout=20) == [1, 1, 2]
    # Replaying use-1 and use-2 after the sleep opened nothing: only use-3 opened it again.
    assert db.log == ["open-1", "close-1", "open-2", "close-2"]
    assert ran == ["use-1", "use-2", "use-3"]
    assert any(e.type == "run_suspended" for e in h.events())


def test_closed_during_a_retry_backoff_and_when_the_run_fails(
    make_app: Callable[..., durable.App],
) -> None:
    app = make_app()
    db = Counted()
    tries: list[list[str]] = []

    @app.step(name="flaky", retry=durable.Retry(attempts=2, initial_delay=0.2, jitter=False))
    def flaky() -> int:
        durable.resource("db")
        tries.append(list(db.log))
        raise OSError("down")

    @app.workflow(name="flow")
    def flow() -> int:
        with durable.stage("s", resources={"db": db}):
            return flaky()

    with app.worker():
        h = app.client().start(flow)
        with pytest.raises(durable.RunFailedError):
            h.result(timeout=20)
    # The first try opened it; the backoff suspended the run and closed it; the second
    # try opened it again; the failure closed it.
    assert tries == [["open-1"], ["open-1", "close-1", "open-2"]]
    assert db.log == ["open-1", "close-1", "open-2", "close-2"]
    assert h.status() is Status.FAILED


def test_closed_when_the_run_is_cancelled(make_app: Callable[..., durable.App]) -> None:
    app = make_app()
    db = Counted()
    entered = threading.Event()

    @app.step(name="waits")
    def waits() -> int:
        durable.resource("db")
        entered.set()
        while not durable.cancelled():
            threading.Event().wait(0.01)
        return 1

    @app.step(name="never")
    def never() -> None:
        raise AssertionError("ran after the cancel")

    @app.workflow(name="flow")
    def flow() -> None:
        with durable.stage("s", resources={"db": db}):
            waits()
            never()

    with app.worker():
        h = app.client().start(flow)
        assert entered.wait(20)
        h.cancel()
        with pytest.raises(durable.RunCancelledError):
            h.result(timeout=20)
    assert db.log == ["open-1", "close-1"]


def test_thread_and_async_steps_of_async_and_sync_workflows_share_it(
    make_app: Callable[..., durable.App],
) -> None:
    app = make_app()
    db = Counted()

    @app.step(name="sync_use")
    def sync_use(i: int) -> list[int]:
        res = durable.resource("db")
        return [res["n"], threading.get_ident()]

    @app.step(name="async_use")
    async def async_use(i: int) -> list[int]:
        await asyncio.sleep(0.01)
        res = durable.resource("db")
        return [res["n"], threading.get_ident()]

    @app.step(name="timed", timeout=10)
    def timed() -> int:  # a body with a timeout runs in a thread of its own
        return int(durable.resource("db")["n"])

    @app.workflow(name="async_flow")
    async def async_flow() -> list[int]:
        with durable.stage("s", resources={"db": db}):
            got = await asyncio.gather(sync_use(1), async_use(2), sync_use(3), async_use(4))
            return [n for n, _ in got]

    @app.workflow(name="sync_flow")
    def sync_flow() -> list[int]:
        with durable.stage("s", resources={"db": db}):
            return [sync_use(1)[0], async_use(2)[0], timed()]

    with app.worker():
        client = app.client()
        assert client.start(async_flow).result(timeout=20) == [1, 1, 1, 1]
        assert db.log == ["open-1", "close-1"]
        assert client.start(sync_flow).result(timeout=20) == [2, 2, 2]
    assert db.log == ["open-1", "close-1", "open-2", "close-2"]


def test_nested_stages_see_outer_resources_and_may_hide_them(
    make_app: Callable[..., durable.App],
) -> None:
    app = make_app()
    outer, inner = Counted(), Counted()

    @app.step(name="which")
    def which(name: str) -> str:
        return f"{name}:{durable.resource(name)['n']}"

    @app.workflow(name="flow")
    def flow() -> list[str]:
        with durable.stage("outer", resources={"a": outer, "b": outer}):
            with durable.stage("inner", resources={"b": inner}):
                got = [which("a"), which("b")]
            assert inner.log == ["open-1", "close-1"]  # closed with the inner block
            got.append(which("b"))
        return got

    with app.worker():
        assert app.client().start(flow).result(timeout=20) == ["a:1", "b:1", "b:2"]
    assert sorted(outer.log) == ["close-1", "close-2", "open-1", "open-2"]


def test_a_failing_close_is_logged_and_the_run_completes(
    make_app: Callable[..., durable.App], caplog: pytest.LogCaptureFixture
) -> None:
    app = make_app()

    @contextlib.contextmanager
    def broken() -> Iterator[int]:
        yield 7
        raise OSError("cannot close")

    @app.step(name="use")
    def use() -> int:
        return int(durable.resource("db"))

    @app.workflow(name="flow")
    def flow() -> int:
        with durable.stage("s", resources={"db": broken}):
            return use()

    with app.worker():
        assert app.client().start(flow).result(timeout=20) == 7
    assert any("closing resource 'db' of stage 's' failed" in r.message for r in caplog.records)


def test_a_failing_open_fails_the_step_attempt(make_app: Callable[..., durable.App]) -> None:
    app = make_app()

    def refuses() -> contextlib.AbstractContextManager[int]:
        raise ConnectionError("no database today")

    @app.step(name="use")
    def use() -> int:
        return int(durable.resource("db"))

    @app.workflow(name="flow")
    def flow() -> str:
        with durable.stage("s", resources={"db": refuses}):
            try:
                use()
            except ConnectionError as exc:
                return f"caught {exc}"
        return "no error"

    with app.worker():
        assert app.client().start(flow).result(timeout=20) == "caught no database today"


# -- bad input -------------------------------------------------------------------------


def test_a_factory_that_is_not_callable_is_a_type_error_at_stage() -> None:
    bad: list[tuple[object, str]] = [
        ({"db": object()}, r"factory of resource 'db' is .*not a callable"),
        ([("db", dict)], "takes a dict of names to factories"),
        ({"": dict}, "resource name must be a non-empty string"),
    ]
    for resources, pattern in bad:
        with pytest.raises(TypeError, match=pattern):
            durable.stage("s", resources=resources).__enter__()  # type: ignore[arg-type]


def test_resource_errors_name_the_resource_and_the_stage(
    make_app: Callable[..., durable.App],
) -> None:
    app = make_app()
    calls: list[str] = []

    @app.step(name="asks", retry=durable.Retry(attempts=3, initial_delay=0))
    def asks(name: str) -> int:
        calls.append(name)
        return int(durable.resource(name))

    @app.workflow(name="unknown")
    def unknown() -> int:
        with durable.stage("s", resources={"db": lambda: contextlib.nullcontext(1)}):
            return asks("browser")

    @app.workflow(name="undeclared")
    def undeclared() -> int:
        with durable.stage("plain"):
            return asks("db")

    @app.workflow(name="outside")
    def outside() -> int:
        return asks("db")

    @app.workflow(name="in_code")
    def in_code() -> int:
        with durable.stage("s", resources={"db": lambda: contextlib.nullcontext(1)}):
            return int(durable.resource("db"))

    @app.workflow(name="async_cm")
    def async_cm() -> int:
        with durable.stage("s", resources={"db": lambda: contextlib.AsyncExitStack()}):
            return asks("db")

    client = app.client()
    with app.worker():
        for wf, pattern in [
            (unknown, r"'browser'.*stage 's'.*stage 's' declares 'db'"),
            (undeclared, r"'db'.*stage 'plain'.*no stage around it declares resources"),
            (outside, r"step 'asks' runs in no stage, and no stage around it declares"),
            (in_code, r"durable.resource\('db'\) was called in workflow code"),
            (async_cm, r"returned AsyncExitStack, an async context manager"),
        ]:
            with pytest.raises(durable.RunFailedError, match=pattern):
                client.start(wf).result(timeout=20)
    # A missing resource is permanent: each step call was tried once, not retried.
    assert calls == ["browser", "db", "db", "db", "db", "db"]
    with pytest.raises(durable.ResourceError, match="called outside a run"):
        durable.resource("db")


# -- across processes ------------------------------------------------------------------


@pytest.mark.skipif(sys.platform == "win32", reason="needs POSIX signals")
def test_a_killed_worker_s_run_opens_it_again_once_and_replays_without_it(
    db_url: str, processes: Processes, tmp_path: Path
) -> None:
    from procs.stagesapp import make_app as stages_app

    app = stages_app(db_url)
    client = app.client()
    try:
        first = processes.python(WORKER, db_url, name="first")
        h = client.start("three_parts", str(tmp_path))
        ran = tmp_path / "ran"
        first.wait_for(lambda: ran.exists() and "load-1" in ran.read_text(), 30, "load-1")
        assert (tmp_path / "opened").read_text().split() == [str(first.pid)]
        first.kill()  # SIGKILL mid-stage: nothing closes
        assert not (tmp_path / "closed").exists()
        second = processes.python(WORKER, db_url, name="second")
        (tmp_path / "go-1").write_text("")
        assert h.result(timeout=60) == [first.pid, second.pid, second.pid]
        # load-0 was replayed (its body did not run, nothing opened for it); load-1 ran
        # again live on the second worker, which opened the resource once and closed it at
        # the end of the stage.
        assert ran.read_text().split() == ["load-0", "load-1", "load-1", "load-2"]
        assert (tmp_path / "opened").read_text().split() == [str(first.pid), str(second.pid)]
        assert (tmp_path / "closed").read_text().split() == [str(second.pid)]
        second.terminate()
    finally:
        app.close()
