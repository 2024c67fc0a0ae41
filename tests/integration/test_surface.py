"""The public surface: no private keyword arguments, what ``app.worker()`` gives, no leaks.

On real logs, SQLite and Postgres (the ``db_url`` fixture of tests/conftest.py).
"""

from __future__ import annotations

import ast
import asyncio
import inspect
from pathlib import Path
from typing import Any

import pytest

import durable
from durable.hub import LocalHub


def _callables(obj: Any) -> list[tuple[str, Any]]:
    """``obj`` itself (a function or a class's ``__init__``) and, for a class, every public
    method, property getter and classmethod."""
    if not inspect.isclass(obj):
        return [(obj.__name__, obj)] if callable(obj) else []
    found = [(f"{obj.__name__}.__init__", obj.__init__)]
    for name, member in vars(obj).items():
        if name.startswith("_"):
            continue
        fn = member.fget if isinstance(member, property) else member
        fn = getattr(fn, "__func__", fn)
        if callable(fn):
            found.append((f"{obj.__name__}.{name}", fn))
    return found


def test_no_public_callable_takes_an_underscore_argument() -> None:
    wrong = []
    for name in durable.__all__:
        for where, fn in _callables(getattr(durable, name)):
            try:
                params = inspect.signature(fn).parameters
            except (TypeError, ValueError):
                continue  # a builtin without a signature (an exception's __init__)
            wrong += [f"{where}({p})" for p in params if p.startswith("_") and p != "_frame"]
    assert wrong == []


def test_the_hub_is_a_bottom_module() -> None:
    tree = ast.parse(Path(durable.__file__).with_name("hub.py").read_text())
    imported = {n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)} | {
        a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names
    }
    assert not [m for m in imported if m == "durable" or m.startswith("durable.")]
    assert LocalHub.__module__ == "durable.hub"


def test_app_worker_gives_an_embedded_worker(app: durable.App) -> None:
    @app.workflow(name="double")
    def double(x: int) -> int:
        return 2 * x

    with app.worker(queues=["default"], concurrency=3, worker_id="w-surface") as worker:
        assert isinstance(worker, durable.EmbeddedWorker)
        assert (worker.worker_id, worker.queues, worker.concurrency) == (
            "w-surface",
            ["default"],
            3,
        )
        assert repr(worker) == "EmbeddedWorker('w-surface')"
        assert not hasattr(worker, "kill")  # a crash for tests is the engine's, not public
        assert not [
            n
            for n in dir(worker)
            if not n.startswith("_") and n not in ("worker_id", "queues", "concurrency")
        ]
        assert app.client().start(double, 21).result(timeout=20) == 42
    with app.worker() as worker:
        assert worker.queues is None and worker.concurrency == 16


def test_worker_blocks_leave_no_subscription_behind(app: durable.App) -> None:
    @app.workflow(name="waits")
    def waits() -> Any:
        return durable.wait_signal("go", timeout=60)

    client = app.client()
    before = app._hub.subscriptions
    for i in range(5):
        with app.worker(worker_id=f"w-{i}"):
            assert app._hub.subscriptions == before + 1
            h = client.start(waits, id=f"run-{i}")
            h.cancel()  # the hub tells the worker in this block (and no stopped one)
            with pytest.raises(durable.RunCancelledError):
                h.result(timeout=20)
        assert app._hub.subscriptions == before
    with app.worker(), app.worker():
        assert app._hub.subscriptions == before + 2
    assert app._hub.subscriptions == before


def test_a_hub_subscription_ends_once() -> None:
    hub = LocalHub()
    woken: list[str] = []
    end_a = hub.subscribe(lambda: woken.append("a"), woken.append)
    end_b = hub.subscribe(lambda: woken.append("b"))
    hub.work()
    hub.cancelled("r-1")
    end_a()
    end_a()  # a second call is harmless and removes nothing else
    hub.work()
    end_b()
    hub.work()
    assert woken == ["a", "b", "r-1", "b"]
    assert hub.subscriptions == 0


def test_a_client_that_must_not_create_the_log(db_url: str, tmp_path: Path) -> None:
    if db_url.startswith("sqlite"):
        missing = tmp_path / "missing.db"
        with pytest.raises(durable.StoreError, match="no durable log"):
            durable.Client(f"sqlite:///{missing}", create=False)
        assert not missing.exists()
    else:
        with pytest.raises(durable.LogSchemaError):
            durable.Client(db_url, create=False)
    with durable.Client(db_url) as made:  # create=True, the default, makes it
        made.start("anything", id="r-1")
    with durable.Client(db_url, create=False) as reader:
        assert [i.id for i in reader.list_runs()] == ["r-1"]


def test_the_async_client_opens_a_log_with_the_clients_arguments(db_url: str) -> None:
    async def go() -> list[str]:
        aclient = durable.AsyncClient(db_url, max_payload_bytes=1024)
        try:
            h = await aclient.start("anything", "small", id="a-1")
            with pytest.raises(durable.PayloadTooLargeError):
                await aclient.start("anything", "x" * 2048)
            return [i.id for i in await aclient.list_runs()] + [h.id]
        finally:
            aclient.close()

    assert asyncio.run(go()) == ["a-1", "a-1"]
