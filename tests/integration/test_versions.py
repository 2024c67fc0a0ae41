"""Code versions: what a run records, what a worker declares, how the default fingerprint
behaves (what changes it and what does not), and bad versions."""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from harness.processes import run

import durable

pytestmark = pytest.mark.timeout(60)

HERE = Path(__file__).resolve().parent


def app_of(source: str, name: str = "fp", filename: str = "<a>") -> durable.App:
    """An App whose workflows and steps are defined by ``source`` (``app`` in scope)."""
    app = durable.App(name, database="sqlite:///:memory:")
    code = compile(textwrap.dedent(source), filename, "exec")
    exec(code, {"app": app, "durable": durable})
    return app


BASE = """
@app.step(name="add")
def add(a: int, b: int) -> int:
    return a + b

@app.workflow(name="flow")
def flow(x: int) -> int:
    y = add(x, 1)
    durable.sleep(0)
    return add(y, 2)
"""


def fp(source: str, **kw: Any) -> str:
    app = app_of(source, **kw)
    try:
        return app.version
    finally:
        app.close()


def test_a_run_records_the_version_it_started_under(
    make_app: Callable[..., durable.App],
) -> None:
    app = make_app(version="2026.12.1")
    seen: list[str | None] = []

    @app.step()
    def one() -> int:
        return 1

    @app.workflow()
    def child() -> int:
        return one()

    @app.workflow()
    def parent() -> int:
        seen.append(durable.info().version)
        return child() + 1

    client = app.client()
    with app.worker():
        h = client.start(parent)
        assert h.result(timeout=20) == 2
        workers = client.workers()
    assert h.info().version == "2026.12.1"
    assert seen and set(seen) == {"2026.12.1"}
    kid = next(e.data["child_id"] for e in h.events() if e.type == "child_started")
    assert client.get(kid).info().version == "2026.12.1"  # the worker's code started it
    assert [w.version for w in workers] == ["2026.12.1"]
    assert durable.Client(app.database).start("parent").info().version is None


def test_the_default_version_is_a_fingerprint_of_the_code(
    make_app: Callable[..., durable.App],
) -> None:
    app = make_app()
    before = app.version
    assert len(before) == 12 and int(before, 16) >= 0

    @app.workflow(name="w")
    def w() -> int:
        return 1

    assert app.version != before  # computed again once the registry changes
    h = app.client().start(w)
    assert h.info().version == app.version


def test_what_does_not_change_the_fingerprint() -> None:
    base = fp(BASE)
    assert fp(BASE, filename="elsewhere/module.py") == base  # the file
    assert fp(BASE, name="another app") == base  # the App's name
    assert fp("\n\n\n" + BASE) == base  # line numbers
    commented = BASE.replace("    y = add(x, 1)", "    # a comment\n\n    y = add(x, 1)  # here")
    assert fp(commented) == base  # comments and blank lines
    documented = BASE.replace("-> int:\n    y =", '-> int:\n    """Docs."""\n    y =')
    assert fp(documented) == base  # the docstring
    reordered = BASE.split("@app.workflow")
    assert fp("@app.workflow" + reordered[1] + reordered[0]) == base  # definition order


@pytest.mark.parametrize(
    "change",
    [
        ("add(y, 2)", "add(y, 3)"),  # a constant
        ("add(x, 1)\n    durable.sleep(0)", "add(x, 1)"),  # a call removed
        ("return a + b", "return a - b"),  # a step's body
        ('@app.step(name="add")', '@app.step(name="plus")'),  # a registered name
        ("def add(a: int, b: int) -> int:", "async def add(a: int, b: int) -> int:"),
    ],
)
def test_what_changes_the_fingerprint(change: tuple[str, str]) -> None:
    old, new = change
    source = BASE.replace(old, new)
    if new.startswith('@app.step(name="plus")'):
        source = source.replace("add(", "plus(").replace("def plus(", "def add(")
    assert source != BASE
    assert fp(source) != fp(BASE)


def test_the_fingerprint_is_the_same_in_another_process() -> None:
    """Strings hash differently in each process (a frozenset constant's order with them):
    the fingerprint does not."""
    source = BASE.replace("return add(y, 2)", "return add(y, 2) if x in {'a', 'b', 'c'} else 0")
    script = (
        "import sys; sys.path.insert(0, sys.argv[1]); import test_versions as t; "
        "print(t.fp(sys.argv[2]))"
    )
    outs = set()
    for seed in ("1", "2"):
        r = run(
            [sys.executable, "-c", script, str(HERE), source],
            env={"PYTHONHASHSEED": seed},
            path=[HERE.parent],
        )
        assert r.returncode == 0, r.stderr
        outs.add(r.stdout.strip())
    assert outs == {fp(source)}


@pytest.mark.parametrize(
    ("version", "error"),
    [
        (3, TypeError),
        (b"v1", TypeError),
        ("", ValueError),
        ("   ", ValueError),
        ("x" * 256, ValueError),
        ("a\nb", ValueError),
        ("a\x00b", ValueError),
    ],
)
def test_a_bad_version(version: Any, error: type[Exception]) -> None:
    with pytest.raises(error, match="version"):
        durable.App("bad", database="sqlite:///:memory:", version=version)
