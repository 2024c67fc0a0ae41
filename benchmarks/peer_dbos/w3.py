"""W3 on DBOS: one workflow enqueues ``settings.w3_children`` child workflows and gathers
their results (DBOS's documented fan-out: ``DBOS.enqueue_workflow`` on a queue from inside
the parent, then ``handle.get_result()`` on each), wall time per child.

All in one DBOS process (the parent started with ``DBOS.start_workflow``, the children
dequeued by the same process's queue thread), as durable's W3 runs an embedded worker. The
queue has ``worker_concurrency = settings.worker_concurrency`` (else DBOS runs every child
on its own thread at once) and ``polling_interval_sec = settings.dbos_polling_interval``.
Each child is a workflow of one no-op step.
"""

from __future__ import annotations

from benchmarks.model import Measurement, Settings
from benchmarks.peer_dbos.isolate import in_own_process
from benchmarks.timing import Timer

WARMUP_CHILDREN = 5


def dbos_w3(settings: Settings, backend: str) -> Measurement:
    """W3 on DBOS, measured in a fresh interpreter."""
    return in_own_process("benchmarks.peer_dbos.w3:measure", settings, backend)


def measure(settings: Settings, backend: str) -> Measurement:
    """Time one fan-out of ``settings.w3_children`` children, after a small untimed one."""
    from dbos import DBOS

    from benchmarks.peer_dbos.journal import engine, wait_finished
    from benchmarks.peer_dbos.store import QUEUE, config, fresh_system_db
    from benchmarks.peer_dbos.worker import queue_thread_up
    from benchmarks.peer_dbos.workflows import CHILD, fanout

    n = settings.w3_children
    warm = min(WARMUP_CHILDREN, n)
    with fresh_system_db(settings, backend, "w3") as db:
        DBOS(config=config(db, "bench-w3"))
        DBOS.launch()
        try:
            DBOS.register_queue(
                QUEUE,
                worker_concurrency=settings.worker_concurrency,
                polling_interval_sec=settings.dbos_polling_interval,
            )
            if not queue_thread_up():
                raise RuntimeError(f"DBOS never started the thread of queue {QUEUE}")
            if DBOS.start_workflow(fanout, warm).get_result() != warm:
                raise AssertionError("DBOS W3 warm-up fan-out lost children")
            with Timer() as timer:
                gathered = DBOS.start_workflow(fanout, n).get_result()
            if gathered != n:
                raise AssertionError(f"DBOS W3 gathered {gathered} of {n} children")
            eng = engine(db)
            try:
                wait_finished(eng, db, CHILD, warm + n)  # every child recorded as done
            finally:
                eng.dispose()
        finally:
            DBOS.destroy()
    return Measurement(ops=n, seconds=timer.seconds, cpu_seconds=timer.cpu_seconds)
