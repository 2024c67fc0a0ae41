"""W2 on DBOS: ``settings.w2_runs`` runs of the 10-step workflow enqueued at once on a DBOS
queue by a ``DBOSClient`` in the benchmark process, drained by 1, 2 or 4 DBOS worker
processes (``benchmarks.peer_dbos.worker``: DBOS launched, its queue thread dequeuing).

The queue is how DBOS distributes work across processes; it is declared with
``worker_concurrency = settings.worker_concurrency`` (16, as durable's workers) and
``polling_interval_sec = settings.dbos_polling_interval``; each worker has its own
``executor_id``. Same timing rules as durable's W2: the workers are up, and a few warm-up
runs drained, before the clock starts; the clock runs from just before the first enqueue
to the last run's ``completed_at``; CPU is that of every worker plus the benchmark process.
"""

from __future__ import annotations

import time

from benchmarks.model import Measurement, Settings
from benchmarks.peer_dbos.isolate import in_own_process
from benchmarks.procs import cpu_of


def dbos_w2_1(settings: Settings, backend: str) -> Measurement:
    """W2 on DBOS, one worker process."""
    return in_own_process("benchmarks.peer_dbos.w2:measure_1", settings, backend)


def dbos_w2_2(settings: Settings, backend: str) -> Measurement:
    """W2 on DBOS, two worker processes."""
    return in_own_process("benchmarks.peer_dbos.w2:measure_2", settings, backend)


def dbos_w2_4(settings: Settings, backend: str) -> Measurement:
    """W2 on DBOS, four worker processes."""
    return in_own_process("benchmarks.peer_dbos.w2:measure_4", settings, backend)


def measure_1(settings: Settings, backend: str) -> Measurement:
    """See :func:`measure`."""
    return measure(settings, backend, 1)


def measure_2(settings: Settings, backend: str) -> Measurement:
    """See :func:`measure`."""
    return measure(settings, backend, 2)


def measure_4(settings: Settings, backend: str) -> Measurement:
    """See :func:`measure`."""
    return measure(settings, backend, 4)


def measure(settings: Settings, backend: str, processes: int) -> Measurement:
    """Enqueue ``settings.w2_runs`` runs; ``processes`` DBOS workers drain them."""
    from benchmarks.peer_dbos.journal import count_steps, engine, wait_finished
    from benchmarks.peer_dbos.procs import dbos_workers
    from benchmarks.peer_dbos.store import client, enqueue_options, fresh_system_db, register_queue
    from benchmarks.peer_dbos.workflows import TEN_STEPS

    runs, warmup, steps = settings.w2_runs, settings.w2_warmup, settings.steps
    with fresh_system_db(settings, backend, f"w2x{processes}") as db:
        db_client = client(db)
        eng = engine(db)
        try:
            register_queue(db_client, settings, worker_concurrency=settings.worker_concurrency)
            opts = enqueue_options(TEN_STEPS)
            with dbos_workers(db, processes) as workers:
                for _ in range(warmup):
                    db_client.enqueue(opts, steps)
                wait_finished(eng, db, TEN_STEPS, warmup)
                cpu0 = cpu_of(workers)
                c0 = time.process_time()
                t0 = time.time()
                for _ in range(runs):
                    db_client.enqueue(opts, steps)
                started = time.time()
                last = wait_finished(eng, db, TEN_STEPS, warmup + runs)
                cpu1 = cpu_of(workers)
                c1 = time.process_time()
            journaled = count_steps(eng, db, "dbos_bench_noop")
            if journaled != (warmup + runs) * steps:
                raise AssertionError(
                    f"DBOS W2 journaled {journaled} steps, expected {(warmup + runs) * steps}"
                )
        finally:
            eng.dispose()
            db_client.destroy()
    cpu = None if cpu0 is None or cpu1 is None else (cpu1 - cpu0) + (c1 - c0)
    return Measurement(
        ops=runs * steps,
        seconds=last - t0,
        cpu_seconds=cpu,
        extra={"starts_s": started - t0, "drain_after_starts_s": max(last - started, 0.0)},
    )
