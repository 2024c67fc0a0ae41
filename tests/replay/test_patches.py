"""``durable.patched`` and ``durable.deprecate_patch`` against journals recorded before the
patch existed (the golden files), and against journals that hold the marker.

Each test defines today's code of a golden workflow (same name, a patch inserted) on a fresh
App over the loaded golden log: the old journal must replay the old branch, a run that had not
reached the patch yet must take the new one, and the deprecated form must refuse a journal of
the old branch with an error naming the change id and the position.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import golden
import pytest

import durable
from durable import App

pytestmark = pytest.mark.timeout(60)


def doc_of(name: str) -> dict[str, Any]:
    return golden.read(golden.JOURNALS / f"{name}.json")


class Code:
    """The steps of the golden app, with a log of the bodies that ran."""

    def __init__(self, url: str) -> None:
        self.calls: list[str] = []
        self.app = App("golden", database=url, poll_interval=0.05)
        calls = self.calls

        @self.app.step(name="add")
        def add(a: int, b: int) -> int:
            calls.append("add")
            return a + b

        @self.app.step(name="add_v2")
        def add_v2(a: int, b: int) -> int:
            calls.append("add_v2")
            return a + b + 1000

        @self.app.step(name="maybe")
        def maybe(x: int) -> int:
            calls.append("maybe")
            return x * 7

        self.add, self.add_v2, self.maybe = add, add_v2, maybe

    def workflow(self, name: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        return self.app.workflow(name=name)


@pytest.fixture
def url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path}/golden.db"


@pytest.fixture
def code(url: str) -> Iterator[Code]:
    c = Code(url)
    yield c
    c.app.close()


def patched_sleeping(code: Code, where: str, deprecated: bool = False) -> None:
    """``golden.sleeping`` (add, sleep, add) with a patch before (``"early"``) or after
    (``"late"``) the sleep; the new branch calls ``add_v2``."""

    def gate() -> bool:
        if deprecated:
            durable.deprecate_patch("bigger")
            return True
        return durable.patched("bigger")

    @code.workflow("golden.sleeping")
    def sleeping(x: int) -> int:
        if where == "early" and gate():
            return code.add_v2(x, 1)
        a = code.add(x, 1)
        durable.sleep(0.5)
        if where == "late" and gate():
            return code.add_v2(a, 100)
        return code.add(a, 100)


def patched_resumed(code: Code, deprecated: bool = False) -> None:
    """``golden.resumed`` (add, maybe, add) with a patch at its start."""

    @code.workflow("golden.resumed")
    def resumed(x: int) -> int:
        if deprecated:
            durable.deprecate_patch("triple")
            return code.add_v2(x, 0)
        if durable.patched("triple"):
            return code.add_v2(x, 0)
        a = code.add(x, 1)
        v = code.maybe(a)
        return code.add(v, 1)


def test_a_finished_old_journal_replays_the_old_branch(url: str, code: Code) -> None:
    run_id = golden.load(doc_of("resumed"), url)
    patched_resumed(code)
    assert code.app.client().replay(run_id) == 22
    assert code.calls == []


def test_an_old_run_before_the_patch_point_takes_the_new_branch_live(url: str, code: Code) -> None:
    """The sleeping golden run stopped at its sleep (position 2): a patch after the sleep is
    past its journal's end, so the run records the marker and takes the new branch."""
    run_id = golden.load(doc_of("sleeping"), url)
    patched_sleeping(code, "late")
    client = code.app.client()
    assert client.replay(run_id) is None
    with code.app.worker(worker_id="today"):
        assert client.get(run_id).result(timeout=20) == 1 + 1 + 100 + 1000
    assert code.calls == ["add_v2"]
    events = client.get(run_id).events()
    marks = [(e.position, e.name) for e in events if e.type == "patch_marked"]
    assert marks == [(3, "bigger")]
    assert [e.position for e in events if e.type == "step_completed"] == [1, 3 + 1]
    assert client.replay(run_id) == 1102  # the marker replays: the new branch again


def test_an_old_run_past_the_patch_point_keeps_the_old_branch_live(url: str, code: Code) -> None:
    """A patch at the very start: the sleeping run's journal holds a step there, so the
    patch is False (no position taken) and the run finishes on the old branch."""
    run_id = golden.load(doc_of("sleeping"), url)
    patched_sleeping(code, "early")
    client = code.app.client()
    with code.app.worker(worker_id="today"):
        assert client.get(run_id).result(timeout=20) == 102
    assert code.calls == ["add"]
    events = client.get(run_id).events()
    assert not [e for e in events if e.type == "patch_marked"]
    assert client.replay(run_id) == 102


def test_a_new_run_records_the_marker_and_replays_it(url: str, code: Code) -> None:
    patched_resumed(code)
    client = code.app.client()
    with code.app.worker():
        h = client.start("golden.resumed", 5)
        assert h.result(timeout=20) == 5 + 1000
    events = h.events()
    assert [(e.type, e.position, e.name) for e in events if e.type == "patch_marked"] == [
        ("patch_marked", 1, "triple")
    ]
    assert client.replay(h.id) == 1005


