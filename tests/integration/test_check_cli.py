"""``durable check --app MODULE:APP``, the real command in subprocesses, on both backends:
its table, its JSON, its exit codes, and the one-line errors of bad input."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from harness.processes import Finished, run

from durable import Status

PROCS = Path(__file__).resolve().parent / "procs"
sys.path.insert(0, str(PROCS))
import deployapp  # noqa: E402

SCRIPT = Path(sys.executable).parent / "durable"
COMMAND = [str(SCRIPT)] if SCRIPT.exists() else [sys.executable, "-m", "durable.cli"]

HEADS = ["CODE", "CALLS", "JOURNAL", "HOLDS"]

pytestmark = pytest.mark.timeout(120)


def check(db_url: str, *args: str, code: str = "v2") -> Finished:
    """``durable --database URL check ARGS`` with ``deployapp``'s code ``code``."""
    argv = [*COMMAND, "--database", db_url, "check", *args]
    return run(argv, cwd=PROCS, env={"DEPLOY_CODE": code, "DEPLOY_SLEEP": "3600"}, timeout=60)


def one_line_error(r: Finished, code: int, words: str) -> None:
    assert r.returncode == code, r.describe()
    assert r.stderr.startswith("durable: ") and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert words in r.stderr and "Traceback" not in r.stderr


@pytest.fixture
def asleep(
    db_url: str, monkeypatch: pytest.MonkeyPatch, wait_until: Callable[..., Any]
) -> Iterator[list[str]]:
    """Three runs of ``order`` started under ``v1``, asleep for an hour."""
    monkeypatch.setattr(deployapp, "SLEEP", 3600.0)
    v1 = deployapp.make_app("v1", db_url)
    try:
        client = v1.client()
        ids = [f"order-{n}" for n in range(3)]
        with v1.worker():
            for n, run_id in enumerate(ids):
                client.start("order", n, id=run_id)
            for run_id in ids:
                wait_until(lambda i=run_id: client.get(i).status() is Status.SLEEPING)
        yield ids
    finally:
        v1.close()


def test_exit_5_with_a_table_of_the_runs_that_would_block(db_url: str, asleep: list[str]) -> None:
    r = check(db_url, "--app", "deployapp:app")
    assert r.returncode == 5, r.describe()
    lines = r.stdout.splitlines()
    assert lines[0] == "would block (3):"
    assert lines[1].split() == ["RUN", "WORKFLOW", "VERSION", "POSITION", *HEADS]
    v1 = deployapp.make_app("v1").version
    for run_id in asleep:
        (row,) = [ln for ln in lines if ln.startswith(run_id)]
        assert row.split()[1:] == ["order", v1, "2", "step", "'fraud'", "sleep"]
    assert ["order", "3", "0", "3", "0"] in [ln.split() for ln in lines]
    assert lines[-1].endswith(": 3 would block, 0 would fail")

    j = check(db_url, "--app", "deployapp:app", "--json")
    assert j.returncode == 5, j.describe()
    doc = json.loads(j.stdout)
    assert doc["ok"] is False and doc["version"] == deployapp.make_app("v2").version
    assert sorted(x["run_id"] for x in doc["runs"] if x["outcome"] == "blocks") == asleep
    assert {(x["position"], x["called"], x["recorded"]) for x in doc["runs"]} == {
        (2, "step 'fraud'", "sleep")
    }
    assert doc["workflows"] == [
        {"workflow": "order", "registered": True, "checked": 3}
        | {"replays": 0, "blocks": 3, "fails": 0}
    ]


def test_exit_0_when_the_code_replays_every_run(db_url: str, asleep: list[str]) -> None:
    for code in ("v1", "v3"):
        r = check(db_url, "--app", "deployapp:app", "--jobs", "2", code=code)
        assert r.returncode == 0, r.describe()
        assert "would block" not in r.stdout
        assert r.stdout.splitlines()[-1].endswith(": every one replays")
    j = check(db_url, "--app", "deployapp:app", "--json", "--finished", "5", code="v3")
    assert j.returncode == 0 and json.loads(j.stdout)["ok"] is True
    only = check(db_url, "--app", "deployapp:app", "--json", "--status", "pending")
    assert only.returncode == 0 and json.loads(only.stdout)["runs"] == []  # none pending
    one = check(db_url, "--app", "deployapp:app", "--json", "--workflow", "order")
    assert one.returncode == 5 and len(json.loads(one.stdout)["runs"]) == 3


def test_bad_input_is_one_line_and_an_exit_code(db_url: str, asleep: list[str]) -> None:
    one_line_error(check(db_url, "--app", "nosuchmodule:app"), 2, "cannot import 'nosuchmodule'")
    one_line_error(check(db_url, "--app", "brokenapp:app"), 2, "importing 'brokenapp' failed")
    one_line_error(check(db_url, "--app", "checkapps:number"), 2, "is a int, not a durable.App")
    one_line_error(check(db_url, "--app", "checkapps:nothing"), 2, "has no attribute 'nothing'")
    one_line_error(check(db_url, "--app", "checkapps:empty"), 2, "registers no workflow")
    one_line_error(check(db_url, "--app", "deployapp"), 2, "expected MODULE:APP")
    one_line_error(
        check(db_url, "--app", "deployapp:app", "--status", "completed"),
        2,
        "give finished=N",
    )
    one_line_error(
        check(db_url, "--app", "deployapp:app", "--workflow", "nope"),
        3,
        "does not register workflow 'nope'",
    )
    for bad in (["--jobs", "0"], ["--finished", "-1"], ["--status", "done"], []):
        r = check(db_url, *(["--app", "deployapp:app"] if bad else []), *bad)
        assert r.returncode == 2 and "Traceback" not in r.stderr, r.describe()


def test_help_explains_the_command() -> None:
    r = run([*COMMAND, "check", "--help"], cwd=PROCS)
    assert r.returncode == 0, r.describe()
    text = " ".join(r.stdout.split())
    for words in (
        "--app MODULE:APP",
        "--status",
        "--workflow",
        "--finished N",
        "--jobs N",
        "--json",
        "executing no step and writing nothing",
        "Exits 0 if the code replays every run, 5 if some run would block",
    ):
        assert words in text, words
