"""Retention: ``client.prune`` and ``App(retention=...)`` delete whole finished runs only."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from contextlib import nullcontext
from typing import Any

import pytest
import sqlalchemy as sa

import durable
from durable.log.schema import events, signals


def _rows(db_url: str, table: sa.Table, run_id: str) -> int:
    from durable.log.postgres import normalize_url

    engine = sa.create_engine(normalize_url(db_url) if "postgres" in db_url else db_url)
    try:
        with engine.connect() as c:
            return int(
                c.execute(
                    sa.select(sa.func.count()).select_from(table).where(table.c.run_id == run_id)
                ).scalar_one()
            )
    finally:
        engine.dispose()


def _define(app: durable.App) -> dict[str, Any]:
    @app.workflow(name="ok")
    def ok(x: int) -> int:
        return x

    @app.workflow(name="bad")
    def bad(x: int) -> int:
        raise ValueError(f"bad {x}")

    @app.workflow(name="kid")
    def kid(x: int) -> int:
        return x * 2

    @app.workflow(name="parent")
    def parent(x: int, fail: bool) -> int:
        y = kid(x)
        if fail:
            raise RuntimeError("parent fails after its child")
        return y

    return {"ok": ok, "bad": bad, "parent": parent}


def _finish(client: durable.Client, wf: Any, *args: Any, id: str) -> str:
    h = client.start(wf, *args, id=id)
    expect = pytest.raises(durable.RunFailedError) if wf.__name__ == "bad" else nullcontext()
    with expect:
        h.result(timeout=20)
    return h.id


def _finished_runs(
    app: durable.App, n_ok: int, n_bad: int
) -> tuple[durable.Client, list[str], list[str]]:
    """``n_ok`` completed runs of "ok" and ``n_bad`` failed runs of "bad", oldest first."""
    wfs = _define(app)
    client = app.client()
    with app.worker():
        ok = [_finish(client, wfs["ok"], i, id=f"ok-{i}") for i in range(n_ok)]
        bad = [_finish(client, wfs["bad"], i, id=f"bad-{i}") for i in range(n_bad)]
    return client, ok, bad


def test_prune_keeps_unfinished_runs_and_the_newest_finished(
    make_app: Callable[..., durable.App], db_url: str
) -> None:
    client, done, failed = _finished_runs(make_app(), 4, 3)
    pending = client.start("ok", 99, id="pending-1")
    client.signal(pending.id, "hello", {"x": 1})
    journals = {rid: client.events(rid) for rid in [*done[-2:], *failed, pending.id]}

    gone = client.prune(durable.Retention(keep_completed=2))
    assert sorted(gone) == sorted(done[:2])
    for rid in done[:2]:
        with pytest.raises(durable.RunNotFoundError):
            client.get(rid)
        assert _rows(db_url, events, rid) == 0
    # The kept runs and their journals are untouched, the unfinished run and its inbox too.
    for rid, journal in journals.items():
        assert client.events(rid) == journal
    assert client.get(pending.id).status() is durable.Status.PENDING
    assert _rows(db_url, signals, pending.id) == 1

    # Keep nothing: every finished run goes, the pending one stays.
    gone = client.prune(durable.Retention(keep_completed=0, keep_failed=0))
    assert sorted(gone) == sorted([*done[2:], *failed])
    assert [r.id for r in client.list_runs()] == [pending.id]
    assert client.events(pending.id) == journals[pending.id]


def test_dry_run_ages_and_per_workflow_rules(make_app: Callable[..., durable.App]) -> None:
    client, ok, bad = _finished_runs(make_app(), 3, 2)
    young = durable.Retention(max_age=dt.timedelta(hours=1))
    assert client.prune(young) == []
    would = client.prune(durable.Retention(max_age=0), dry_run=True)
    assert sorted(would) == sorted(ok + bad)
    assert len(client.list_runs()) == 5  # a dry run deletes nothing
    # Per workflow: only "bad" is named, so "ok" runs are kept.
    assert sorted(client.prune({"bad": durable.Retention(keep_failed=1)})) == [bad[0]]
    assert sorted(r.id for r in client.list_runs()) == sorted([*ok, bad[1]])


def test_children_are_kept_while_a_parent_may_need_them(
    make_app: Callable[..., durable.App],
) -> None:
    app = make_app()
    wfs = _define(app)
    client = app.client()
    with app.worker():
        ok_parent = client.start(wfs["parent"], 1, False, id="p-ok")
        assert ok_parent.result(timeout=20) == 2
        failed_parent = client.start(wfs["parent"], 2, True, id="p-bad")
        with pytest.raises(durable.RunFailedError):
            failed_parent.result(timeout=20)
    kids = {r.parent_id: r.id for r in client.list_runs(workflow="kid")}
    assert set(kids) == {"p-ok", "p-bad"}
    gone = client.prune({"kid": durable.Retention(keep_completed=0)})
    # The child of the completed parent goes; the failed parent may be resumed: its child stays.
    assert gone == [kids["p-ok"]]
    client.get(kids["p-bad"])
    # Once the failed parent itself is gone, its child may go too.
    gone = client.prune({"parent": durable.Retention(keep_completed=0, keep_failed=0)})
    assert sorted(gone) == ["p-bad", "p-ok"]
    assert client.prune({"kid": durable.Retention(keep_completed=0)}) == [kids["p-bad"]]


def test_a_child_whose_parent_changed_since_the_selection_is_kept(
    make_app: Callable[..., durable.App], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The parent check is made again on the locked rows: a parent that is no longer
    completed when the candidates are locked (here, made pending in the same transaction, as
    if resumed in between) keeps its child."""
    from durable.log.schema import runs

    app = make_app()
    wfs = _define(app)
    client = app.client()
    with app.worker():
        assert client.start(wfs["parent"], 1, False, id="p").result(timeout=20) == 2
    [kid] = [r.id for r in client.list_runs(workflow="kid")]
    store: Any = app.store
    select = store.maintenance._select_candidates

    def then_the_parent_changes(c: Any, *args: Any) -> list[str]:
        ids = select(c, *args)
        assert ids == [kid]  # selected: its parent was completed
        c.execute(sa.update(runs).where(runs.c.id == "p").values(status="pending"))
        return list(ids)

    monkeypatch.setattr(store.maintenance, "_select_candidates", then_the_parent_changes)
    assert client.prune({"kid": durable.Retention(keep_completed=0)}) == []
    assert client.get(kid).status() is durable.Status.COMPLETED
    monkeypatch.undo()
    assert client.prune({"parent": durable.Retention(keep_completed=0)}) == []  # unfinished
    # Completed again, then gone: the child may go.
    with store.db.write() as c:
        c.execute(sa.update(runs).where(runs.c.id == "p").values(status="completed"))
    assert client.prune({"parent": durable.Retention(keep_completed=0)}) == ["p"]
    assert client.prune({"kid": durable.Retention(keep_completed=0)}) == [kid]


def test_a_worker_applies_the_app_retention(
    make_app: Callable[..., durable.App], wait_until: Callable[..., Any]
) -> None:
    app = make_app(retention=durable.Retention(keep_completed=1), retention_interval=0.2)
    wfs = _define(app)
    client = app.client()
    with app.worker():
        for i in range(3):
            _finish(client, wfs["ok"], i, id=f"ok-{i}")
        failed = _finish(client, wfs["bad"], 0, id="bad-0")
        wait_until(lambda: len(client.list_runs(workflow="ok")) == 1, timeout=10)
    assert [r.id for r in client.list_runs(workflow="ok")] == ["ok-2"]
    assert client.get(failed).status() is durable.Status.FAILED


def test_retention_refuses_nonsense() -> None:
    with pytest.raises(ValueError):
        durable.Retention()
    with pytest.raises(ValueError):
        durable.Retention(keep_completed=-1)
    with pytest.raises(ValueError):
        durable.App("x", retention_interval=0)
