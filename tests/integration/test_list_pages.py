"""``list_runs`` in keyset pages with every filter, ``count_runs`` and ``arguments``, on
both backends, against a log whose runs share creation instants (``start_many`` writes a
batch at one instant: the id breaks the tie)."""

from __future__ import annotations

import asyncio
import datetime as dt
import time

import pytest

import durable
from durable import RunNotFoundError, Status


@pytest.fixture
def plain(db_url: str):
    """A client without code (it starts runs of any workflow name)."""
    client = durable.Client(db_url)
    yield client
    client.close()


def _pages(client: durable.Client, limit: int, **filters: object) -> list[list[str]]:
    pages: list[list[str]] = []
    before = None
    while True:
        page = client.list_runs(limit=limit, before=before, **filters)  # type: ignore[arg-type]
        if page:
            pages.append([r.id for r in page])
        if len(page) < limit:
            return pages
        before = page[-1].id


def _flat(pages: list[list[str]]) -> list[str]:
    return [i for p in pages for i in p]


def test_keyset_pages_cover_each_filtered_list_once_in_order(make_app) -> None:
    app = make_app(version="v1")

    @app.workflow(name="alpha")
    def alpha(n: int) -> int:
        return n

    @app.workflow(name="beta")
    def beta(n: int) -> int:
        return n

    client = app.client()
    batches = [
        client.start_many(alpha, range(7), ids=[f"a-{i}" for i in range(7)]),
        client.start_many(beta, range(5), queue="slow", ids=[f"b-{i}" for i in range(5)]),
        client.start_many(alpha, range(4), queue="slow", ids=[f"c-{i}" for i in range(4)]),
    ]
    every = client.list_runs(limit=1000)
    assert len(every) == 16
    keys = [(r.created_at, r.id) for r in every]
    assert keys == sorted(keys, reverse=True)  # newest first, the id breaking ties
    assert len({r.created_at for r in every}) < len(every)  # there are ties to break

    for filters in ({}, {"workflow": "alpha"}, {"queue": "slow"}, {"status": Status.PENDING}):
        whole = [r.id for r in client.list_runs(limit=1000, **filters)]  # type: ignore[arg-type]
        for limit in (1, 3, 5):
            pages = _pages(client, limit, **filters)
            assert _flat(pages) == whole, (filters, limit)
            assert all(len(p) <= limit for p in pages)
    assert {r.id for r in client.list_runs(workflow=alpha, queue="slow")} == {
        h.id for h in batches[2]
    }
    assert client.list_runs(status="completed") == []

    with pytest.raises(RunNotFoundError, match="before names no run: 'gone'"):
        client.list_runs(before="gone")


def test_new_runs_do_not_shift_the_pages_after_a_cursor(plain) -> None:
    client = plain
    client.start_many("job", range(6), ids=[f"old-{i}" for i in range(6)])
    first = client.list_runs(limit=3)
    client.start_many("job", range(4), ids=[f"new-{i}" for i in range(4)])
    rest = client.list_runs(limit=100, before=first[-1].id)
    shown = [r.id for r in first + rest]
    assert sorted(shown) == [f"old-{i}" for i in range(6)]
    assert len(set(shown)) == 6


def test_time_range_id_prefix_and_version(make_app) -> None:
    old, new = make_app(version="2026.1"), make_app(version="2026.2")
    for app in (old, new):

        @app.workflow(name="job")
        def job(n: int) -> int:
            return n

    old.client().start_many("job", range(3), ids=["Order-1", "order-1", "order_1"])
    time.sleep(0.05)
    middle = dt.datetime.now(dt.UTC)
    time.sleep(0.05)
    client = new.client()
    client.start_many("job", range(3), ids=["order-2", "order%2", "order-20"])

    def ids(**filters: object) -> set[str]:
        return {r.id for r in client.list_runs(**filters)}  # type: ignore[arg-type]

    assert ids(since=middle) == {"order-2", "order%2", "order-20"}
    assert ids(until=middle) == {"Order-1", "order-1", "order_1"}
    assert ids(since=middle.timestamp() - 3600, until=middle) == ids(until=middle)
    assert ids(id_prefix="order-") == {"order-1", "order-2", "order-20"}  # case counts
    assert ids(id_prefix="order_") == {"order_1"}  # no wildcard: _ and % are text
    assert ids(id_prefix="order%") == {"order%2"}
    assert ids(id_prefix="order-2") == {"order-2", "order-20"}
    assert ids(id_prefix="Order") == {"Order-1"}
    assert ids(id_prefix="") == ids()
    assert ids(version="2026.1") == {"Order-1", "order-1", "order_1"}
    assert ids(version="2026.2", id_prefix="order-2") == {"order-2", "order-20"}
    assert ids(version="2026.3") == set()
    assert [r.version for r in client.list_runs(id_prefix="order-2")] == ["2026.2"] * 2

    with pytest.raises(ValueError, match="since must be a timezone-aware datetime"):
        client.list_runs(since=dt.datetime(2026, 1, 1))
    with pytest.raises(TypeError, match="until must be a datetime or Unix seconds, not str"):
        client.list_runs(until="yesterday")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="limit must be an int"):
        client.list_runs(limit=True)
    with pytest.raises(TypeError, match="id_prefix must be a str"):
        client.list_runs(id_prefix=7)  # type: ignore[arg-type]


