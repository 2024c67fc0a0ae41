"""``durable.testing.assert_replays``: journals exported from a real log (by the command, on
both backends) replay against the code that recorded them and against a patched change of
it, and fail, naming the file, the run and the position, against an incompatible change."""

from __future__ import annotations

import re
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from harness.processes import run

import durable
from durable.testing import assert_replays

PROCS = Path(__file__).resolve().parent / "procs"
sys.path.insert(0, str(PROCS))
import deployapp  # noqa: E402

SCRIPT = Path(sys.executable).parent / "durable"
COMMAND = [str(SCRIPT)] if SCRIPT.exists() else [sys.executable, "-m", "durable.cli"]

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def deploys(db_url: str) -> Iterator[Callable[[str], durable.App]]:
    """``deploys(code)``: the App of that deploy of ``deployapp`` on the test's log."""
    made: list[durable.App] = []

    def make(code: str) -> durable.App:
        app = deployapp.make_app(code, db_url)
        made.append(app)
        return app

    yield make
    for app in made:
        app.close()


def export(db_url: str, run_id: str, target: Path) -> None:
    out = run([*COMMAND, "--database", db_url, "runs", "export", run_id, "-o", str(target)])
    assert out.returncode == 0, out.describe()


@pytest.fixture
def journals(
    db_url: str,
    deploys: Callable[[str], durable.App],
    monkeypatch: pytest.MonkeyPatch,
    wait_status: Any,
    tmp_path: Path,
) -> Path:
    """A folder of exports: under ``v1``, a run asleep (``v1/sleeping.json``) and a
    completed one (``v1/completed.json``); under ``v3``, a run asleep past the patch's
    marker (``v3/marked.json``)."""
    folder = tmp_path / "journals"
    for code, name, wait in (
        ("v1", "sleeping", 3600),
        ("v1", "completed", 0),
        ("v3", "marked", 3600),
    ):
        monkeypatch.setattr(deployapp, "SLEEP", wait)
        app = deploys(code)
        with app.worker():
            h = app.client().start("order", 4, id=f"{code}-{name}")
            if wait:
                wait_status(h, durable.Status.SLEEPING)
            else:
                assert h.result(timeout=20) == "charged 5"
        export(db_url, h.id, folder / code / f"{name}.json")
    return folder


def failure(app: durable.App, path: Path) -> str:
    with pytest.raises(AssertionError) as caught:
        assert_replays(app, path)
    return str(caught.value)


def test_replays_under_the_recording_and_patched_code_and_fails_under_a_change(
    journals: Path, tmp_path: Path
) -> None:
    never = tmp_path / "never-opened.db"
    v1 = deployapp.make_app("v1", f"sqlite:///{never}")
    assert assert_replays(v1, journals / "v1") == 2
    assert assert_replays(v1, journals / "v1" / "completed.json") == 1  # one file
    v3 = deployapp.make_app("v3")
    assert assert_replays(v3, journals) == 3  # the old journals, and one with the marker
    assert not never.exists()  # the App's own log is never opened

    # An incompatible change: each journal named with its file, run, position and calls.
    message = failure(deployapp.make_app("v2"), journals)
    lines = message.splitlines()
    assert lines[0] == (
        "3 of 3 exported journals no longer replay against the code of App 'deploy':"
    )
    sleeping, completed = journals / "v1" / "sleeping.json", journals / "v1" / "completed.json"
    assert (
        f"- {sleeping}: run 'v1-sleeping' of workflow 'order', at position 2: the code calls "
        "step 'fraud', the journal holds sleep"
    ) in lines
    assert f"- {completed}: run 'v1-completed' of workflow 'order', at position 2:" in message
    assert (
        f"- {journals / 'v3' / 'marked.json'}: run 'v3-marked' of workflow 'order', at "
        "position 2: the code calls step 'fraud', the journal holds patch 'fraud-check'"
    ) in lines
    assert "durable.patched(change_id)" in lines[-1]

    # deprecate_patch: the journal with the marker replays; those from before the patch
    # fail, naming the change id and the position.
    v4 = deployapp.make_app("v4")
    assert assert_replays(v4, journals / "v3") == 1
    message = failure(v4, journals / "v1")
    assert message.splitlines()[0].startswith("2 of 2 exported journals no longer replay ")
    for name in ("sleeping", "completed"):
        assert (
            f"- {journals / 'v1' / name}.json: run 'v1-{name}' of workflow 'order', at "
            "position 2: the code calls deprecate_patch 'fraud-check', the journal holds sleep"
        ) in message
    # The code from before the patch does not replay a journal of its new branch either.
    message = failure(v1, journals / "v3")
    assert "at position 2: the code calls sleep, the journal holds patch 'fraud-check'" in message


def test_other_reasons_a_journal_does_not_replay(journals: Path) -> None:
    sleeping, completed = journals / "v1" / "sleeping.json", journals / "v1" / "completed.json"
    other = durable.App("other")

    @other.workflow(name="invoice")
    def invoice(n: int) -> int:
        return n

    message = failure(other, sleeping)
    assert message.splitlines()[1] == (
        f"- {sleeping}: run 'v1-sleeping' of workflow 'order': App 'other' registers no "
        "workflow of that name (renamed or removed?)"
    )

    strict = durable.App("deploy")

    @strict.workflow(name="order")
    def order(n: str) -> str:  # was an int
        return n

    message = failure(strict, sleeping)
    assert re.search(
        r"run 'v1-sleeping' of workflow 'order': run 'v1-sleeping': its recorded arguments no "
        r"longer decode into the signature of workflow 'order': Expected `str`, got `int`",
        message,
    ), message

    raising = durable.App("deploy")

    @raising.step(name="reserve")
    def reserve(n: int) -> int:
        return n + 1

    @raising.workflow(name="order")
    def order2(n: int) -> str:
        if reserve(n) == 5:
            raise ValueError("five is sold out")
        return "never"

    message = failure(raising, completed)
    assert (
        "run 'v1-completed' of workflow 'order': the replayed code raises ValueError: five is "
        "sold out, where the run is completed"
    ) in message
