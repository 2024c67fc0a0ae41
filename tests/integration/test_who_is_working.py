"""Who is working: ``client.workers()`` from the workers' rows of the log, in this process and
from real worker processes; the warning of a start that no live worker will take, the
``TimeoutError`` of ``result`` that says so, and the pruning of dead workers' rows."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import textwrap
import threading

import pytest
import sqlalchemy as sa

import durable
from durable.engine.presence import FORGET_WORKERS_AFTER
from durable.log import open_store
from durable.log.schema import workers as workers_table
from durable.log.store import WorkerRecord

NO_WORKER = "no live worker registers"

WORKER_APP = """
import sys

import durable

app = durable.App("procs", database=sys.argv[1], lease_timeout=float(sys.argv[2]),
                  poll_interval=0.1)

@app.workflow(name="proc-flow", queue="proc-q")
def flow(x: int) -> int:
    return x

@app.workflow(name="other-flow")
def other() -> None:
    pass

print("ready", flush=True)
app.run_worker(queues=["proc-q", "default"], worker_id=sys.argv[3])
"""


def ids(client: durable.Client) -> list[str]:
    return [w.id for w in client.workers()]


def no_worker_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if NO_WORKER in r.getMessage()]


def test_an_embedded_worker_is_listed_with_what_it_is_then_gone(make_app, wait_until):
    app = make_app(lease_timeout=0.9)  # heartbeats every 0.3 s
    inside, go_on = threading.Event(), threading.Event()

    @app.workflow(queue="q1")
    def flow() -> str:
        inside.set()
        go_on.wait(10)
        return "ok"

    client = app.client()
    with app.worker(queues=["q1"], worker_id="embedded-1") as worker:
        assert worker.worker_id == "embedded-1"
        [w] = client.workers()  # written before the block starts
        assert isinstance(w, durable.WorkerInfo)
        assert (w.id, w.host, w.pid) == ("embedded-1", socket.gethostname(), os.getpid())
        assert w.queues == ("q1",)
        assert w.workflows == (flow.__durable_workflow__.name,)  # type: ignore[attr-defined]
        assert w.version == app.version  # the fingerprint of its code
        assert w.running == ()
        assert w.started_at <= w.last_seen
        h = client.start(flow)
        assert inside.wait(10)
        wait_until(lambda: client.workers()[0].running == (h.id,), what="the run held")
        go_on.set()
        assert h.result(timeout=10) == "ok"
        wait_until(lambda: client.workers()[0].running == (), what="nothing held")
        assert w.serves(flow.__durable_workflow__.name, "q1")  # type: ignore[attr-defined]
        assert not w.serves(flow.__durable_workflow__.name, "q2")  # type: ignore[attr-defined]
    assert client.workers() == []  # a clean stop removes its row at once


def test_an_embedded_worker_of_every_queue(app, client):
    @app.workflow()
    def flow() -> None:
        pass

    with app.worker():
        [w] = client.workers()
    assert w.queues is None
    assert w.serves(flow.__durable_workflow__.name, "any-queue")  # type: ignore[attr-defined]


def test_the_async_client_lists_workers(app):
    @app.workflow()
    def flow() -> None:
        pass

    async def listed() -> list[durable.WorkerInfo]:
        return await app.async_client().workers()

    with app.worker(worker_id="async-seen"):
        assert [w.id for w in asyncio.run(listed())] == ["async-seen"]


def test_worker_processes_are_listed_and_leave_on_sigterm(tmp_path, db_url, processes):
    module = tmp_path / "worker_app.py"
    module.write_text(textwrap.dedent(WORKER_APP))
    with durable.Client(db_url) as client:
        a = processes.python(module, db_url, 30.0, "proc-a", name="proc-a")
        b = processes.python(module, db_url, 30.0, "proc-b", name="proc-b")
        a.wait_for(lambda: ids(client) == ["proc-a", "proc-b"], 30, "both workers listed")
        by_id = {w.id: w for w in client.workers()}
        assert by_id["proc-a"].pid == a.pid and by_id["proc-b"].pid == b.pid
        assert by_id["proc-a"].queues == ("proc-q", "default")
        assert set(by_id["proc-a"].workflows) == {"proc-flow", "other-flow"}
        assert client.start("proc-flow", 5).result(timeout=20) == 5
        assert a.terminate() == 0  # SIGTERM: drains, hands back, removes its row
        assert ids(client) == ["proc-b"]
        b.terminate()
        assert ids(client) == []


def test_a_killed_worker_stops_being_live_after_its_lease_timeout(
    tmp_path, db_url, processes, wait_until
):
    module = tmp_path / "worker_app.py"
    module.write_text(textwrap.dedent(WORKER_APP))
    with durable.Client(db_url) as client:
        proc = processes.python(module, db_url, 1.0, "doomed", name="doomed")
        proc.wait_for(lambda: ids(client) == ["doomed"], 30, "the worker listed")
        proc.kill()
        assert ids(client) == ["doomed"]  # its row stays: it did not stop cleanly
        # ...but it stops counting as live once a lease timeout passes without a heartbeat
        wait_until(lambda: ids(client) == [], timeout=15, what="the dead worker dropped")
        store = open_store(db_url)
        try:
            assert store.prune_workers(0.0) == 1  # the row was still there
        finally:
            store.close()


def test_a_worker_start_prunes_long_dead_rows(app, db_url):
    @app.workflow()
    def flow() -> None:
        pass

    store = open_store(db_url)
    try:
        rec = WorkerRecord(id="long-dead", host="h", pid=1, workflows=("x",), ttl=30.0)
        store.worker_seen(rec, starting=True)
    finally:
        store.close()
    _age(db_url, "long-dead", FORGET_WORKERS_AFTER + 60)
    with app.worker(worker_id="new"):
        assert [w.id for w in app.client().workers()] == ["new"]
    engine = sa.create_engine(_sa_url(db_url))
    try:
        with engine.connect() as c:
            assert c.execute(sa.select(workers_table.c.id)).all() == []
    finally:
        engine.dispose()


def _sa_url(db_url: str) -> str:
    from durable.log.postgres import normalize_url

    return normalize_url(db_url) if db_url.startswith("postgres") else db_url


def _age(db_url: str, worker_id: str, seconds: float) -> None:
    engine = sa.create_engine(_sa_url(db_url))
    try:
        with engine.begin() as c:
            c.execute(
                sa.update(workers_table)
                .where(workers_table.c.id == worker_id)
                .values(last_seen=workers_table.c.last_seen - seconds)
            )
    finally:
        engine.dispose()


# ---------------------------------------------------------------- the warning at start


def test_a_start_that_no_worker_takes_warns(app, client, caplog):
    @app.workflow()
    def flow(x: int) -> int:
        return x

    caplog.set_level(logging.WARNING, logger="durable.client")
    h = client.start(flow, 1)
    [msg] = no_worker_warnings(caplog)
    assert h.id in msg and flow.__durable_workflow__.name in msg  # type: ignore[attr-defined]
    assert "'default'" in msg  # the queue


def test_start_many_warns_once(app, client, caplog):
    @app.workflow()
    def flow(x: int) -> int:
        return x

    caplog.set_level(logging.WARNING, logger="durable.client")
    client.start_many(flow, [1, 2, 3])
    [msg] = no_worker_warnings(caplog)
    assert "3 runs" in msg


def test_no_warning_while_this_apps_worker_runs(app, client, caplog):
    @app.workflow()
    def flow(x: int) -> int:
        return x

    caplog.set_level(logging.WARNING, logger="durable.client")
    client.start(flow, 0)  # warns, and the client now holds an empty view of the log
    caplog.clear()
    with app.worker():
        assert client.start(flow, 1).result(timeout=10) == 1  # the view is stale: the hub knows
        client.start_many(flow, [2, 3])
    assert no_worker_warnings(caplog) == []


def test_no_warning_from_another_process_client_when_a_worker_is_live(app, db_url, caplog):
    @app.workflow(name="named-flow")
    def flow(x: int) -> int:
        return x

    caplog.set_level(logging.WARNING, logger="durable.client")
    with app.worker(), durable.Client(db_url) as other:
        assert other.start("named-flow", 4).result(timeout=10) == 4
    assert no_worker_warnings(caplog) == []


def test_a_worker_of_other_queues_does_not_count(app, client, caplog):
    @app.workflow(queue="busy")
    def flow(x: int) -> int:
        return x

    caplog.set_level(logging.WARNING, logger="durable.client")
    with app.worker(queues=["elsewhere"]):
        h = client.start(flow, 1)
        [msg] = no_worker_warnings(caplog)
        assert "'busy'" in msg
        with pytest.raises(TimeoutError) as err:
            h.result(timeout=0.2)
    assert NO_WORKER in str(err.value) and "'busy'" in str(err.value)


def test_result_timeout_says_no_live_worker_registers_it(db_url):
    with durable.Client(db_url) as client:
        h = client.start("nobody-runs-this")
        with pytest.raises(TimeoutError) as err:
            h.result(timeout=0.1)
    text = str(err.value)
    assert h.id in text and NO_WORKER in text and "'nobody-runs-this'" in text


def test_result_timeout_of_a_served_run_does_not_say_so(app, client):
    go_on = threading.Event()

    @app.workflow()
    def flow() -> None:
        go_on.wait(10)

    with app.worker():
        h = client.start(flow)
        with pytest.raises(TimeoutError) as err:
            h.result(timeout=0.2)
        go_on.set()
    assert NO_WORKER not in str(err.value)