def test_a_prefix_of_many_ids_and_of_few(plain) -> None:
    """SQLite looks a prefix of few ids up in the primary key, and tests a prefix of many
    on each run in order (``PREFIX_PROBE``): both give every match, newest first."""
    from durable.log.listing import PROBE as PREFIX_PROBE

    client = plain
    n = PREFIX_PROBE + 50
    client.start_many("job", range(n), ids=[f"bulk-{i:05d}" for i in range(n)])
    client.start_many("job", range(3), ids=["bulk-x1", "bulk-x2", "bulky"])
    many = _flat(_pages(client, 500, id_prefix="bulk-"))
    assert len(many) == n + 2 and len(set(many)) == n + 2
    assert many[:2] == ["bulk-x2", "bulk-x1"]
    few = [r.id for r in client.list_runs(id_prefix="bulk-x")]
    assert few == ["bulk-x2", "bulk-x1"]
    assert [r.id for r in client.list_runs(id_prefix="bulk-0004", limit=3)] == [
        "bulk-00049",
        "bulk-00048",
        "bulk-00047",
    ]


def test_count_runs_per_status_under_the_filters(make_app, wait_until) -> None:
    app = make_app(version="v7")

    @app.workflow(name="ok")
    def ok() -> int:
        return 1

    @app.workflow(name="bad")
    def bad() -> int:
        raise ValueError("no")

    client = app.client()
    with app.worker():
        done = [client.start(ok) for _ in range(3)] + [client.start(bad)]
        for h in done:
            wait_until(lambda h=h: h.status().is_terminal)
    client.start("ok", queue="nobody")
    cancelled = client.start("ok", queue="nobody")
    client.cancel(cancelled.id)

    counts = client.count_runs()
    assert set(counts) == set(Status)
    assert counts[Status.COMPLETED] == 3 and counts[Status.FAILED] == 1
    assert counts[Status.PENDING] == 1 and counts[Status.CANCELLED] == 1
    assert counts[Status.BLOCKED] == counts[Status.RUNNING] == 0
    assert client.count_runs(ok)[Status.COMPLETED] == 3
    assert sum(client.count_runs("bad").values()) == 1
    assert client.count_runs(queue="nobody") == {
        **dict.fromkeys(Status, 0),
        Status.PENDING: 1,
        Status.CANCELLED: 1,
    }
    assert sum(client.count_runs(version="v7").values()) == 6
    assert sum(client.count_runs(version="v8").values()) == 0
    assert sum(client.count_runs(id_prefix=cancelled.id).values()) == 1


def test_arguments_of_a_run(make_app) -> None:
    app = make_app()

    @app.workflow(name="ship")
    def ship(order: str, qty: int = 1, *, express: bool = False) -> str:
        return order

    client = app.client()
    h = client.start(ship, "o-1", 3, express=True)
    assert client.arguments(h.id) == (["o-1", 3], {"express": True})
    assert h.arguments() == (["o-1", 3], {"express": True})
    plain = durable.Client(app.database)
    try:
        g = plain.start("ship", {"nested": [1, 2]})
        assert plain.get(g.id).arguments() == ([{"nested": [1, 2]}], {})
    finally:
        plain.close()
    with pytest.raises(RunNotFoundError):
        client.arguments("nope")


def test_the_async_client_pages_counts_and_reads_arguments(plain, db_url) -> None:
    plain.start_many("job", range(5), ids=[f"j-{i}" for i in range(5)])

    async def main() -> tuple[list[str], list[str], dict[Status, int], object]:
        ac = durable.AsyncClient._wrapping(plain)
        first = await ac.list_runs(limit=2)
        rest = await ac.list_runs(limit=10, before=first[-1].id, id_prefix="j-")
        counts = await ac.count_runs(queue="default")
        handle = await ac.get("j-3")
        return [r.id for r in first], [r.id for r in rest], counts, await handle.arguments()

    first, rest, counts, args = asyncio.run(main())
    assert first + rest == [f"j-{i}" for i in (4, 3, 2, 1, 0)]
    assert counts[Status.PENDING] == 5
    assert args == ([3], {})
    assert asyncio.run(_async_args(db_url, "j-1")) == ([1], {})


async def _async_args(database: str, run_id: str) -> object:
    client = durable.AsyncClient(database)
    try:
        return await client.arguments(run_id)
    finally:
        client.close()


def test_a_prefix_at_the_edges_of_unicode(plain) -> None:
    """The prefix's range ends past its last code point that can grow: after U+D7FF comes
    U+E000 (no surrogates), and a prefix of U+10FFFF has no end but the log's."""
    ids = ["a\ud7ffz", "a\ue000", "\U0010ffffabc", "\U0010fffe", "b"]
    plain.start_many("job", range(len(ids)), ids=ids)

    def ids_of(prefix: str) -> set[str]:
        return {r.id for r in plain.list_runs(id_prefix=prefix)}

    assert ids_of("a\ud7ff") == {"a\ud7ffz"}
    assert ids_of("a") == {"a\ud7ffz", "a\ue000"}
    assert ids_of("\U0010ffff") == {"\U0010ffffabc"}
    assert ids_of("\U0010fffe") == {"\U0010fffe"}
