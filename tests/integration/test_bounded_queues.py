"""Bounded queues: ``app.queue(name, max_pending=N)`` refuses a start past ``N`` runs not yet
started, writing nothing, on both backends and under concurrent starters."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import pytest
from harness.processes import Processes, run, wait_for

import durable
from durable import QueueFullError, Status

PROCS = Path(__file__).parent / "procs"
sys.path.insert(0, str(PROCS))

from bounded_starter import BATCH, LIMIT, make_app  # noqa: E402

SCRIPT = Path(sys.executable).parent / "durable"
COMMAND = [str(SCRIPT)] if SCRIPT.exists() else [sys.executable, "-m", "durable.cli"]


def _bounded(app: durable.App, limit: int = 3):  # type: ignore[no-untyped-def]
    app.queue("bulk", max_pending=limit)

    @app.workflow(queue="bulk")
    def job(n: int) -> int:
        durable.sleep(3600)  # once taken, the run stays asleep: started, no longer pending
        return n

    return job


def _not_started(client: durable.Client, queue: str = "bulk") -> int:
    return len(client.list_runs(status=Status.PENDING, queue=queue))


def test_a_full_queue_refuses_a_start_and_writes_nothing(app, client):
    job = _bounded(app)
    ids = [client.start(job, i).id for i in range(3)]
    with pytest.raises(QueueFullError) as err:
        client.start(job, 3, id="one-too-many")
    assert isinstance(err.value, durable.DurableError)
    assert (err.value.queue, err.value.max_pending) == ("bulk", 3)
    assert "'bulk'" in str(err.value) and "3" in str(err.value)
    with pytest.raises(durable.RunNotFoundError):
        client.get("one-too-many").info()
    assert sorted(r.id for r in client.list_runs(queue="bulk")) == sorted(ids)
    # Another queue is not bounded by it.
    client.start(job, 9, queue="other")


def test_delayed_runs_count_and_a_cancelled_or_taken_run_frees_its_place(app, client):
    job = _bounded(app, limit=2)
    first = client.start(job, 0)
    client.start(job, 1, delay=3600)  # delayed: still not started, still counted
    with pytest.raises(QueueFullError):
        client.start(job, 2)
    first.cancel()
    third = client.start(job, 2)  # the cancelled run left the queue
    with pytest.raises(QueueFullError):
        client.start(job, 3)
    with app.worker():
        wait_for(lambda: third.status() == Status.SLEEPING, 20, "the run taken and asleep")
    client.start(job, 3)  # a run a worker has taken is no longer pending
    assert _not_started(client) == 2


def test_an_idempotent_start_of_an_existing_id_returns_it_even_when_full(app, client):
    job = _bounded(app, limit=2)
    a = client.start(job, 0, id="a")
    client.start(job, 1, id="b")
    assert client.start(job, 0, id="a").id == a.id
    assert [h.id for h in client.start_many(job, [0, 1], ids=["a", "b"])] == ["a", "b"]
    with pytest.raises(QueueFullError):
        client.start_many(job, [0, 2], ids=["a", "c"])  # "c" would be a third
    assert _not_started(client) == 2


def test_start_many_is_all_or_nothing(app, client):
    job = _bounded(app, limit=5)
    client.start_many(job, [0, 1, 2])
    with pytest.raises(QueueFullError):
        client.start_many(job, [3, 4, 5])  # two would fit: none is written
    assert _not_started(client) == 3
    client.start_many(job, [3, 4])
    assert _not_started(client) == 5
    with pytest.raises(QueueFullError):
        client.start_many(job, [6])
    assert len(client.start_many(job, list(range(6)), queue="undeclared")) == 6


def test_a_client_without_the_declaration_starts_unbounded(app, client, db_url):
    job = _bounded(app, limit=1)
    client.start(job, 0)
    with durable.Client(db_url) as bare:
        bare.start(job.__durable_workflow__.name, 1, queue="bulk")
    assert _not_started(client) == 2
    with pytest.raises(QueueFullError):
        client.start(job, 2)


def test_the_async_client_raises_the_same(app):
    job = _bounded(app, limit=1)
    aclient = app.async_client()

    async def go() -> None:
        await aclient.start(job, 0)
        with pytest.raises(QueueFullError):
            await aclient.start(job, 1)
        with pytest.raises(QueueFullError):
            await aclient.start_many(job, [1, 2])

    asyncio.run(asyncio.wait_for(go(), timeout=30))
    assert _not_started(app.client()) == 1


def test_the_cli_start_respects_the_apps_bound(db_url):
    app = make_app(db_url)
    try:
        client = app.client()
        client.start_many("job", list(range(LIMIT)))
        argv = [*COMMAND, "--database", db_url, "start", "job", "1", "--app", "bounded_starter:app"]
        r = run(argv, cwd=PROCS, timeout=60)
        assert r.returncode == 1, (r.stdout, r.stderr)
        assert "is full" in r.stderr and "Traceback" not in r.stderr
        assert _not_started(client, "bounded") == LIMIT
    finally:
        app.close()


@pytest.mark.parametrize("mode", ["one", "many"])
def test_concurrent_starters_in_several_processes_never_exceed_the_bound(
    db_url, tmp_path, processes: Processes, mode
):
    app = make_app(db_url)
    app.client().close()  # create the schema before the race
    go = tmp_path / "go"
    attempts = 6 if mode == "one" else 3
    starters = [
        processes.python(PROCS / "bounded_starter.py", db_url, go, mode, attempts, name=f"s{i}")
        for i in range(4)
    ]
    for s in starters:
        s.wait_for_output("ready", 60)
    go.touch()
    results = []
    for s in starters:
        assert s.wait(120) == 0, s.describe()
        results.append(json.loads(s.output().strip().splitlines()[-1]))
    try:
        client = app.client()
        pending = client.list_runs(queue="bounded")
        started = sum(r["started"] for r in results)
        assert len(pending) == started
        per = 1 if mode == "one" else BATCH
        assert started == (LIMIT // per) * per, results
        assert sum(r["refused"] for r in results) == 4 * attempts - started // per
        assert len(pending) >= 1 and all(r.status is Status.PENDING for r in pending)
    finally:
        app.close()


@pytest.mark.parametrize("bad", [0, -1])
def test_max_pending_below_one_is_a_value_error(app, bad):
    with pytest.raises(ValueError, match="max_pending must be at least 1"):
        app.queue("q", max_pending=bad)


@pytest.mark.parametrize("bad", ["3", 2.5, True, [3]])
def test_max_pending_not_an_int_is_a_type_error(app, bad):
    with pytest.raises(TypeError, match="max_pending must be an int"):
        app.queue("q", max_pending=bad)
    assert "q" not in app.queues
