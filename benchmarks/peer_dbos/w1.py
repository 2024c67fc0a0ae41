"""W1 on DBOS: the 10-step workflow of no-op steps, started and awaited one at a time in
the process that runs it (``DBOS.start_workflow(ten_steps).get_result()``), per-step cost.

DBOS runs a started workflow in its own executor thread of the same process: the analogue
of durable's embedded worker. Each step is one journaled ``operation_outputs`` row.
"""

from __future__ import annotations

import time

from benchmarks.model import Measurement, Settings
from benchmarks.peer_dbos.isolate import in_own_process
from benchmarks.timing import Timer, percentiles_us


def dbos_w1(settings: Settings, backend: str) -> Measurement:
    """W1 on DBOS, measured in a fresh interpreter."""
    return in_own_process("benchmarks.peer_dbos.w1:measure", settings, backend)


def measure(settings: Settings, backend: str) -> Measurement:
    """Time ``settings.runs`` sequential runs on a fresh system database (this process
    becomes a DBOS process; run it in a fresh interpreter)."""
    from dbos import DBOS

    from benchmarks.peer_dbos.store import config, fresh_system_db
    from benchmarks.peer_dbos.workflows import ten_steps

    steps = settings.steps
    expected = {"i": steps - 1, "ok": 1}
    latencies: list[int] = []
    start_latencies: list[int] = []
    with fresh_system_db(settings, backend, "w1") as db:
        DBOS(config=config(db, "bench-w1"))
        DBOS.launch()
        try:
            for _ in range(settings.warmup):
                _check(DBOS.start_workflow(ten_steps, steps).get_result(), expected)
            with Timer() as timer:
                for _ in range(settings.runs):
                    t0 = time.perf_counter_ns()
                    handle = DBOS.start_workflow(ten_steps, steps)
                    t1 = time.perf_counter_ns()
                    result = handle.get_result()
                    latencies.append(time.perf_counter_ns() - t0)
                    start_latencies.append(t1 - t0)
                    _check(result, expected)
            journaled = len(DBOS.list_workflow_steps(handle.get_workflow_id()))
            if journaled != steps:
                raise AssertionError(f"DBOS W1 run journaled {journaled} steps, expected {steps}")
        finally:
            DBOS.destroy()
    return Measurement(
        ops=settings.runs * steps,
        seconds=timer.seconds,
        cpu_seconds=timer.cpu_seconds,
        extra={**percentiles_us(latencies, "run"), **percentiles_us(start_latencies, "start")},
    )


def _check(result: object, expected: dict[str, int]) -> None:
    if result != expected:
        raise AssertionError(f"DBOS W1 run returned {result!r}, expected {expected!r}")
