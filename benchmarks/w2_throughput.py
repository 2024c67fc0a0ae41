"""W2-lite throughput: ``settings.w2_runs`` runs of the 10-step workflow, started at once by
a client in the benchmark process, drained by 1, 2 or 4 worker *processes*
(``app.run_worker(concurrency=16)`` each, on the same log).

Steps per second = ``10 * runs`` / wall time from just before the first ``client.start`` to
the last run's ``finished_at`` (the log's clock: the same machine's). The workers are
started, and a few warm-up runs drained, before the clock starts; their start-up is not
timed. CPU per step is that of every worker process plus the benchmark process over the
same interval. The references are raw single-row commits per second with one client
(``raw``) and with 8 client threads (``raw8``), measured in the same repetition.
"""

from __future__ import annotations

import time
from typing import Any

from benchmarks.bench_app import TEN_STEPS, build
from benchmarks.logs import fresh_log
from benchmarks.model import Measurement, Settings
from benchmarks.procs import cpu_of, worker_processes

DRAIN_TIMEOUT = 600.0


def durable_w2_1(settings: Settings, backend: str) -> Measurement:
    """W2 drained by one worker process."""
    return durable_w2(settings, backend, 1)


def durable_w2_2(settings: Settings, backend: str) -> Measurement:
    """W2 drained by two worker processes."""
    return durable_w2(settings, backend, 2)


def durable_w2_4(settings: Settings, backend: str) -> Measurement:
    """W2 drained by four worker processes."""
    return durable_w2(settings, backend, 4)


def durable_w2(settings: Settings, backend: str, processes: int) -> Measurement:
    """Start ``settings.w2_runs`` runs; ``processes`` worker processes drain them."""
    import sqlalchemy as sa

    runs, warmup, steps = settings.w2_runs, settings.w2_warmup, settings.steps
    with fresh_log(settings, backend, f"w2x{processes}") as url:
        bench = build(url, steps)
        app = bench.app
        client = app.client()
        app.store  # noqa: B018 - create the log before the workers open it
        engine = sa.create_engine(_sa_url(url))
        try:
            with worker_processes(url, processes, settings.worker_concurrency) as workers:
                for _ in range(warmup):
                    client.start(bench.ten_steps)
                _wait_finished(engine, warmup)
                cpu0 = cpu_of(workers)
                c0 = time.process_time()
                t0 = time.time()
                for _ in range(runs):
                    client.start(bench.ten_steps)
                started = time.time()
                last = _wait_finished(engine, warmup + runs)
                cpu1 = cpu_of(workers)
                c1 = time.process_time()
            _check_journal(engine, (warmup + runs) * steps)
        finally:
            engine.dispose()
            app.close()
    seconds = last - t0
    cpu = None if cpu0 is None or cpu1 is None else (cpu1 - cpu0) + (c1 - c0)
    return Measurement(
        ops=runs * steps,
        seconds=seconds,
        cpu_seconds=cpu,
        extra={"starts_s": started - t0, "drain_after_starts_s": max(last - started, 0.0)},
    )


def _sa_url(url: str) -> str:
    if url.startswith("sqlite"):
        return url
    from durable.log.postgres import normalize_url

    return normalize_url(url)


def _wait_finished(engine: Any, expected: int) -> float:
    """Poll until ``expected`` runs of the workflow have completed; the last one's
    ``finished_at``. Raises if a run failed or if they take longer than ``DRAIN_TIMEOUT``."""
    import sqlalchemy as sa

    q = sa.text(
        "SELECT status, count(*), max(finished_at) FROM durable_runs"
        " WHERE workflow = :wf GROUP BY status"
    )
    deadline = time.monotonic() + DRAIN_TIMEOUT
    while True:
        with engine.connect() as c:
            rows = {str(s): (int(n), m) for s, n, m in c.execute(q, {"wf": TEN_STEPS})}
        done, last = rows.get("completed", (0, None))
        bad = {s: n for s, (n, _) in rows.items() if s in ("failed", "cancelled")}
        if bad:
            raise AssertionError(f"W2 runs ended {bad}")
        if done >= expected and last is not None:
            return float(last)
        if time.monotonic() > deadline:
            raise TimeoutError(f"W2: {done} of {expected} runs completed: {rows}")
        time.sleep(0.02)


def _check_journal(engine: Any, expected: int) -> None:
    """Outside the timed interval: every step journaled its outcome exactly once."""
    import sqlalchemy as sa

    with engine.connect() as c:
        n = c.execute(
            sa.text("SELECT count(*) FROM durable_events WHERE type = 'step_completed'")
        ).scalar()
    if n != expected:
        raise AssertionError(f"W2 journaled {n} step_completed, expected {expected}")
