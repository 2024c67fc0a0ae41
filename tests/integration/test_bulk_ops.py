"""``client.cancel_many`` and ``client.resume_many``: runs chosen by status, workflow and
queue, in pages, their children with them; refused without a filter unless ``all_runs``; the
async forms and ``durable cancel`` / ``durable resume`` without an ID; on every backend."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Callable
from typing import Any

import pytest

import durable
from durable import Status
from durable.cli.main import main as cli_main


def _apps(app: durable.App) -> tuple[Any, Any]:
    @app.workflow(name="waits", queue="slow")
    def waits(n: int) -> int:
        durable.wait_signal("go")
        return n

    @app.workflow(name="other")
    def other(n: int) -> int:
        return n

    return waits, other


def _statuses(client: durable.Client, workflow: str) -> list[Status]:
    return sorted(r.status for r in client.list_runs(workflow=workflow, limit=1000))


def test_cancel_many_by_workflow_leaves_the_others_and_counts(
    app: durable.App, client: durable.Client
) -> None:
    waits, other = _apps(app)
    client.start_many(waits, [1, 2, 3])
    client.start_many(other, [1, 2])
    assert client.cancel_many(workflow=waits) == 3
    assert _statuses(client, "waits") == [Status.CANCELLED] * 3
    assert _statuses(client, "other") == [Status.PENDING] * 2
    assert client.cancel_many(workflow="waits") == 0  # nothing unfinished is left
    assert client.cancel_many(queue="default", status="pending") == 2
    assert _statuses(client, "other") == [Status.CANCELLED] * 2


def test_cancel_many_cancels_children_and_asks_running_runs_to_stop(
    app: durable.App, client: durable.Client, wait_until: Callable[..., Any]
) -> None:
    waits, _ = _apps(app)

    @app.step(name="spin")
    def spin() -> int:
        while not durable.cancelled():
            threading.Event().wait(0.01)
        durable.check_cancelled()
        return 0

    @app.workflow(name="parent")
    def parent() -> int:
        durable.start_child(waits, 1)
        return spin()  # type: ignore[no-any-return]

    with app.worker():
        h = client.start(parent)
        wait_until(lambda: h.info().step == "spin", what="the parent to run its step")
        assert client.cancel_many(workflow=parent) == 1  # asked to stop: it is running
        with pytest.raises(durable.RunCancelledError):
            h.result(timeout=15)
    (kid,) = [r for r in client.list_runs() if r.parent_id == h.id]
    assert kid.status is Status.CANCELLED


def test_more_runs_than_one_page(app: durable.App, client: durable.Client) -> None:
    waits, _ = _apps(app)
    client.start_many(waits, list(range(450)))
    assert client.cancel_many(status="pending", workflow="waits") == 450
    assert client.resume_many(status="cancelled", queue="slow") == 450
    assert _statuses(client, "waits") == [Status.PENDING] * 450


def test_resume_many_resumes_what_matches_and_they_complete(
    app: durable.App, client: durable.Client
) -> None:
    waits, other = _apps(app)
    hs = client.start_many(other, [1, 2, 3])
    kept = client.start(waits, 9)
    assert client.cancel_many(all_runs=True) == 4
    assert client.resume_many(workflow=other) == 3
    assert kept.status() is Status.CANCELLED
    with app.worker():
        assert [h.result(timeout=15) for h in hs] == [1, 2, 3]
    assert client.resume_many(status="failed") == 0


def test_resume_many_leaves_a_run_whose_dedup_key_is_held(
    app: durable.App, client: durable.Client, caplog: pytest.LogCaptureFixture
) -> None:
    waits, _ = _apps(app)
    first = client.start(waits, 1, dedup_key="k")
    first.cancel()
    second = client.start(waits, 2, dedup_key="k")
    free = client.start(waits, 3)
    free.cancel()
    with caplog.at_level("WARNING", logger="durable.client"):
        assert client.resume_many(status="cancelled") == 1
    assert first.status() is Status.CANCELLED and free.status() is Status.PENDING
    assert f"run {first.id} was not resumed" in caplog.text and second.id in caplog.text


@pytest.mark.parametrize("bulk", ["cancel_many", "resume_many"])
def test_a_bulk_call_without_a_filter_or_with_a_wrong_status_is_refused(
    app: durable.App, client: durable.Client, bulk: str
) -> None:
    waits, _ = _apps(app)
    h = client.start(waits, 1)
    call = getattr(client, bulk)
    with pytest.raises(durable.InvalidOptionError, match="needs a filter"):
        call()
    wrong = "completed" if bulk == "cancel_many" else "pending"
    with pytest.raises(durable.InvalidOptionError, match=f"not for {wrong} runs"):
        call(status=wrong)
    with pytest.raises(durable.InvalidOptionError, match="no status 'bogus'"):
        call(status="bogus")
    with pytest.raises(durable.InvalidOptionError, match="all_runs must be True or False"):
        call(all_runs="yes")
    with pytest.raises(durable.InvalidOptionError, match="queue must be a non-empty string"):
        call(queue="")
    assert h.status() is Status.PENDING


def test_the_async_forms(app: durable.App, client: durable.Client) -> None:
    waits, _ = _apps(app)
    client.start_many(waits, [1, 2])

    async def go() -> tuple[int, int]:
        ac = app.async_client()
        return await ac.cancel_many(workflow="waits"), await ac.resume_many(all_runs=True)

    assert asyncio.run(go()) == (2, 2)


def test_durable_cancel_and_resume_without_an_id(
    app: durable.App, client: durable.Client, db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    waits, other = _apps(app)
    client.start_many(waits, [1, 2])
    client.start(other, 1)
    base = ["--database", db_url]
    assert cli_main([*base, "cancel", "--workflow", "waits"]) == 0
    assert capsys.readouterr().out == "cancelled 2 runs\n"
    assert cli_main([*base, "resume", "--status", "cancelled", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"resumed": 2}
    assert cli_main([*base, "cancel"]) == 2
    assert "needs a run's ID, or filters" in capsys.readouterr().err
    assert cli_main([*base, "cancel", "some-id", "--all"]) == 2
    assert "not both" in capsys.readouterr().err
    assert cli_main([*base, "cancel", "--status", "completed"]) == 2
    assert "not for completed runs" in capsys.readouterr().err
    assert cli_main([*base, "cancel", "--all"]) == 0
    assert capsys.readouterr().out == "cancelled 3 runs\n"
