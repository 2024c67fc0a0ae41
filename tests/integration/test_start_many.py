"""``client.start_many``: many runs in one transaction, all or nothing."""

from __future__ import annotations

import asyncio

import pytest

import durable
from durable import IdConflictError, SerializationError, Status, UnknownWorkflowError


def test_start_many_starts_one_run_per_item_in_order(app, client):
    @app.step()
    def double(x: int) -> int:
        return 2 * x

    @app.workflow()
    def flow(x: int, y: int = 0) -> int:
        return double(x) + y

    handles = client.start_many(flow, [1, (2, 10), 3])
    assert len({h.id for h in handles}) == 3
    infos = [h.info() for h in handles]
    assert [i.status for i in infos] == [Status.PENDING] * 3
    assert len({i.workflow for i in infos}) == 1 and infos[0].workflow.endswith("flow")
    with app.worker():
        assert [h.result(timeout=20) for h in handles] == [2, 14, 6]
    # Each run's journal starts with its own run_started, at seq 1.
    first = [client.events(h.id)[0] for h in handles]
    assert [(e.seq, e.type) for e in first] == [(1, "run_started")] * 3


def test_start_many_with_ids_is_idempotent_per_id(app, client):
    @app.workflow()
    def flow(x: int) -> int:
        return x

    a = client.start_many(flow, [1, 2], ids=["m-1", "m-2"])
    b = client.start_many(flow, [9, 9, 3], ids=["m-1", "m-2", "m-3"])
    assert [h.id for h in a] == ["m-1", "m-2"]
    assert [h.id for h in b] == ["m-1", "m-2", "m-3"]
    assert len(client.list_runs(workflow=flow)) == 3
    with app.worker():
        # The runs that existed kept their input.
        assert [h.result(timeout=20) for h in b] == [1, 2, 3]


def test_start_many_writes_nothing_when_one_item_is_bad(app, client):
    @app.workflow()
    def flow(x: int) -> int:
        return x

    @app.workflow()
    def other(x: int) -> int:
        return x

    with pytest.raises(SerializationError):
        client.start_many(flow, [1, object(), 3])
    with pytest.raises(TypeError):
        client.start_many(flow, [1, (1, 2, 3)])
    client.start(other, 1, id="taken")
    with pytest.raises(IdConflictError):
        client.start_many(flow, [1, 2], ids=["fresh", "taken"])
    with pytest.raises(ValueError, match="ids"):
        client.start_many(flow, [1, 2], ids=["only-one"])
    with pytest.raises(ValueError, match="repeat"):
        client.start_many(flow, [1, 2], ids=["x", "x"])
    with pytest.raises(UnknownWorkflowError):
        client.start_many("nope", [1])
    assert client.list_runs(workflow=flow) == []
    assert client.start_many(flow, []) == []


def test_start_many_of_many_runs_spans_several_statements(app, client):
    @app.workflow()
    def flow(x: int) -> int:
        return x

    n = 700  # more than one chunk of the multi-row insert, and an odd remainder
    handles = client.start_many(flow, range(n), queue="bulk", priority=3)
    runs = client.list_runs(workflow=flow, limit=10_000)
    assert len(runs) == n
    assert {r.queue for r in runs} == {"bulk"}
    assert {h.id for h in handles} == {r.id for r in runs}
    with app.worker(queues=["bulk"], concurrency=32):
        assert sum(h.result(timeout=60) for h in handles) == sum(range(n))


def test_async_client_start_many(app, tmp_path):
    @app.workflow()
    def flow(x: int) -> int:
        return x + 1

    async def main() -> list[int]:
        ac = app.async_client()
        handles = await ac.start_many(flow, [1, 2])
        return [await h.result(timeout=20) for h in handles]

    with app.worker():
        assert asyncio.run(main()) == [2, 3]


def test_durable_client_without_code_starts_many_by_name(app, db_url):
    @app.workflow(name="named")
    def flow(x: int) -> int:
        return x * 10

    bare = durable.Client(db_url)
    try:
        handles = bare.start_many("named", [(1,), (2,)])
        with app.worker():
            assert [h.result(timeout=20) for h in handles] == [10, 20]
    finally:
        bare.close()
