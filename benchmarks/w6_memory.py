"""W6 memory: the resident memory (``VmRSS`` of ``/proc/PID/status``) of one worker
**process** (``python -m benchmarks._worker``), idle and then loaded with

- ``w6-sleeping``: ``settings.w6_sleeping`` runs (10,000) of a sync workflow parked in
  ``durable.sleep(3600)``, every one started and in ``sleeping`` status in the log (a sleeping
  run holds no worker, by design: target under 50 MB over idle), on a worker of
  ``concurrency=16``;
- ``w6-concurrent``: ``settings.w6_concurrent`` runs (1,000) of an ``async`` workflow, each
  awaiting one slow ``async`` step, all at the same time, on a worker of that ``concurrency``
  (target under 200 MB over idle). The step's body notes its entry (one byte appended to a
  file) and then waits, ``await asyncio.sleep(0.25)`` at a time, until the benchmark creates
  a release file: the load is measured once every body has been entered, however long the
  starts took.

The idle baseline is read after the worker is up and has run a few warm-up runs of the same
workflow (so that imports, prepared statements and pools are in it), and half a second of
quiet. The loaded figure is read one second after the last run reached its state. The table's
figure is the time to get there, per run (every ``client.start`` from the benchmark
process, and the worker taking each run to its sleep or into its step); the memory is printed
under the table: ``rss_over_idle_mb`` (loaded minus idle RSS), ``peak_over_idle_mb``
(``VmHWM``, the peak RSS, minus idle) and ``kb_per_run``.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import time
from collections.abc import Awaitable, Callable
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any

from benchmarks.logs import fresh_log
from benchmarks.logsql import log_engine, poll, status_counts
from benchmarks.model import Measurement, Settings
from benchmarks.procs import READY_TIMEOUT, WorkerProcess
from benchmarks.timing import temp_dir

SLEEPER = "bench_w6_sleeper"
SLOW = "bench_w6_slow"
BUILDER = "benchmarks.w6_memory:build"
LONG_SLEEP = 3600.0
HOLD_MAX = 600.0
"""The longest a held step waits for the release file (a benchmark that died leaves none)."""
LOAD_TIMEOUT = 1200.0
WARMUP = 3


@dataclass(frozen=True, slots=True)
class W6App:
    app: Any
    """The ``durable.App``."""
    sleeper: Callable[[float], int]
    """Sleeps ``seconds`` in ``durable.sleep``, then returns 1."""
    slow: Callable[[int, bool], Awaitable[dict[str, int]]]
    """One async step that, when ``hold``, waits for the release file."""


def build(url: str, *, gate_dir: str) -> W6App:
    """The W6 App on ``url``; ``gate_dir`` holds the ``entered`` and ``release`` files."""
    import durable

    app = durable.App("bench-w6", database=url)
    entered = os.path.join(gate_dir, "entered")
    release = os.path.join(gate_dir, "release")

    def sleeper_body(seconds: float) -> int:
        durable.sleep(seconds)
        return 1

    async def slow_step_body(k: int, hold: bool) -> dict[str, int]:
        fd = os.open(entered, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, b"x")
        finally:
            os.close(fd)
        deadline = time.monotonic() + HOLD_MAX
        while hold and not os.path.exists(release) and time.monotonic() < deadline:
            await asyncio.sleep(0.25)
        return {"k": k, "ok": 1}

    slow_step: Callable[[int, bool], Awaitable[dict[str, int]]] = app.step(
        name="bench_w6_slow_step"
    )(slow_step_body)

    async def slow_body(k: int, hold: bool) -> dict[str, int]:
        return await slow_step(k, hold)

    return W6App(
        app=app,
        sleeper=app.workflow(name=SLEEPER)(sleeper_body),
        slow=app.workflow(name=SLOW)(slow_body),
    )


def durable_w6_sleeping(settings: Settings, backend: str) -> Measurement:
    """Worker RSS with ``settings.w6_sleeping`` runs parked in ``durable.sleep``."""
    return _memory(settings, backend, sleeping=True)


def durable_w6_concurrent(settings: Settings, backend: str) -> Measurement:
    """Worker RSS with ``settings.w6_concurrent`` async runs awaiting a slow async step."""
    return _memory(settings, backend, sleeping=False)


def _entered(gate_dir: str) -> int:
    try:
        return os.path.getsize(os.path.join(gate_dir, "entered"))
    except FileNotFoundError:
        return 0


def _memory(settings: Settings, backend: str, sleeping: bool) -> Measurement:
    n = settings.w6_sleeping if sleeping else settings.w6_concurrent
    concurrency = settings.worker_concurrency if sleeping else settings.w6_concurrent
    label = "w6s" if sleeping else "w6c"
    with ExitStack() as stack:
        url = stack.enter_context(fresh_log(settings, backend, label))
        gate = stack.enter_context(temp_dir(settings.tmpdir, f"{label}-gate"))
        engine = stack.enter_context(log_engine(url))
        bench = build(url, gate_dir=gate)
        app = bench.app
        stack.callback(app.close)
        client = app.client()
        stack.callback(client.close)
        app.store  # noqa: B018 - create the log before the worker opens it
        err = stack.enter_context(tempfile.TemporaryFile())
        worker = WorkerProcess(url, concurrency, err, builder=BUILDER, options={"gate_dir": gate})
        stack.callback(worker.stop)
        worker.wait_ready(time.monotonic() + READY_TIMEOUT)
        warm = [
            client.start(bench.sleeper, 0.05)
            if sleeping
            else client.start(bench.slow, -1 - k, False)
            for k in range(WARMUP)
        ]
        for handle in warm:
            handle.result(timeout=60)
        time.sleep(0.5)
        idle = worker.memory_kb()

        t0 = time.perf_counter()
        if sleeping:
            for _ in range(n):
                client.start(bench.sleeper, LONG_SLEEP)
            poll(
                lambda: status_counts(engine, SLEEPER).get("sleeping", 0),
                lambda v: v >= n,
                LOAD_TIMEOUT,
                "W6: runs asleep",
                every=0.1,
            )
        else:
            for k in range(n):
                client.start(bench.slow, k, True)
            poll(
                lambda: _entered(gate) - WARMUP,
                lambda v: v >= n,
                LOAD_TIMEOUT,
                "W6: runs in their slow step",
                every=0.05,
            )
        seconds = time.perf_counter() - t0
        time.sleep(1.0)
        loaded = worker.memory_kb()
        if not sleeping:
            counts = status_counts(engine, SLOW)
            if counts.get("running", 0) < n:
                raise AssertionError(f"W6: not all {n} runs running at once: {counts}")
            open(os.path.join(gate, "release"), "w").close()
            poll(
                lambda: status_counts(engine, SLOW).get("completed", 0),
                lambda v: v >= n + WARMUP,
                LOAD_TIMEOUT,
                "W6: slow runs completed",
                every=0.1,
            )
        code = worker.stop()
        if code != 0:
            raise RuntimeError(f"W6: the worker exited {code}:\n{worker.tail()}")

    over_kb = loaded["VmRSS"] - idle["VmRSS"]
    return Measurement(
        ops=n,
        seconds=seconds,
        extra={
            "idle_rss_mb": idle["VmRSS"] / 1024,
            "loaded_rss_mb": loaded["VmRSS"] / 1024,
            "rss_over_idle_mb": over_kb / 1024,
            "peak_over_idle_mb": (loaded["VmHWM"] - idle["VmRSS"]) / 1024,
            "kb_per_run": over_kb / n,
        },
    )
