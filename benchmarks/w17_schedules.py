"""W17 schedules: from a cron tick to its run's start, with four worker processes.

Four worker processes (``benchmarks._worker`` with this module's :func:`build`) run an App
that declares a per-second schedule (``"* * * * * *"``, ``catch_up="all"``) of a workflow
of one no-op step. Every worker's scheduler fires the same ticks; the run of a tick is
inserted once (its id is derived from the tick) and taken by whichever worker leases it.
The benchmark process waits, idle, until ``settings.w17_ticks`` ticks after a warm-up
second have completed, then reads the log: latency = the run's ``started_at`` (the
database's clock when a worker first took it) minus its tick. That covers the scheduler's
wake-up at the tick, the firing transaction, the wake-up of a worker (the firing process's
own at once; the others by ``NOTIFY`` on Postgres, by polling on SQLite) and its lease.
Mean in the table, p50 and p99 below; ``runs_per_tick`` (runs in the log per tick in the
measured range: 1.0 is exactly one) and ``missing_ticks`` (ticks of the range without a
run: 0) check the one-run-per-tick guarantee on real processes. Real time: one tick per
second, so a repetition takes ``w17_ticks`` seconds and more.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass
from typing import Any

from benchmarks.logs import fresh_log
from benchmarks.model import Measurement, Settings
from benchmarks.procs import WorkerProcess, started
from benchmarks.timing import percentiles_us

WORKFLOW = "bench_tick"
SCHEDULE = "bench-every-second"
WORKERS = 4
LIMIT = 120.0


@dataclass(frozen=True, slots=True)
class ScheduleBench:
    app: Any
    """The ``durable.App``."""


def build(url: str) -> ScheduleBench:
    """A ``durable.App`` on ``url`` with W17's schedule (every worker process builds it)."""
    import durable

    app = durable.App("bench", database=url, poll_interval=1.0)

    @app.step(name="bench_tick_step")
    def tick_step() -> int:
        return 1

    @app.workflow(name=WORKFLOW)
    def bench_tick(tick: dt.datetime) -> int:
        return tick_step()

    app.schedule(bench_tick, "* * * * * *", name=SCHEDULE, catch_up="all")
    return ScheduleBench(app=app)


def durable_w17(settings: Settings, backend: str) -> Measurement:
    """Time ``settings.w17_ticks`` ticks to their runs' starts, four worker processes."""
    n = settings.w17_ticks
    with fresh_log(settings, backend, "w17") as url:
        bench = build(url)
        app = bench.app
        app.store  # noqa: B018 - create the log before the workers open it

        def make(i: int, stderr: Any) -> WorkerProcess:
            return WorkerProcess(
                url, settings.worker_concurrency, stderr, builder="benchmarks.w17_schedules:build"
            )

        try:
            with started(make, WORKERS):
                first = float(int(time.time()) + 2)  # after a warm-up second
                last = first + n - 1
                rows = _wait_for(app, first, last)
        finally:
            app.close()
    ticks = [first + i for i in range(n)]
    by_tick: dict[float, list[Any]] = {}
    for row in rows:
        by_tick.setdefault(_tick_of(row.id), []).append(row)
    latencies = [by_tick[t][0].started_at - t for t in ticks if t in by_tick]
    return Measurement(
        ops=len(latencies),
        seconds=sum(latencies),
        extra={
            **percentiles_us([int(x * 1e9) for x in latencies], "start"),
            "runs_per_tick": sum(len(by_tick.get(t, [])) for t in ticks) / n,
            "missing_ticks": float(sum(1 for t in ticks if t not in by_tick)),
            "workers": float(WORKERS),
        },
    )


def _tick_of(run_id: str) -> float:
    return dt.datetime.fromisoformat(run_id.partition(":")[2]).timestamp()


def _wait_for(app: Any, first: float, last: float) -> list[Any]:
    """The log's rows of the runs of the ticks from ``first`` to ``last``, once the last
    one has completed."""
    from durable.log.store import RunFilter
    from durable.types import Status

    deadline = time.monotonic() + (last - time.time()) + LIMIT
    while True:
        rows = app.store.list_runs(RunFilter(workflow=WORKFLOW, limit=100_000))
        mine = [r for r in rows if first <= _tick_of(r.id) <= last]
        done = [r for r in mine if r.status is Status.COMPLETED]
        if any(_tick_of(r.id) == last for r in done) and len(done) == len(mine):
            return mine
        if time.monotonic() > deadline:
            raise TimeoutError(f"W17: the tick {last} did not complete within {LIMIT}s")
        time.sleep(0.2)
