"""``raw`` and ``raw8``: the store's own rate of durable single-row commits.

The references every durable figure is divided by, written without durable (no SQLAlchemy,
no msgspec), into a table shaped like the journal:

- SQLite: the stdlib :mod:`sqlite3` on a file in the same mode as ``durable``'s log (WAL,
  ``synchronous=FULL``), one row per ``BEGIN IMMEDIATE; INSERT; COMMIT``.
- Postgres: psycopg 3, one autocommit ``INSERT`` per row (one round trip, one WAL flush,
  the server's ``synchronous_commit``, ``on`` by default), in a fresh schema.

``raw`` is one client; ``raw8`` (Postgres only: SQLite has one writer at a time) is 8 client
threads, each with its own connection, each committing its share of the rows (commits per
second of all of them together). One
transaction per row is the least work a journaled step can cost if each step is its own
transaction; group commit is how a worker can journal more steps per second than that.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

from benchmarks.logs import libpq_url, postgres_schema
from benchmarks.model import Measurement, Settings
from benchmarks.timing import Timer, percentiles_us, temp_dir

JOURNAL_DDL = (
    # Shaped like durable's journal (durable/log/schema.py, table durable_events), with its
    # partial unique index on outcomes, but written here so the reference needs no durable.
    """
    CREATE TABLE events (
        run_id   VARCHAR(255) NOT NULL,
        seq      BIGINT       NOT NULL,
        type     VARCHAR(32)  NOT NULL,
        position INTEGER,
        name     VARCHAR(255),
        attempt  INTEGER,
        epoch    BIGINT       NOT NULL,
        at       FLOAT        NOT NULL,
        outcome  VARCHAR(16),
        data     BLOB         NOT NULL,
        PRIMARY KEY (run_id, seq)
    )
    """,
    """
    CREATE UNIQUE INDEX uq_events_outcome ON events (run_id, position, outcome)
    WHERE outcome IS NOT NULL
    """,
)
INSERT = (
    "INSERT INTO events (run_id, seq, type, position, name, attempt, epoch, at, outcome, data)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
PAYLOAD = b"\x81\xa1i\x07"  # about the size of a small msgspec-encoded dict
ROWS_PER_RUN = 10


def sqlite_single_row(settings: Settings, backend: str) -> Measurement:
    """Time ``settings.rows`` single-row commits on a fresh SQLite file (WAL, FULL)."""
    if backend != "sqlite":
        raise ValueError(f"raw_store.sqlite_single_row: backend {backend!r}")
    with temp_dir(settings.tmpdir, "raw") as folder:
        conn = sqlite3.connect(os.path.join(folder, "raw.db"), isolation_level=None)
        try:
            mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise RuntimeError(f"SQLite refused WAL mode (got {mode!r})")
            conn.execute("PRAGMA synchronous=FULL")
            for ddl in JOURNAL_DDL:
                conn.execute(ddl)

            def commit_rows(n: int, latencies: list[int] | None) -> None:
                run_id = ""
                for i in range(n):
                    seq = i % ROWS_PER_RUN
                    if seq == 0:
                        run_id = uuid.uuid4().hex
                    row = (
                        run_id,
                        seq + 1,
                        "step_completed",
                        seq + 1,
                        "noop",
                        1,
                        1,
                        time.time(),
                        "completed",
                        PAYLOAD,
                    )
                    t0 = time.perf_counter_ns()
                    conn.execute("BEGIN IMMEDIATE")
                    conn.execute(INSERT, row)
                    conn.execute("COMMIT")
                    if latencies is not None:
                        latencies.append(time.perf_counter_ns() - t0)

            commit_rows(settings.raw_warmup, None)
            latencies: list[int] = []
            with Timer() as timer:
                commit_rows(settings.rows, latencies)
            (count,) = conn.execute("SELECT count(*) FROM events").fetchone()
            if count != settings.raw_warmup + settings.rows:
                raise RuntimeError(f"raw store: {count} rows after the run")
        finally:
            conn.close()
    return Measurement(
        ops=settings.rows,
        seconds=timer.seconds,
        cpu_seconds=timer.cpu_seconds,
        extra=percentiles_us(latencies, "commit"),
    )


PG_JOURNAL_DDL = (
    """
    CREATE TABLE events (
        run_id   VARCHAR(255)     NOT NULL,
        seq      BIGINT           NOT NULL,
        type     VARCHAR(32)      NOT NULL,
        position INTEGER,
        name     VARCHAR(255),
        attempt  INTEGER,
        epoch    BIGINT           NOT NULL,
        at       DOUBLE PRECISION NOT NULL,
        outcome  VARCHAR(16),
        data     BYTEA            NOT NULL,
        PRIMARY KEY (run_id, seq)
    )
    """,
    """
    CREATE UNIQUE INDEX uq_events_outcome ON events (run_id, position, outcome)
    WHERE outcome IS NOT NULL
    """,
)
PG_INSERT = (
    "INSERT INTO events (run_id, seq, type, position, name, attempt, epoch, at, outcome, data)"
    " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
)


def _journal_rows(n: int) -> Iterator[tuple[Any, ...]]:
    """``n`` rows like a run's step outcomes, ten per run id."""
    run_id = ""
    for i in range(n):
        seq = i % ROWS_PER_RUN
        if seq == 0:
            run_id = uuid.uuid4().hex
        yield (
            run_id,
            seq + 1,
            "step_completed",
            seq + 1,
            "noop",
            1,
            1,
            time.time(),
            "completed",
            PAYLOAD,
        )


