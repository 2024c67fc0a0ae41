"""``client.check()``: every unfinished run replayed against an App's code, on both backends,
with the three deploys of ``deployapp`` (``v1`` starts runs that sleep; ``v2`` cannot replay
them; ``v3`` can): what the report says run by run and per workflow, which runs it looks at,
that it writes nothing, that forked processes give the same verdicts, and its errors."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

import durable
from durable import Status
from durable.log.schema import metadata

PROCS = Path(__file__).resolve().parent / "procs"
sys.path.insert(0, str(PROCS))
import deployapp  # noqa: E402

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(autouse=True)
def sleep(monkeypatch: pytest.MonkeyPatch) -> None:
    """The runs of ``deploys`` (tests/integration/conftest.py) sleep an hour."""
    monkeypatch.setattr(deployapp, "SLEEP", 3600.0)


def sleeping_runs(v1: durable.App, n: int, wait_until: Callable[..., Any]) -> list[str]:
    """``n`` runs of ``order`` started under ``v1`` and run until they sleep."""
    client = v1.client()
    ids = [h.id for h in client.start_many("order", list(range(n)))]
    with v1.worker(concurrency=32):
        wait_until(
            lambda: set(ids) <= {r.id for r in client.list_runs(status="sleeping", limit=1000)},
            timeout=60,
            what=f"{n} runs asleep",
        )
    return ids


def snapshot(app: durable.App) -> dict[str, list[str]]:
    """Every row of every table of the log, as text, sorted."""
    with app.store.db.read() as c:  # type: ignore[attr-defined]
        return {
            t.name: sorted(repr(tuple(r)) for r in c.execute(sa.select(t)))
            for t in metadata.sorted_tables
        }


def test_the_report_names_each_run_that_would_block_where_and_why(
    deploys: Callable[..., durable.App], wait_until: Callable[..., Any]
) -> None:
    v1, v2, v3 = deploys("v1"), deploys("v2"), deploys("v3")
    ids = sleeping_runs(v1, 3, wait_until)
    report = v2.client().check()
    assert isinstance(report, durable.CheckReport)
    assert not report.ok and report.version == v2.version and report.jobs == 1
    assert sorted(r.run_id for r in report.blocked) == sorted(ids)
    for r in report.runs:
        assert isinstance(r, durable.RunCheck) and r.blocks
        assert (r.workflow, r.status, r.version, r.outcome) == (
            "order",
            Status.SLEEPING,
            v1.version,
            "blocks",
        )
        assert (r.position, r.called, r.recorded) == (2, "step 'fraud'", "sleep")
        assert r.error_type == "NonDeterminismError" and "position 2" in (r.message or "")
    assert report.workflows == (
        durable.WorkflowCheck("order", registered=True, checked=3, replays=0, blocks=3, fails=0),
    )
    text = report.render()
    assert "would block (3):" in text
    for words in ("RUN", "POSITION", "CODE CALLS", "JOURNAL HOLDS", "step 'fraud'", *ids):
        assert words in text
    assert text.splitlines()[-1].endswith("3 would block, 0 would fail")
    as_dict = report.to_dict()
    assert as_dict["ok"] is False and len(as_dict["runs"]) == 3
    assert as_dict["runs"][0]["outcome"] == "blocks" and as_dict["runs"][0]["status"] == "sleeping"
    assert as_dict["workflows"] == [
        {"workflow": "order", "registered": True, "checked": 3}
        | {"replays": 0, "blocks": 3, "fails": 0}
    ]

    for good in (v1, v3):  # the code that started them, and the patched code
        ok = good.client().check()
        assert ok.ok and [r.outcome for r in ok.runs] == ["replays"] * 3
        assert ok.blocked == () and ok.failing == ()
        assert ok.render().splitlines()[-1].endswith("every one replays")


def test_check_writes_nothing(
    deploys: Callable[..., durable.App],
    wait_until: Callable[..., Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    v1, v2, v3 = deploys("v1"), deploys("v2"), deploys("v3")
    sleeping_runs(v1, 100, wait_until)
    monkeypatch.setattr(deployapp, "SLEEP", 2.0)  # these wake soon, and v2 parks them
    short = sleeping_runs(v1, 20, wait_until)
    with v2.worker():
        wait_until(
            lambda: {v2.client().get(i).status() for i in short} == {Status.BLOCKED},
            timeout=30,
            what="all blocked",
        )
    before = snapshot(v1)
    for app in (v1, v2, v3):
        for jobs in (1, 2):
            report = app.client().check(finished=10, jobs=jobs)
            assert len(report.runs) == 120 and report.jobs == jobs  # none finished
    assert {r.outcome for r in report.runs} == {"replays"}  # v3 would heal them all
    assert snapshot(v1) == before


def test_forked_processes_give_the_same_verdicts_in_the_same_order(
    deploys: Callable[..., durable.App], wait_until: Callable[..., Any], db_url: str
) -> None:
    v1, v2 = deploys("v1"), deploys("v2")
    sleeping_runs(v1, 120, wait_until)
    durable.Client(db_url).start("elsewhere", 1)  # a run of another App's workflow
    alone = v2.client().check()
    forked = v2.client().check(jobs=2)
    assert (alone.jobs, forked.jobs) == (1, 2)
    assert forked.runs == alone.runs and len(forked.runs) == 121
    assert forked.workflows == alone.workflows
    assert len(forked.blocked) == 120
    assert v2.client().check(jobs=64).jobs == 2  # at most one process per 50 runs


def test_which_runs_are_checked(
    deploys: Callable[..., durable.App],
    wait_until: Callable[..., Any],
    db_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    v1, v2, v3 = deploys("v1"), deploys("v2"), deploys("v3")
    monkeypatch.setattr(deployapp, "SLEEP", 0.0)
    with v1.worker():
        done = [v1.client().start("order", n) for n in range(3)]
        assert [h.result(timeout=20) for h in done] == ["charged 1", "charged 2", "charged 3"]
    monkeypatch.setattr(deployapp, "SLEEP", 3600.0)
    asleep = sleeping_runs(v1, 2, wait_until)
    pending = v1.client().start("order", 9, delay=3600).id
    other = durable.Client(db_url).start("elsewhere", 1).id
    client = v2.client()

    report = client.check()
    assert {r.run_id for r in report.runs} == {*asleep, pending, other}
    by_id = {r.run_id: r for r in report.runs}
    assert by_id[pending].outcome == "replays"  # nothing recorded yet: nothing to part from
    assert by_id[other].outcome == "unregistered" and by_id[other].version is None
    assert report.unregistered == (by_id[other],)
    assert not report.ok and len(report.blocked) == 2
    assert durable.WorkflowCheck("elsewhere", registered=False, checked=1) in report.workflows
    assert "not registered by this App" in report.render()

    assert [r.run_id for r in client.check(status="pending").runs] == [other, pending]
    assert {r.run_id for r in client.check(workflow="order").runs} == {*asleep, pending}

    newest = client.check(finished=2)
    assert [r.run_id for r in newest.runs[-2:]] == [done[2].id, done[1].id]  # newest first
    assert [r.outcome for r in newest.runs[-2:]] == ["blocks", "blocks"]
    completed = client.check(status="completed", finished=10)
    assert sorted(r.run_id for r in completed.runs) == sorted(h.id for h in done)
    assert {r.status for r in completed.runs} == {Status.COMPLETED}
    healed = v3.client().check(status="completed", finished=10)
    assert healed.ok and len(healed.runs) == 3
    assert client.check(status="running").runs == ()

    async def in_a_coroutine() -> durable.CheckReport:
        return await v2.async_client().check(status="pending", workflow="order")

    assert [r.run_id for r in asyncio.run(in_a_coroutine()).runs] == [pending]


def test_a_run_whose_replayed_code_raises_would_fail(
    deploys: Callable[..., durable.App], wait_until: Callable[..., Any], db_url: str
) -> None:
    (run_id,) = sleeping_runs(deploys("v1"), 1, wait_until)
    broken = durable.App("deploy", database=db_url)

    @broken.step(name="reserve")
    def reserve(n: int) -> int:
        return n + 1

    @broken.workflow(name="order")
    def order(n: int) -> str:
        reserve(n)
        raise RuntimeError("the new code is broken")

    try:
        report = broken.client().check()
        assert broken.client().check(workflow=order).runs == report.runs  # by the function
    finally:
        broken.close()
    (r,) = report.runs
    assert (r.run_id, r.outcome, r.blocks) == (run_id, "fails", False)
    assert (r.error_type, r.message) == ("RuntimeError", "the new code is broken")
    assert not report.ok and report.failing == (r,) and report.blocked == ()
    assert report.workflows[0].fails == 1
    text = report.render()
    assert "would fail (1):" in text and "RuntimeError: the new code is broken" in text


def test_a_failed_run_that_fails_again_as_it_did_replays(db_url: str) -> None:
    app = durable.App("failing", database=db_url)

    @app.workflow(name="boom")
    def boom(n: int) -> None:
        raise ValueError(f"no {n}")

    try:
        with app.worker():
            h = app.client().start(boom, 1)
            with pytest.raises(durable.RunFailedError):
                h.result(timeout=20)
        report = app.client().check(finished=1)
    finally:
        app.close()
    (r,) = report.runs
    assert (r.run_id, r.status, r.outcome) == (h.id, Status.FAILED, "replays")
    assert report.ok


def test_bad_arguments_are_refused_before_anything_is_read(
    deploys: Callable[..., durable.App], db_url: str
) -> None:
    client = deploys("v2").client()
    with pytest.raises(ValueError, match="'completed' have finished: give finished=N"):
        client.check(status="completed")
    with pytest.raises(ValueError, match="'done' is not a valid Status"):
        client.check(status="done")
    with pytest.raises(durable.UnknownWorkflowError, match="does not register workflow 'nope'"):
        client.check(workflow="nope")
    with pytest.raises(ValueError, match="finished must be 0 or more"):
        client.check(finished=-1)
    with pytest.raises(TypeError, match="finished must be an int"):
        client.check(finished=True)
    with pytest.raises(ValueError, match="jobs must be 1 or more"):
        client.check(jobs=0)
    with pytest.raises(TypeError, match="jobs must be an int"):
        client.check(jobs=2.0)  # type: ignore[arg-type]
    codeless = durable.Client(db_url)
    with codeless, pytest.raises(durable.UnknownWorkflowError, match=r"use app\.client\(\)"):
        codeless.check()
    empty = durable.App("empty", database=db_url)
    try:
        with pytest.raises(ValueError, match="registers no workflow"):
            empty.client().check()
    finally:
        empty.close()
