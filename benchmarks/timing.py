"""Small helpers shared by the workloads: a temp folder, a timer, percentiles."""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass


@contextmanager
def temp_dir(parent: str | None, prefix: str) -> Iterator[str]:
    """A fresh folder for one measurement's database, removed afterwards."""
    with tempfile.TemporaryDirectory(prefix=f"durable-bench-{prefix}-", dir=parent) as path:
        yield path


@dataclass(slots=True)
class Timer:
    """Wall and process-CPU time of a ``with`` block, in seconds."""

    seconds: float = 0.0
    cpu_seconds: float = 0.0
    _t0: int = 0
    _c0: int = 0

    def __enter__(self) -> Timer:
        self._c0 = time.process_time_ns()
        self._t0 = time.perf_counter_ns()
        return self

    def __exit__(self, *exc: object) -> None:
        t1 = time.perf_counter_ns()
        c1 = time.process_time_ns()
        self.seconds = (t1 - self._t0) / 1e9
        self.cpu_seconds = (c1 - self._c0) / 1e9


def percentiles_us(samples_ns: list[int], prefix: str) -> dict[str, float]:
    """p50, p90 and p99 of nanosecond samples, as ``{prefix}_p50_us`` and so on."""
    if not samples_ns:
        return {}
    if len(samples_ns) == 1:
        cuts = [float(samples_ns[0])] * 99
    else:
        cuts = statistics.quantiles(samples_ns, n=100, method="inclusive")
    return {
        f"{prefix}_p50_us": cuts[49] / 1e3,
        f"{prefix}_p90_us": cuts[89] / 1e3,
        f"{prefix}_p99_us": cuts[98] / 1e3,
    }
