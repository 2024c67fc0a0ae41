"""The App the multi-process workloads share: the benchmark process starts runs with its
client, worker subprocesses (``benchmarks._worker``) execute them. Both sides build it here,
so the workflow and step names agree."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

TEN_STEPS = "bench_ten_steps"
FIRST_STEP = "bench_first_step"


@dataclass(frozen=True, slots=True)
class BenchApp:
    app: Any
    """The ``durable.App``."""
    ten_steps: Callable[[], dict[str, int]]
    """W2: ten no-op steps, each returning a small dict."""
    first_step: Callable[[], dict[str, float]]
    """W5: one step that returns ``{"t": time.time()}`` when its body runs."""


def build(url: str, steps: int = 10) -> BenchApp:
    """A ``durable.App`` on ``url`` with the benchmark workflows registered."""
    import durable

    app = durable.App("bench", database=url)

    # Registered by call rather than as decorators, so that each gets a stable name (the
    # worker processes register the same names) whatever function defines it.
    def noop_body(i: int) -> dict[str, int]:
        return {"i": i, "ok": 1}

    noop: Callable[[int], dict[str, int]] = app.step(name="bench_noop")(noop_body)

    def ten_steps_body() -> dict[str, int]:
        last: dict[str, int] = {}
        for i in range(steps):
            last = noop(i)
        return last

    def clock_body() -> dict[str, float]:
        return {"t": time.time()}

    clock: Callable[[], dict[str, float]] = app.step(name="bench_clock")(clock_body)

    def first_step_body() -> dict[str, float]:
        return clock()

    return BenchApp(
        app=app,
        ten_steps=app.workflow(name=TEN_STEPS)(ten_steps_body),
        first_step=app.workflow(name=FIRST_STEP)(first_step_body),
    )
