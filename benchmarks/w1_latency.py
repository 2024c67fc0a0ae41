"""W1 latency: a 10-step workflow of no-op steps, started and awaited one at a time.

Per-step cost is the wall time of one run divided by its number of steps. It includes
everything a user waits for: the start (a run row and its first event), the embedded
worker's pick-up, ten journaled steps, the completion and the client seeing it. The
reference is one raw single-row commit (``raw_store``): with one transaction per step, a
step cannot cost less.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from benchmarks.logs import fresh_log
from benchmarks.model import Measurement, Settings
from benchmarks.timing import Timer, percentiles_us


def durable_w1(
    settings: Settings, backend: str, synchronous: str = "FULL", patches: bool = False
) -> Measurement:
    """Time ``settings.runs`` sequential runs of the W1 workflow on a fresh log (a new
    SQLite file, or a new Postgres schema); ``patches``: a ``durable.patched`` call before
    each step (W1-patched)."""
    import durable

    steps = settings.steps
    with fresh_log(settings, backend, "w1") as url:
        app = durable.App("bench-w1", database=url, synchronous=synchronous)

        # Registered by call rather than as decorators: ``app.step(name=...)`` is typed as
        # returning an untyped decorator, which ``mypy --strict`` refuses on a function.
        def noop_body(i: int) -> dict[str, int]:
            return {"i": i, "ok": 1}

        noop: Callable[[int], dict[str, int]] = app.step(name="noop")(noop_body)

        def ten_steps_body() -> dict[str, int]:
            last: dict[str, int] = {}
            for i in range(steps):
                if patches and not durable.patched(f"p{i}"):
                    raise AssertionError("a new run takes every patch")
                last = noop(i)
            return last

        ten_steps: Callable[[], dict[str, int]] = app.workflow(name="w1_ten_steps")(ten_steps_body)

        expected = {"i": steps - 1, "ok": 1}
        client = app.client()
        latencies: list[int] = []
        start_latencies: list[int] = []
        handle: Any = None
        try:
            with app.worker():
                for _ in range(settings.warmup):
                    _check(client.start(ten_steps).result(timeout=60), expected)
                with Timer() as timer:
                    for _ in range(settings.runs):
                        t0 = time.perf_counter_ns()
                        handle = client.start(ten_steps)
                        t1 = time.perf_counter_ns()
                        result = handle.result(timeout=60)
                        latencies.append(time.perf_counter_ns() - t0)
                        start_latencies.append(t1 - t0)
                        _check(result, expected)
            if handle is not None:
                _check_journal(handle, steps)
        finally:
            _close(client)
            _close(app)
    return Measurement(
        ops=settings.runs * steps,
        seconds=timer.seconds,
        cpu_seconds=timer.cpu_seconds,
        extra={**percentiles_us(latencies, "run"), **percentiles_us(start_latencies, "start")},
    )


def durable_w1_relaxed(settings: Settings, backend: str) -> Measurement:
    """W1 with the documented opt-in for weaker durability, ``App(synchronous="NORMAL")``:
    SQLite ``synchronous=NORMAL`` (WAL: the last commits may be lost on a power cut or OS
    crash, never on a process crash), Postgres ``synchronous_commit=off`` (up to about
    3 x ``wal_writer_delay`` of commits may be lost on a server crash)."""
    return durable_w1(settings, backend, synchronous="NORMAL")


def durable_w1_patched(settings: Settings, backend: str) -> Measurement:
    """W1 with ``durable.patched(...)`` before each of its steps: one journaled patch marker
    per step (compare with ``w1`` of the same invocation)."""
    return durable_w1(settings, backend, patches=True)


def _check(result: object, expected: dict[str, int]) -> None:
    if result != expected:
        raise AssertionError(f"W1 run returned {result!r}, expected {expected!r}")


def _check_journal(handle: Any, steps: int) -> None:
    """Outside the timed loop: the last run journaled every step exactly once."""
    completed = [e for e in handle.events() if str(e.type) == "step_completed"]
    if len(completed) != steps:
        raise AssertionError(f"W1 run journaled {len(completed)} step_completed, expected {steps}")


def _close(obj: object) -> None:
    """Release an App's or Client's engine if it offers a way to (``close``/``dispose``)."""
    for name in ("close", "dispose"):
        fn = getattr(obj, name, None)
        if callable(fn):
            fn()
            return
