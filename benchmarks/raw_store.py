"""``raw``: the store's own cost of one durable single-row commit.

The reference every durable figure is divided by. It uses the stdlib :mod:`sqlite3` directly
(no SQLAlchemy, no msgspec), on a file in the same mode as ``durable``'s log (WAL,
``synchronous=FULL``), with a table shaped like the journal, and writes one row per
``BEGIN IMMEDIATE; INSERT; COMMIT``: the least work a journaled step can cost if each step is
its own transaction.
"""

from __future__ import annotations

import os
import sqlite3
import time
import uuid

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