def postgres_single_row(settings: Settings, backend: str) -> Measurement:
    """Time ``settings.rows`` autocommit single-row INSERTs on one psycopg connection."""
    return _postgres_rows(settings, backend, clients=1)


def postgres_single_row_8(settings: Settings, backend: str) -> Measurement:
    """The same rows committed by ``settings.raw_clients`` threads, one connection each."""
    return _postgres_rows(settings, backend, clients=settings.raw_clients)


def _postgres_rows(settings: Settings, backend: str, clients: int) -> Measurement:
    import psycopg

    if backend != "postgres":
        raise ValueError(f"raw_store postgres reference: backend {backend!r}")
    with postgres_schema(settings, f"raw{clients}") as url:
        conninfo = libpq_url(url)
        with psycopg.connect(conninfo, autocommit=True) as setup:
            for ddl in PG_JOURNAL_DDL:
                setup.execute(ddl.encode())
        conns: list[Any] = []

        def connect() -> Callable[[tuple[Any, ...]], None]:
            conn = psycopg.connect(conninfo, autocommit=True, prepare_threshold=0)
            conns.append(conn)

            def commit(row: tuple[Any, ...]) -> None:
                conn.execute(PG_INSERT, row)

            return commit

        try:
            m = _threaded(settings, clients, connect)
        finally:
            for c in conns:
                c.close()
        with psycopg.connect(conninfo, autocommit=True) as check:
            got = check.execute("SELECT count(*) FROM events").fetchone()
    _expect_rows(int(got[0]) if got else -1, settings)
    return m


def _expect_rows(count: int, settings: Settings) -> None:
    if count != settings.raw_warmup + settings.rows:
        raise RuntimeError(f"raw store: {count} rows after the run")


def _threaded(
    settings: Settings, clients: int, connect: Callable[[], Callable[[tuple[Any, ...]], None]]
) -> Measurement:
    """Each of ``clients`` threads opens its connection, commits its warm-up rows, waits for
    the others, then its share of ``settings.rows``; timed from the common start to the
    last commit."""
    commits = [connect() for _ in range(clients)]
    for row in _journal_rows(settings.raw_warmup):
        commits[0](row)
    shares = [
        settings.rows // clients + (1 if i < settings.rows % clients else 0) for i in range(clients)
    ]
    barrier = threading.Barrier(clients + 1)
    latencies: list[list[int]] = [[] for _ in range(clients)]
    errors: list[BaseException] = []

    def work(i: int) -> None:
        mine = latencies[i]
        rows = list(_journal_rows(shares[i]))
        barrier.wait()
        try:
            for row in rows:
                t0 = time.perf_counter_ns()
                commits[i](row)
                mine.append(time.perf_counter_ns() - t0)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,), daemon=True) for i in range(clients)]
    for t in threads:
        t.start()
    barrier.wait()
    with Timer() as timer:
        for t in threads:
            t.join()
    if errors:
        raise errors[0]
    return Measurement(
        ops=settings.rows,
        seconds=timer.seconds,
        cpu_seconds=timer.cpu_seconds,
        extra=percentiles_us([x for lat in latencies for x in lat], "commit"),
    )
