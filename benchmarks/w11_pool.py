"""W11 step executors: CPU-bound step bodies in threads against the worker's process pool
(``@app.step(executor="process")``), and what the pool costs a step that does nothing.

``w11-cpu``: one ``async`` workflow gathers ``Settings.w11_cpu_steps`` (default 4) calls of a
CPU-bound step (a pure-Python loop calibrated in this process to take ``Settings.w11_cpu_s``,
default 0.5 s, alone), once with ``executor="thread"`` and once with ``executor="process"``,
in one embedded worker (``processes=`` the CPU count), after an untimed warm-up run of each
(the pool's processes are started then). The figure is the process run's wall time; below
the table ``thread_s`` (the thread run's), ``speedup`` (thread over process) and
``alone_s`` (one body alone, in this process).

``w11-overhead``: a sync workflow of ``Settings.w11_noop_steps`` (default 50) no-op steps,
thread against process, runs alternating after a warm-up: the figure is the process step's
wall time; below, ``thread_us`` per step and ``overhead_us`` (process minus thread).
"""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any

from benchmarks.logs import fresh_log
from benchmarks.model import Measurement, Settings


def burn(n: int) -> int:
    """CPU work: ``n`` turns of a pure-Python loop (holds the GIL throughout)."""
    x = 0
    for i in range(n):
        x = (x * 31 + i) % 1_000_003
    return x


def noop() -> int:
    """A step that does nothing."""
    return 0


def _calibrate(seconds: float) -> tuple[int, float]:
    """Loop turns that take about ``seconds`` here, alone; and the time they took."""
    n = 100_000
    while True:
        t = time.perf_counter()
        burn(n)
        took = time.perf_counter() - t
        if took > 0.05:
            break
        n *= 4
    n = int(n * seconds / took)
    t = time.perf_counter()
    burn(n)
    return n, time.perf_counter() - t


def _app(url: str) -> Any:
    import durable

    app = durable.App("bench", database=url)
    thread_burn = app.step(name="burn_thread", executor="thread")(burn)
    process_burn = app.step(name="burn_process", executor="process")(burn)
    thread_noop = app.step(name="noop_thread", executor="thread")(noop)
    process_noop = app.step(name="noop_process", executor="process")(noop)

    @app.workflow(name="bench_cpu")
    async def cpu(executor: str, steps: int, n: int) -> list[int]:
        step = process_burn if executor == "process" else thread_burn
        return list(await asyncio.gather(*(step(n) for _ in range(steps))))

    @app.workflow(name="bench_noop")
    def noops(executor: str, steps: int) -> int:
        step = process_noop if executor == "process" else thread_noop
        return sum(step() for _ in range(steps))

    return app, cpu, noops


def durable_w11_cpu(settings: Settings, backend: str) -> Measurement:
    """CPU-bound steps started together: threads, then the process pool."""
    n, alone = _calibrate(settings.w11_cpu_s)
    steps = settings.w11_cpu_steps
    with fresh_log(settings, backend, "w11") as url:
        app, cpu, _ = _app(url)
        client = app.client()
        try:
            with app.worker(concurrency=4, processes=os.cpu_count() or 1):
                for ex in ("thread", "process"):  # warm-up: the pool's processes start here
                    client.start(cpu, ex, steps, 1000).result(timeout=120)
                took: dict[str, float] = {}
                for ex in ("thread", "process"):
                    t = time.perf_counter()
                    client.start(cpu, ex, steps, n).result(timeout=600)
                    took[ex] = time.perf_counter() - t
        finally:
            app.close()
    return Measurement(
        ops=1,
        seconds=took["process"],
        extra={
            "thread_s": took["thread"],
            "speedup": took["thread"] / took["process"],
            "alone_s": alone,
        },
    )


def durable_w11_overhead(settings: Settings, backend: str) -> Measurement:
    """No-op steps: a thread step against a process step, per step."""
    steps = settings.w11_noop_steps
    with fresh_log(settings, backend, "w11") as url:
        app, _, noops = _app(url)
        client = app.client()
        try:
            with app.worker(concurrency=4, processes=1):
                for ex in ("thread", "process"):
                    client.start(noops, ex, 5).result(timeout=120)
                took = {"thread": 0.0, "process": 0.0}
                for _ in range(settings.w11_noop_runs):
                    for ex in ("thread", "process"):
                        t = time.perf_counter()
                        client.start(noops, ex, steps).result(timeout=120)
                        took[ex] += time.perf_counter() - t
        finally:
            app.close()
    total = steps * settings.w11_noop_runs
    thread_us = took["thread"] * 1e6 / total
    process_us = took["process"] * 1e6 / total
    return Measurement(
        ops=total,
        seconds=took["process"],
        extra={"thread_us": thread_us, "overhead_us": process_us - thread_us},
    )