def test_deprecate_patch_consumes_the_marker(url: str, tmp_path: Path, code: Code) -> None:
    patched_resumed(code)
    client = code.app.client()
    with code.app.worker():
        h = client.start("golden.resumed", 5)
        h.result(timeout=20)
    later = Code(url)
    try:
        patched_resumed(later, deprecated=True)
        assert later.app.client().replay(h.id) == 1005
        assert later.calls == []
    finally:
        later.app.close()


def test_deprecate_patch_runs_a_new_run_without_recording(url: str, code: Code) -> None:
    patched_resumed(code, deprecated=True)
    client = code.app.client()
    with code.app.worker():
        h = client.start("golden.resumed", 5)
        assert h.result(timeout=20) == 1005
    assert not [e for e in h.events() if e.type == "patch_marked"]
    assert [e.position for e in h.events() if e.type == "step_completed"] == [1]


def test_deprecate_patch_past_the_journals_end_is_tolerated(url: str, code: Code) -> None:
    """The sleeping run had not reached the (late) patch point: nothing to decide."""
    run_id = golden.load(doc_of("sleeping"), url)
    patched_sleeping(code, "late", deprecated=True)
    client = code.app.client()
    with code.app.worker(worker_id="today"):
        assert client.get(run_id).result(timeout=20) == 1102
    assert not [e for e in client.get(run_id).events() if e.type == "patch_marked"]


def test_deprecate_patch_against_a_journal_from_before_the_patch(url: str, code: Code) -> None:
    """The old journal holds a step where the deprecated code has its patch: the error names
    the change id and the position (the code cannot know the old branch any more)."""
    run_id = golden.load(doc_of("resumed"), url)
    patched_resumed(code, deprecated=True)
    with pytest.raises(durable.NonDeterminismError) as info:
        code.app.client().replay(run_id)
    text = str(info.value)
    assert "'triple'" in text and "position 1" in text and "'add'" in text
    assert info.value.position == 1
    assert code.calls == []


def test_the_same_change_id_at_two_places(url: str, code: Code) -> None:
    @code.workflow("twice")
    def twice(x: int) -> int:
        a = code.add(x, 1) if durable.patched("p") else 0
        b = code.add(a, 1) if durable.patched("p") else 0
        return b

    client = code.app.client()
    with code.app.worker():
        h = client.start("twice", 1)
        with pytest.raises(durable.RunFailedError) as info:
            h.result(timeout=20)
    assert info.value.error_type == "ValueError"
    msg = info.value.error_message
    assert "'p'" in msg and "position 1" in msg and "position 3" in msg


@pytest.mark.parametrize(
    ("bad", "error"),
    [(3, TypeError), (None, TypeError), (b"x", TypeError), ("", ValueError), ("  ", ValueError)],
)
def test_a_bad_change_id(url: str, code: Code, bad: Any, error: type[Exception]) -> None:
    seen: list[str] = []

    @code.workflow("bad")
    def bad_id() -> str:
        for fn in (durable.patched, durable.deprecate_patch):
            try:
                fn(bad)
            except error as exc:
                seen.append(str(exc))
        return "ok"

    client = code.app.client()
    with code.app.worker():
        assert client.start("bad").result(timeout=20) == "ok"
    assert len(seen) == 2
    assert "change id" in seen[0] and "change id" in seen[1]
    assert not [e for e in client.get(client.list_runs()[0].id).events() if e.position]


def test_patched_outside_workflow_code(code: Code) -> None:
    with pytest.raises(durable.NotInRunError, match="workflow code"):
        durable.patched("x")
    with pytest.raises(durable.NotInRunError, match="workflow code"):
        durable.deprecate_patch("x")
    with pytest.raises(TypeError):
        durable.patched(1)  # type: ignore[arg-type]


def golden_patched(code: Code, form: str) -> None:
    """``golden.patched`` (add, patch, add, sleep, add) as code of three times: ``"patched"``
    (as recorded), ``"deprecated"`` (the new branch unconditional), ``"before"`` (the code
    from before the patch)."""

    @code.workflow("golden.patched")
    def patched(x: int) -> int:
        a = code.add(x, 1)
        if form == "patched":
            if durable.patched("golden-bigger"):
                a = code.add(a, 1000)
        elif form == "deprecated":
            durable.deprecate_patch("golden-bigger")
            a = code.add(a, 1000)
        durable.sleep(0.01)
        return code.add(a, 1)


@pytest.mark.parametrize("form", ["patched", "deprecated"])
def test_the_golden_journal_with_a_marker_replays(url: str, code: Code, form: str) -> None:
    run_id = golden.load(doc_of("patched"), url)
    golden_patched(code, form)
    assert code.app.client().replay(run_id) == 1005
    assert code.calls == []


def test_the_golden_journal_with_a_marker_against_the_code_before_it(url: str, code: Code) -> None:
    run_id = golden.load(doc_of("patched"), url)
    golden_patched(code, "before")
    with pytest.raises(durable.NonDeterminismError) as info:
        code.app.client().replay(run_id)
    assert info.value.position == 2
    assert info.value.recorded == "patch 'golden-bigger'"
    assert info.value.called == "sleep"
