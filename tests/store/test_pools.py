"""A connection held by one thread while another closes the log is closed when it is handed
back, not left open in a pool nobody uses any more (psycopg warns of a connection garbage
collected open; the server keeps its session until then)."""

from __future__ import annotations

import gc

import sqlalchemy as sa

from durable.log.open import open_store
from durable.log.pools import ClosingQueuePool
from durable.log.sqlstore import SqlStore


def _engines(store: SqlStore) -> list[sa.Engine]:
    d = store.db.dialect
    return list(
        {
            id(e): e for e in (d.write_engine, d.read_engine, d.fast_engine, d.fast_read_engine)
        }.values()
    )


def test_every_engine_of_the_log_uses_the_closing_pool(db_url: str) -> None:
    store = open_store(db_url)
    try:
        assert isinstance(store, SqlStore)
        for engine in _engines(store):
            assert isinstance(engine.pool, ClosingQueuePool)
    finally:
        store.close()


def test_a_connection_handed_back_after_close_is_closed(db_url: str) -> None:
    store = open_store(db_url)
    assert isinstance(store, SqlStore)
    held = [engine.raw_connection() for engine in _engines(store)]
    drivers = [c.driver_connection for c in held]
    store.close()  # disposes every engine while the connections are checked out
    for c in held:
        c.close()  # handed back to the pools that were disposed
    gc.collect()
    for d in drivers:
        closed = d.closed if hasattr(d, "closed") and not callable(d.closed) else _sqlite_closed(d)
        assert closed


def test_an_idle_pool_keeps_its_connections(db_url: str) -> None:
    store = open_store(db_url)
    assert isinstance(store, SqlStore)
    try:
        engine = store.db.dialect.fast_engine
        c = engine.raw_connection()
        driver = c.driver_connection
        c.close()
        assert engine.pool.checkedin() >= 1  # pooled, not closed: the pool still serves
        assert not (_sqlite_closed(driver) if db_url.startswith("sqlite") else driver.closed)
    finally:
        store.close()


def _sqlite_closed(conn: object) -> bool:
    try:
        conn.execute("SELECT 1")  # type: ignore[attr-defined]
    except Exception:
        return True
    return False
