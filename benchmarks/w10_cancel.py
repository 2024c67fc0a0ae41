"""W10 cancel-to-body latency: from ``client.cancel`` in this process to ``durable.cancelled()``
turning true in a step body running in a worker process.

One worker process (``benchmarks._worker`` with this module's :func:`build`) executes one
run at a time of a workflow whose step body creates a marker file, then looks at
``durable.cancelled()`` every ``POLL`` seconds; once true it records ``time.time()`` as an
output and returns. The benchmark process waits for the marker, takes ``time.time()``, calls
``client.cancel(run_id)`` and waits for the run to end ``CANCELLED``. Latency = the body's
instant minus the instant just before ``cancel``: the cancel's commit, the push (``NOTIFY``
on Postgres; a FIFO wake-up and one read of the open requests on SQLite), the hand-over to
the run on the worker's loop, and up to ``POLL`` of the body's own polling. Mean in the table,
p50 and p99 below it (the target: p99 under 1 s).

DBOS Transact has no equivalent path: ``DBOS.cancel_workflow`` marks the workflow cancelled
in its system database, and a step that is running is not told; the workflow stops when it
next starts a step. So there is no DBOS cell.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.logs import fresh_log
from benchmarks.model import Measurement, Settings
from benchmarks.procs import WorkerProcess, started
from benchmarks.timing import percentiles_us

WORKFLOW = "bench_cancel_wait"
POLL = 0.001
"""Seconds between two looks of the body at ``durable.cancelled()``."""
LIMIT = 60.0


@dataclass(frozen=True, slots=True)
class CancelBench:
    app: Any
    """The ``durable.App``."""
    waits: Callable[[str], int]
    """The workflow: one step that waits to be cancelled."""


def build(url: str) -> CancelBench:
    """A ``durable.App`` on ``url`` with W10's workflow (the worker process builds the same)."""
    import durable

    app = durable.App("bench", database=url)

    def wait_body(marker: str) -> int:
        Path(marker).write_text(str(os.getpid()))
        deadline = time.monotonic() + LIMIT
        while not durable.cancelled():
            if time.monotonic() > deadline:
                return 0
            time.sleep(POLL)
        durable.output("seen", time.time())
        return 1

    wait_step: Callable[[str], int] = app.step(name="bench_cancel_step")(wait_body)

    def waits(marker: str) -> int:
        return wait_step(marker)

    return CancelBench(app=app, waits=app.workflow(name=WORKFLOW)(waits))


def durable_w10(settings: Settings, backend: str) -> Measurement:
    """Time ``settings.w10_runs`` cancels of a running step, one at a time."""
    import durable

    n = settings.w10_runs
    with fresh_log(settings, backend, "w10") as url, tempfile.TemporaryDirectory() as tmp:
        bench = build(url)
        app = bench.app
        client = app.client()
        app.store  # noqa: B018 - create the log before the worker opens it

        def make(i: int, stderr: Any) -> WorkerProcess:
            return WorkerProcess(
                url, settings.worker_concurrency, stderr, builder="benchmarks.w10_cancel:build"
            )

        latencies: list[float] = []
        try:
            with started(make, 1):
                for i in range(settings.w10_warmup + n):
                    marker = Path(tmp) / f"m{i}"
                    h = client.start(bench.waits, str(marker))
                    _wait(marker.exists, f"the body of run {i} to start")
                    before = time.time()
                    client.cancel(h.id)
                    with contextlib.suppress(durable.RunCancelledError):
                        h.result(timeout=LIMIT)
                    seen = float(h.outputs()["main"]["bench_cancel_step"]["seen"])
                    if i >= settings.w10_warmup:
                        latencies.append(seen - before)
        finally:
            app.close()
    return Measurement(
        ops=n,
        seconds=sum(latencies),
        extra=percentiles_us([int(x * 1e9) for x in latencies], "cancel"),
    )


def _wait(predicate: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + LIMIT
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"W10: waited {LIMIT}s for {what}")
        time.sleep(0.002)
