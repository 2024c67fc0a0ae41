"""W5 on DBOS: start-to-first-step latency of an idle DBOS worker process.

One DBOS worker process polls the queue (every ``settings.dbos_polling_interval`` s; DBOS
queues are polled, there is no push wake-up for them). After a few awaited warm-up runs it
is left idle; the benchmark process's ``DBOSClient`` then enqueues ``settings.w5_runs``
one-step runs, one every ``settings.w5_gap`` s, not waiting for them. The step's body
returns ``time.time()``; latency = that instant minus the instant just before the enqueue.
"""

from __future__ import annotations

import time
from typing import Any

from benchmarks.model import Measurement, Settings
from benchmarks.peer_dbos.isolate import in_own_process
from benchmarks.w5_wakeup import wake_measurement


def dbos_w5(settings: Settings, backend: str) -> Measurement:
    """W5 on DBOS, measured in a fresh interpreter."""
    return in_own_process("benchmarks.peer_dbos.w5:measure", settings, backend)


def measure(settings: Settings, backend: str) -> Measurement:
    """Time ``settings.w5_runs`` wake-ups of one idle DBOS worker process."""
    from benchmarks.peer_dbos.procs import dbos_workers
    from benchmarks.peer_dbos.store import client, enqueue_options, fresh_system_db, register_queue
    from benchmarks.peer_dbos.workflows import FIRST_STEP

    n = settings.w5_runs
    with fresh_system_db(settings, backend, "w5") as db:
        db_client = client(db)
        try:
            register_queue(db_client, settings, worker_concurrency=settings.worker_concurrency)
            opts = enqueue_options(FIRST_STEP)
            with dbos_workers(db, 1):
                for _ in range(settings.w5_warmup):
                    db_client.enqueue(opts).get_result()
                time.sleep(0.3)  # idle: nothing in flight, the worker polling
                before: list[float] = []
                after: list[float] = []
                handles: list[Any] = []
                tick = time.perf_counter()
                for _ in range(n):
                    before.append(time.time())
                    handles.append(db_client.enqueue(opts))
                    after.append(time.time())
                    tick += settings.w5_gap
                    time.sleep(max(tick - time.perf_counter(), 0.0))
                stamps = [float(h.get_result()["t"]) for h in handles]
        finally:
            db_client.destroy()
    return wake_measurement(before, after, stamps)
