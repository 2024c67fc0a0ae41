"""W4 on DBOS: recovery after a worker process is killed with SIGKILL half-way.

``settings.w4_runs`` runs of 10 steps that each sleep ``settings.w4_step_sleep`` s are
enqueued for one DBOS worker process (executor ``bench-w4-0``). When half of them have
succeeded the worker is SIGKILLed, and a new process with the *same* ``executor_id`` is
started: at launch DBOS recovers the workflows that executor left ``PENDING``, and its
queue thread dequeues the rest. The figure is the time from the kill to the last run's
completion (the restart's interpreter start and ``DBOS.launch()`` included, as a restarted
deployment pays them). Step bodies that ran twice are counted from a file each body
appends to.

Only the same-identity restart is measured: a DBOS process with another ``executor_id``
does not take over a dead executor's ``PENDING`` workflows (that is Conductor's or an
operator's job, ``DBOS._recover_pending_workflows``), so "another worker finishes the
rest" has no DBOS equivalent without Conductor.
"""

from __future__ import annotations

import os
import tempfile
import time
from typing import TYPE_CHECKING, Any

from benchmarks.model import Measurement, Settings
from benchmarks.peer_dbos.isolate import in_own_process
from benchmarks.procs import READY_TIMEOUT

if TYPE_CHECKING:
    from benchmarks.peer_dbos.store import SystemDb

EXECUTOR = "bench-w4-0"


def dbos_w4(settings: Settings, backend: str) -> Measurement:
    """W4 on DBOS, measured in a fresh interpreter."""
    return in_own_process("benchmarks.peer_dbos.w4:measure", settings, backend)


def measure(settings: Settings, backend: str) -> Measurement:
    """Kill the worker half-way, restart it with the same identity, time the rest."""
    from benchmarks.peer_dbos.journal import engine, wait_finished
    from benchmarks.peer_dbos.procs import DbosWorkerProcess
    from benchmarks.peer_dbos.store import client, enqueue_options, fresh_system_db, register_queue
    from benchmarks.peer_dbos.workflows import MARKS_ENV, SLEEPY

    runs, steps, pause = settings.w4_runs, settings.steps, settings.w4_step_sleep
    with (
        fresh_system_db(settings, backend, "w4") as db,
        tempfile.TemporaryDirectory(prefix="durable-bench-dbos-w4-", dir=settings.tmpdir) as tmp,
    ):
        marks = os.path.join(tmp, "marks.txt")
        env = {MARKS_ENV: marks}
        db_client = client(db)
        eng = engine(db)
        errs = [tempfile.TemporaryFile(dir=tmp) for _ in range(2)]  # noqa: SIM115 - closed below
        first = second = None
        try:
            register_queue(db_client, settings, worker_concurrency=settings.worker_concurrency)
            first = DbosWorkerProcess(db, EXECUTOR, errs[0], env)
            first.wait_ready(time.monotonic() + READY_TIMEOUT)
            opts = enqueue_options(SLEEPY)
            for _ in range(runs):
                db_client.enqueue(opts, steps, pause)
            wait_finished(eng, db, SLEEPY, max(runs // 2, 1))
            first.proc.kill()
            t_kill = time.time()
            first.proc.wait()
            in_flight = _count(eng, db, "PENDING")
            done_at_kill = _count(eng, db, "SUCCESS")
            second = DbosWorkerProcess(db, EXECUTOR, errs[1], env)
            second.wait_ready(time.monotonic() + READY_TIMEOUT)
            ready_s = time.time() - t_kill
            last = wait_finished(eng, db, SLEEPY, runs)
            if second.stop() != 0:
                raise RuntimeError(f"the restarted DBOS worker failed:\n{second.tail()}")
        finally:
            for w in (first, second):
                if w is not None and w.proc.poll() is None:
                    w.proc.kill()
                    w.proc.wait()
            for f in errs:
                f.close()
            eng.dispose()
            db_client.destroy()
        with open(marks, encoding="ascii") as marks_file:
            bodies = [line.strip() for line in marks_file if line.strip()]
    twice = len(bodies) - len(set(bodies))
    if len(set(bodies)) != runs * steps:
        raise AssertionError(
            f"DBOS W4 ran {len(set(bodies))} distinct step bodies of {runs * steps}"
        )
    return Measurement(
        ops=1,
        seconds=max(last - t_kill, 0.0),
        extra={
            "twice_ran": float(twice),
            "in_flight_at_kill": float(in_flight),
            "done_at_kill": float(done_at_kill),
            "restart_ready_s": ready_s,
        },
    )


def _count(eng: Any, db: SystemDb, status: str) -> int:
    """Runs of the W4 workflow in ``status``."""
    import sqlalchemy as sa

    from benchmarks.peer_dbos.workflows import SLEEPY

    with eng.connect() as c:
        n = c.execute(
            sa.text(
                f"SELECT count(*) FROM {db.table('workflow_status')}"
                " WHERE name = :wf AND status = :st"
            ),
            {"wf": SLEEPY, "st": status},
        ).scalar()
    return int(n or 0)
