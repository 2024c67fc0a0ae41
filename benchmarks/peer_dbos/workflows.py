"""The DBOS benchmark workflows, registered with DBOS's global registry on import (before
``DBOS(config=...)``, as DBOS allows). The benchmark process and every DBOS worker process
import this module, so names agree on both sides of a queue.

Each step is a ``@DBOS.step()``: DBOS journals its output (one ``operation_outputs`` row)
before the workflow goes on.
"""

from __future__ import annotations

import os
import time

from dbos import DBOS

from benchmarks.peer_dbos.store import QUEUE

TEN_STEPS = "dbos_bench_ten_steps"
FIRST_STEP = "dbos_bench_first_step"
FANOUT = "dbos_bench_fanout"
CHILD = "dbos_bench_child"
SLEEPY = "dbos_bench_sleepy_steps"
MARKS_ENV = "DURABLE_BENCH_DBOS_MARKS"
"""W4: a file each sleepy step body appends one line to (``workflow_id step``), so that
bodies that ran twice can be counted."""


@DBOS.step(name="dbos_bench_noop")
def noop(i: int) -> dict[str, int]:
    """A no-op step returning a small dict."""
    return {"i": i, "ok": 1}


@DBOS.workflow(name=TEN_STEPS)
def ten_steps(steps: int = 10) -> dict[str, int]:
    """W1/W2/W8: ``steps`` no-op steps, one after another."""
    last: dict[str, int] = {}
    for i in range(steps):
        last = noop(i)
    return last


@DBOS.step(name="dbos_bench_clock")
def clock() -> dict[str, float]:
    """W5: the instant the step body runs."""
    return {"t": time.time()}


@DBOS.workflow(name=FIRST_STEP)
def first_step() -> dict[str, float]:
    """W5: one step that returns ``{"t": time.time()}``."""
    return clock()


@DBOS.workflow(name=CHILD)
def child(i: int) -> dict[str, int]:
    """W3: a child workflow of one no-op step."""
    return noop(i)


@DBOS.workflow(name=FANOUT)
def fanout(children: int) -> int:
    """W3: enqueue ``children`` child workflows on the queue, then gather their results
    (DBOS's documented fan-out pattern); the number of results that came back right."""
    handles = [DBOS.enqueue_workflow(QUEUE, child, i) for i in range(children)]
    results = [h.get_result() for h in handles]
    return sum(1 for i, r in enumerate(results) if r == {"i": i, "ok": 1})


@DBOS.step(name="dbos_bench_sleep")
def sleepy(i: int, seconds: float) -> dict[str, int]:
    """W4: a step that sleeps, after noting that its body ran."""
    marks = os.environ.get(MARKS_ENV)
    if marks:
        fd = os.open(marks, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, f"{DBOS.workflow_id} {i}\n".encode())
        finally:
            os.close(fd)
    time.sleep(seconds)
    return {"i": i, "ok": 1}


@DBOS.workflow(name=SLEEPY)
def sleepy_steps(steps: int, seconds: float) -> dict[str, int]:
    """W4: ``steps`` steps that each sleep ``seconds``."""
    last: dict[str, int] = {}
    for i in range(steps):
        last = sleepy(i, seconds)
    return last
