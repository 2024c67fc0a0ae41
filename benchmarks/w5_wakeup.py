"""W5 wake-up latency: start-to-first-step time of an idle worker in another process.

One worker process (``app.run_worker(concurrency=16)``) is started and left idle after a few
awaited warm-up runs. The benchmark process then starts ``settings.w5_runs`` one-step runs
with its client, one every ``settings.w5_gap`` seconds (not waiting for them, so a slow
wake-up does not stretch the schedule); the step's body returns ``time.time()``. Latency =
that instant minus the instant just before ``client.start``: the start's own commit, the
wake-up (``NOTIFY`` on Postgres, polling where there is none), the lease and the step's
dispatch. The figure is the mean; p50 and p99 are printed below the table.
"""

from __future__ import annotations

import time

from benchmarks.bench_app import build
from benchmarks.logs import fresh_log
from benchmarks.model import Measurement, Settings
from benchmarks.procs import worker_processes
from benchmarks.timing import percentiles_us


def durable_w5(settings: Settings, backend: str) -> Measurement:
    """Time ``settings.w5_runs`` wake-ups of one idle worker process."""
    n = settings.w5_runs
    with fresh_log(settings, backend, "w5") as url:
        bench = build(url)
        app = bench.app
        client = app.client()
        app.store  # noqa: B018 - create the log before the worker opens it
        try:
            with worker_processes(url, 1, settings.worker_concurrency):
                for _ in range(settings.w5_warmup):
                    client.start(bench.first_step).result(timeout=60)
                time.sleep(0.3)  # idle: nothing in flight, the worker waiting for work
                before: list[float] = []
                after: list[float] = []
                handles = []
                tick = time.perf_counter()
                for _ in range(n):
                    before.append(time.time())
                    handles.append(client.start(bench.first_step))
                    after.append(time.time())
                    tick += settings.w5_gap
                    time.sleep(max(tick - time.perf_counter(), 0.0))
                stamps = [float(h.result(timeout=60)["t"]) for h in handles]
        finally:
            app.close()
    return wake_measurement(before, after, stamps)


def wake_measurement(before: list[float], after: list[float], stamps: list[float]) -> Measurement:
    """W5's figures from each start's instants (just before and after the start call) and
    the instant its first step ran: start-to-first-step, and from the call's return."""
    n = len(stamps)
    wake = [s - b for s, b in zip(stamps, before, strict=True)]
    from_return = [s - a for s, a in zip(stamps, after, strict=True)]
    return Measurement(
        ops=n,
        seconds=sum(wake),
        extra={
            **percentiles_us([int(x * 1e9) for x in wake], "wake"),
            **percentiles_us([int(x * 1e9) for x in from_return], "after_start"),
            "start_call_p50_us": sorted(a - b for a, b in zip(after, before, strict=True))[n // 2]
            * 1e6,
        },
    )
