"""The workers part of the Store contract (``durable_workers``), on every backend: a worker's
row is written when it starts, refreshed as it heartbeats, deleted when it stops, live while
it was seen within its ttl, and pruned once long dead."""

from __future__ import annotations

import sqlalchemy as sa

from durable.log import Store, open_store
from durable.log.schema import workers
from durable.log.store import WorkerRecord


def record(worker_id: str = "host-a/1", **kw: object) -> WorkerRecord:
    fields: dict[str, object] = {
        "id": worker_id,
        "host": "host-a",
        "pid": 1,
        "workflows": ("wf-a", "wf-b"),
        "ttl": 30.0,
        "queues": ("default",),
        "version": "v1",
        "running": (),
    }
    fields.update(kw)
    return WorkerRecord(**fields)  # type: ignore[arg-type]


def engine_of(store: Store) -> sa.Engine:
    from durable.log.postgres import normalize_url

    url = store.url
    return sa.create_engine(normalize_url(url) if url.startswith("postgres") else url)


def age_row(store: Store, worker_id: str, seconds: float) -> None:
    """Move a row's ``last_seen`` (and start) back by ``seconds``, as if time had passed."""
    engine = engine_of(store)
    try:
        with engine.begin() as c:
            c.execute(
                sa.update(workers)
                .where(workers.c.id == worker_id)
                .values(
                    last_seen=workers.c.last_seen - seconds,
                    started_at=workers.c.started_at - seconds,
                )
            )
    finally:
        engine.dispose()


def test_a_started_worker_is_live_with_what_it_said(store: Store) -> None:
    store.worker_seen(record(), starting=True)
    now, live = store.live_workers()
    assert [w.id for w in live] == ["host-a/1"]
    w = live[0]
    assert (w.host, w.pid, w.workflows, w.queues, w.version, w.running, w.ttl) == (
        "host-a",
        1,
        ("wf-a", "wf-b"),
        ("default",),
        "v1",
        (),
        30.0,
    )
    assert w.started_at == w.last_seen
    assert abs(now - w.last_seen) < 60


def test_a_heartbeat_refreshes_last_seen_and_what_it_holds(store: Store) -> None:
    store.worker_seen(record(), starting=True)
    age_row(store, "host-a/1", 5.0)
    store.worker_seen(record(running=("r-1", "r-2"), queues=None))
    _, [w] = store.live_workers()
    assert w.running == ("r-1", "r-2")
    assert w.queues is None
    assert w.last_seen - w.started_at >= 5.0  # started_at kept, last_seen moved


def test_a_restart_under_the_same_identity_starts_afresh(store: Store) -> None:
    store.worker_seen(record(running=("r-1",)), starting=True)
    age_row(store, "host-a/1", 100.0)
    store.worker_seen(record(pid=2), starting=True)
    _, [w] = store.live_workers()
    assert (w.pid, w.running) == (2, ())
    assert w.started_at == w.last_seen


def test_a_heartbeat_after_the_row_went_writes_it_again(store: Store) -> None:
    store.worker_seen(record(), starting=True)
    store.worker_gone("host-a/1")
    assert store.live_workers()[1] == []
    store.worker_seen(record())
    assert [w.id for w in store.live_workers()[1]] == ["host-a/1"]


def test_a_worker_not_seen_within_its_ttl_is_not_live(store: Store) -> None:
    store.worker_seen(record("a", ttl=10.0), starting=True)
    store.worker_seen(record("b", ttl=60.0), starting=True)
    age_row(store, "a", 11.0)
    age_row(store, "b", 11.0)
    assert [w.id for w in store.live_workers()[1]] == ["b"]


def test_prune_deletes_only_long_dead_rows(store: Store) -> None:
    for wid in ("old", "recent", "live"):
        store.worker_seen(record(wid), starting=True)
    age_row(store, "old", 7200.0)
    age_row(store, "recent", 120.0)
    assert store.prune_workers(3600.0) == 1
    assert store.prune_workers(3600.0) == 0
    assert [w.id for w in store.live_workers()[1]] == ["live"]
    # "recent" is dead but kept: a second store sees it in the table, not among the live
    other = open_store(store.url)
    try:
        assert other.prune_workers(60.0) == 1
    finally:
        other.close()


def test_a_row_that_cannot_be_read_is_left_out(store: Store) -> None:
    store.worker_seen(record("good"), starting=True)
    store.worker_seen(record("bad"), starting=True)
    engine = engine_of(store)
    try:
        with engine.begin() as c:
            c.execute(sa.update(workers).where(workers.c.id == "bad").values(info=b"\xc1junk"))
    finally:
        engine.dispose()
    assert [w.id for w in store.live_workers()[1]] == ["good"]
