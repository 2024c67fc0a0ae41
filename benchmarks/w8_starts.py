"""W8 starting runs: ``client.start`` per second, and ``client.start_many`` batches.

A client on a fresh log, with no worker draining it, starts ``settings.w8_starts`` runs of
the 10-step workflow one ``client.start`` at a time (one transaction each): the primary
figure, starts per second. Then, after one untimed batch of that size, the same number of
runs in one ``client.start_many`` call (one transaction, multi-row inserts):
``batch_starts_per_s`` (issue 5's target: above 20,000 runs/s on SQLite). Both are checked
against the log afterwards.
"""

from __future__ import annotations

import time

from benchmarks.bench_app import build
from benchmarks.logs import fresh_log
from benchmarks.model import Measurement, Settings
from benchmarks.timing import Timer

WARMUP = 10


def durable_w8(settings: Settings, backend: str) -> Measurement:
    """Time ``settings.w8_starts`` single starts, then as many in one ``start_many``."""
    n = settings.w8_starts
    with fresh_log(settings, backend, "w8") as url:
        bench = build(url, settings.steps)
        app = bench.app
        client = app.client()
        try:
            # Untimed: one batch of the timed size, so that its statement shapes are compiled
            # (once per process, as in any long-running client).
            client.start_many(bench.ten_steps, [() for _ in range(n)])
            for _ in range(WARMUP):
                client.start(bench.ten_steps)
            with Timer() as timer:
                for _ in range(n):
                    client.start(bench.ten_steps)
            t0 = time.perf_counter()
            handles = client.start_many(bench.ten_steps, [() for _ in range(n)])
            batch_s = time.perf_counter() - t0
            queued = len(client.list_runs(status="pending", limit=10 * n))
            if queued != WARMUP + 3 * n or len(handles) != n:
                raise AssertionError(f"W8: {queued} runs pending, expected {WARMUP + 3 * n}")
        finally:
            client.close()
            app.close()
    return Measurement(
        ops=n,
        seconds=timer.seconds,
        cpu_seconds=timer.cpu_seconds,
        extra={"batch_starts_per_s": n / batch_s, "batch_us_per_start": batch_s * 1e6 / n},
    )
