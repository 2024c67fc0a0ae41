"""Today's code for the golden journals of ``journals/*.json``.

The workflows and steps below recorded those journals (``python tests/replay/golden.py
generate``); ``test_golden.py`` replays the journals against them. Their names, the order of
their journaled calls and the types of their results are what the journals hold: changing any
of them is a change a deployed run would see, and ``test_golden.py`` is there to notice it.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import durable
from durable import App, PermanentError, Retry


@dataclass
class Greeting:
    """A step result that decodes into a dataclass annotation."""

    name: str
    text: str


class Toggles:
    """Switches used while recording (``fail_maybe``), and the step bodies that ran."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.fail_maybe = False


def make_app(database: str, toggles: Toggles | None = None) -> App:
    """The App of the golden journals, on ``database``."""
    t = toggles if toggles is not None else Toggles()
    app = App("golden", database=database, poll_interval=0.05, lease_timeout=30.0)

    @app.step(name="add")
    def add(a: int, b: int) -> int:
        t.calls.append("add")
        return a + b

    @app.step(name="mul")
    async def mul(a: int, b: int) -> int:
        t.calls.append("mul")
        await asyncio.sleep(0)
        return a * b

    @app.step(name="flaky", retry=Retry(attempts=3, initial_delay=0.01, jitter=False))
    def flaky(x: int) -> int:
        t.calls.append("flaky")
        if durable.info().step_attempt == 1:
            raise RuntimeError("the first try fails")
        return x + 1

    @app.step(name="refuse")
    def refuse(x: int) -> int:
        t.calls.append("refuse")
        raise ValueError(f"refused {x}")

    @app.step(name="forbid", retry=Retry(attempts=5, initial_delay=0.01))
    def forbid(x: int) -> int:
        t.calls.append("forbid")
        raise PermanentError(f"forbidden {x}")

    @app.step(name="greet")
    def greet(name: str) -> Greeting:
        t.calls.append("greet")
        return Greeting(name=name, text=f"hello {name}")

    @app.step(name="maybe")
    def maybe(x: int) -> int:
        t.calls.append("maybe")
        if t.fail_maybe:
            raise ConnectionError("the service is down")
        return x * 7

    @app.workflow(name="golden.pipeline")
    def pipeline(x: int) -> dict[str, Any]:
        with durable.stage("prep"):
            a = add(x, 1)
            durable.progress(0.5)
            durable.message("prepared", a=a)
            durable.output("a", a)
        durable.sleep(0.01)
        with durable.stage("calc"):
            b = mul(a, 3)
            c = flaky(b)
        when = durable.now()
        r = durable.random()
        u = durable.uuid4()
        return {"a": a, "b": b, "c": c, "when": when.isoformat(), "r": r, "u": str(u)}

    @app.workflow(name="golden.fanout")
    async def fanout(x: int) -> dict[str, Any]:
        values = await asyncio.gather(add(x, 1), mul(x, 2), add(x, 3))
        g = await greet(f"n{x}")
        total = await add(sum(values), 0)
        return {"values": list(values), "greeting": g.text, "total": total}

    @app.workflow(name="golden.caught")
    def caught(x: int) -> list[Any]:
        out: list[Any] = []
        try:
            refuse(x)
        except ValueError as e:
            out.append(f"ValueError: {e}")
        try:
            forbid(x)
        except PermanentError as e:
            out.append(f"PermanentError: {e}")
        out.append(add(x, 2))
        return out

    @app.workflow(name="golden.child")
    def child(x: int) -> int:
        return mul(x, 10)

    @app.workflow(name="golden.parent")
    def parent(x: int) -> int:
        c = child(x)
        return add(c, 1)

    @app.workflow(name="golden.signal")
    def signal(x: int) -> int:
        got = durable.wait_signal("go", timeout=30)
        return add(got["n"], x)

    @app.workflow(name="golden.resumed")
    def resumed(x: int) -> int:
        a = add(x, 1)
        v = maybe(a)
        return add(v, 1)

    @app.workflow(name="golden.sleeping")
    def sleeping(x: int) -> int:
        a = add(x, 1)
        durable.sleep(0.5)
        return add(a, 100)

    @app.workflow(name="golden.patched")
    def patched(x: int) -> int:
        a = add(x, 1)
        if durable.patched("golden-bigger"):
            a = add(a, 1000)
        durable.sleep(0.01)
        return add(a, 1)

    app.toggles = t  # type: ignore[attr-defined]
    return app
