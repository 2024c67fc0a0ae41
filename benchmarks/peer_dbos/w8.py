"""W8 on DBOS: runs started per second with nothing draining them.

A ``DBOSClient`` (no DBOS launched in the benchmark process, no worker anywhere) enqueues
``settings.w8_starts`` runs of the 10-step workflow, one ``client.enqueue`` (one
transaction) each: the primary figure, starts per second. DBOS has no batch start; the
closest is ``client.enqueue_in_transaction``, many enqueues inside one caller-owned
transaction, reported as ``batch_starts_per_s`` (the same number of runs, one commit).
"""

from __future__ import annotations

import time

from benchmarks.model import Measurement, Settings
from benchmarks.peer_dbos.isolate import in_own_process
from benchmarks.timing import Timer

WARMUP = 10


def dbos_w8(settings: Settings, backend: str) -> Measurement:
    """W8 on DBOS, measured in a fresh interpreter."""
    return in_own_process("benchmarks.peer_dbos.w8:measure", settings, backend)


def measure(settings: Settings, backend: str) -> Measurement:
    """Time ``settings.w8_starts`` single enqueues, then as many in one transaction."""
    import sqlalchemy as sa

    from benchmarks.peer_dbos.journal import engine
    from benchmarks.peer_dbos.store import client, enqueue_options, fresh_system_db, register_queue
    from benchmarks.peer_dbos.workflows import TEN_STEPS

    n = settings.w8_starts
    with fresh_system_db(settings, backend, "w8") as db:
        db_client = client(db)
        eng = engine(db)
        try:
            register_queue(db_client, settings, worker_concurrency=settings.worker_concurrency)
            opts = enqueue_options(TEN_STEPS)
            for _ in range(WARMUP):
                db_client.enqueue(opts, settings.steps)
            with Timer() as timer:
                for _ in range(n):
                    db_client.enqueue(opts, settings.steps)
            t0 = time.perf_counter()
            with eng.begin() as conn:
                for _ in range(n):
                    db_client.enqueue_in_transaction(conn, opts, settings.steps)
            batch_s = time.perf_counter() - t0
            with eng.connect() as conn:
                queued = conn.execute(
                    sa.text(
                        f"SELECT count(*) FROM {db.table('workflow_status')}"
                        " WHERE status = 'ENQUEUED'"
                    )
                ).scalar()
            if queued != WARMUP + 2 * n:
                raise AssertionError(f"DBOS W8: {queued} runs enqueued, expected {WARMUP + 2 * n}")
        finally:
            eng.dispose()
            db_client.destroy()
    return Measurement(
        ops=n,
        seconds=timer.seconds,
        cpu_seconds=timer.cpu_seconds,
        extra={"batch_starts_per_s": n / batch_s, "batch_us_per_start": batch_s * 1e6 / n},
    )
