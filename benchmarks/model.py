"""The common records: settings in, one measurement per repetition, one result per cell."""

from __future__ import annotations

import math
import statistics
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

Primary = Literal["cost", "rate"]
"""Which figure of a workload is its headline: cost per unit (lower is better) or units per
second (higher is better). Ratios are taken on the primary figure."""


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything a workload may read. One instance is shared by all cells of a run.

    Sizes have full defaults here; ``--quick`` replaces them with :meth:`quick` ones.
    """

    tmpdir: str | None = None
    """Parent folder of the temporary databases (``None``: the system temp dir)."""
    steps: int = 10
    """Steps per workflow run (W1)."""
    runs: int = 200
    """Timed runs per repetition (W1)."""
    warmup: int = 10
    """Untimed runs per repetition, before the timed ones (W1)."""
    rows: int = 2000
    """Timed single-row commits per repetition (raw)."""
    raw_warmup: int = 50
    """Untimed commits per repetition, before the timed ones (raw)."""
    raw_clients: int = 8
    """Client threads of the ``raw8`` reference, each with its own connection."""
    w2_runs: int = 2000
    """Runs of the 10-step workflow per repetition (W2), drained by worker processes."""
    w2_warmup: int = 8
    """Untimed runs per W2 repetition, drained before the timed ones."""
    worker_concurrency: int = 16
    """``concurrency`` of each worker process (W2, W5)."""
    w5_runs: int = 50
    """One-step runs started per W5 repetition, one every ``w5_gap`` seconds."""
    w5_gap: float = 0.05
    """Seconds between two W5 starts (a wake-up each time the worker has gone idle)."""
    w5_warmup: int = 3
    """Untimed W5 runs per repetition, each awaited, before the worker is left idle."""
    # W3/W4/W6/W7
    w3_children: int = 1000
    """Child workflows the W3 parent starts concurrently and gathers (one no-op step each)."""
    w4_runs: int = 500
    """Runs of 10 sleeping steps per W4 repetition; the worker is killed half-way."""
    w4_step_sleep: float = 0.01
    """Seconds each W4 step body sleeps."""
    w4_lease_timeout: float = 5.0
    """The W4 App's ``lease_timeout``: how long the killed worker's runs stay held before
    another worker may take them over."""
    w6_sleeping: int = 10_000
    """Runs parked in ``durable.sleep`` on the W6 worker process."""
    w6_concurrent: int = 1000
    """Concurrent async runs awaiting a slow async step on the W6 worker process (its
    ``concurrency`` is set to this)."""
    w7_finished: int = 1_000_000
    """Finished runs (5 events each) bulk-inserted into the W7 big log."""
    w7_runs: int = 200
    """One-step runs timed per W7 repetition, on the big log and on the empty one each."""
    w7_warmup: int = 10
    """Untimed one-step runs before the timed ones, on each of the two W7 logs."""
    w8_starts: int = 2000
    """Runs started per W8 repetition, with no worker draining them."""
    w10_runs: int = 30
    """Runs cancelled while their step runs, per W10 repetition, one at a time."""
    w10_warmup: int = 2
    """Untimed W10 cancels per repetition, before the timed ones."""
    w11_cpu_steps: int = 4
    """W11 cpu: CPU-bound steps gathered by one run."""
    w11_cpu_s: float = 0.5
    """W11 cpu: seconds each CPU-bound body takes alone."""
    w11_noop_steps: int = 50
    """W11 overhead: no-op steps per run."""
    w11_noop_runs: int = 4
    """W11 overhead: timed runs per executor (alternating thread, process)."""
    w15_runs: int = 20
    """W15: runs of the 37-day workflow timed per repetition under ``durable.testing``."""
    w16_runs: int = 10_000
    """W16: unfinished 10-step runs in the log that each ``client.check`` replays."""
    w14_finished: int = 1_000_000
    """W14: finished runs (5 events each) bulk-inserted into the dashboard's log."""
    w14_unfinished: int = 10_000
    """W14: unfinished runs (pending, sleeping, running, blocked) added, the newest."""
    w14_requests: int = 50
    """W14: timed requests of each dashboard page."""
    w14_events: int = 1000
    """W14: events of the run whose page is timed (and of the big live run)."""
    w14_live: int = 30
    """W14: live updates timed from commit to browser, per live run."""
    w9_events: int = 200
    """Events appended to the W9 latency run, one per transaction."""
    w9_gap: float = 0.01
    """Seconds between two W9 latency appends: the watcher is idle before each event."""
    w9_watchers: int = 100
    """W9 fan-out: watches (one per run of ten no-op steps) in one watcher process."""
    w17_ticks: int = 120
    """W16: per-second ticks measured per repetition (a repetition takes as many seconds)."""
    dbos_polling_interval: float = 0.05  # DBOS peer
    """``polling_interval_sec`` of the DBOS queues (DBOS's default is 1 s): how often an
    idle DBOS worker looks for queued work. Lowered so that polling neither caps DBOS's
    W2/W3 throughput nor dominates its W5 wake-up; its CPU cost is measured with the rest."""
    postgres_url: str | None = None
    """Server for the ``postgres`` backend (else ``DURABLE_BENCH_POSTGRES_URL`` or
    ``DURABLE_TEST_POSTGRES_URL``); each measurement creates and drops its own schema."""

    @classmethod
    def quick(cls, tmpdir: str | None = None, postgres_url: str | None = None) -> Settings:
        """Tiny counts: proves the suite runs, measures nothing worth quoting."""
        return cls(
            tmpdir=tmpdir,
            runs=3,
            warmup=1,
            rows=20,
            raw_warmup=2,
            w2_runs=50,
            w2_warmup=2,
            w5_runs=10,
            w5_warmup=1,
            w10_runs=3,
            w10_warmup=1,
            w11_cpu_s=0.05,
            w11_noop_steps=5,
            w11_noop_runs=1,
            w15_runs=3,
            w16_runs=200,
            w14_finished=20_000,
            w14_unfinished=500,
            w14_requests=5,
            w14_events=100,
            w14_live=3,
            w17_ticks=5,
            # W3/W4/W6/W7
            w3_children=50,
            w4_runs=40,
            w4_lease_timeout=2.0,
            w6_sleeping=200,
            w6_concurrent=50,
            w7_finished=20_000,
            w7_runs=5,
            w7_warmup=2,
            w8_starts=50,
            w9_events=20,
            w9_watchers=5,
            postgres_url=postgres_url,
        )

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready copy."""
        return asdict(self)


@dataclass(frozen=True, slots=True)
class Measurement:
    """One repetition of one cell: ``ops`` units of work (steps, commits) in ``seconds``."""

    ops: int
    """Units of work timed: journaled steps for a workflow workload, rows for ``raw``."""
    seconds: float
    """Wall time of those units, warm-up excluded."""
    cpu_seconds: float | None = None
    """CPU time of this process (all threads) over the same interval, if measured."""
    extra: dict[str, float] = field(default_factory=dict)
    """Workload-specific figures (e.g. per-run latency percentiles), in the units their
    names say (``*_us`` microseconds)."""

    @property
    def us_per_op(self) -> float:
        """Wall microseconds per unit."""
        return self.seconds * 1e6 / self.ops

    @property
    def ops_per_s(self) -> float:
        """Units per second."""
        return self.ops / self.seconds if self.seconds > 0 else math.inf

    @property
    def cpu_us_per_op(self) -> float | None:
        """CPU microseconds per unit, if measured."""
        return None if self.cpu_seconds is None else self.cpu_seconds * 1e6 / self.ops

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready copy, with the derived figures."""
        return {
            "ops": self.ops,
            "seconds": self.seconds,
            "cpu_seconds": self.cpu_seconds,
            "us_per_op": self.us_per_op,
            "ops_per_s": self.ops_per_s,
            "extra": dict(self.extra),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Measurement:
        """The inverse of :meth:`to_dict` (derived figures are recomputed)."""
        return cls(
            ops=int(data["ops"]),
            seconds=float(data["seconds"]),
            cpu_seconds=None if data.get("cpu_seconds") is None else float(data["cpu_seconds"]),
            extra={str(k): float(v) for k, v in data.get("extra", {}).items()},
        )


@dataclass(frozen=True, slots=True)
class Summary:
    """Median and spread of a list of samples."""

    n: int
    median: float
    min: float
    max: float
    q1: float
    q3: float

    @classmethod
    def of(cls, values: list[float]) -> Summary:
        """Summarize ``values`` (at least one). Quartiles are inclusive; with one sample
        every figure is that sample."""
        if not values:
            raise ValueError("no samples")
        if len(values) == 1:
            q1 = q3 = values[0]
        else:
            q1, _, q3 = statistics.quantiles(values, n=4, method="inclusive")
        return cls(
            n=len(values),
            median=statistics.median(values),
            min=min(values),
            max=max(values),
            q1=q1,
            q3=q3,
        )

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready copy."""
        return asdict(self)


@dataclass(slots=True)
class Result:
    """All repetitions of one cell: a workload on a system and a backend."""

    workload: str
    """Registry key, e.g. ``"w1"`` or ``"raw"``."""
    title: str
    """Human name of the workload."""
    system: str
    """``"raw"``, ``"durable"``, ``"dbos"``."""
    backend: str
    """``"sqlite"`` or ``"postgres"``."""
    unit: str
    """What one op is: ``"step"``, ``"commit"``."""
    primary: Primary
    references: list[str] = field(default_factory=list)
    """Registry keys of the reference workloads this one is compared to (``["raw"]`` for
    W1, ``["raw", "raw8"]`` for W2)."""
    show: list[str] = field(default_factory=list)
    """Keys of ``extra`` the table prints under itself."""
    measurements: list[Measurement] = field(default_factory=list)
    skipped: str | None = None
    """Why the cell was not measured, if it was not."""
    ratios: dict[str, Summary] = field(default_factory=dict)
    """Per reference label (``"raw"``, ``"raw8"``, ``"durable"``): this cell's primary
    figure divided by the reference's, over repetitions paired by index (the reference
    measured just before in the same repetition). ``median`` is the median of the paired ratios."""

    def costs(self) -> Summary:
        """Microseconds per op, over repetitions."""
        return Summary.of([m.us_per_op for m in self.measurements])

    def rates(self) -> Summary:
        """Ops per second, over repetitions."""
        return Summary.of([m.ops_per_s for m in self.measurements])

    def cpu_costs(self) -> Summary | None:
        """CPU microseconds per op, over repetitions, if every repetition measured it."""
        values = [m.cpu_us_per_op for m in self.measurements]
        if not values or any(v is None for v in values):
            return None
        return Summary.of([v for v in values if v is not None])

    def extra(self, key: str) -> Summary | None:
        """One ``extra`` figure over repetitions, if every repetition has it."""
        values = [m.extra.get(key) for m in self.measurements]
        if not values or any(v is None for v in values):
            return None
        return Summary.of([v for v in values if v is not None])

    def primary_values(self) -> list[float]:
        """The primary figure of each repetition."""
        if self.primary == "cost":
            return [m.us_per_op for m in self.measurements]
        return [m.ops_per_s for m in self.measurements]

    def compare(self, label: str, other: Result) -> None:
        """Record ``self / other`` on the primary figure, paired repetition by repetition.

        Both are taken in this result's terms: a cost workload is divided by the other's
        cost per op, a rate workload by its ops per second.
        """
        if self.skipped or other.skipped or not self.measurements or not other.measurements:
            return
        mine = self.primary_values()
        theirs = (
            [m.us_per_op for m in other.measurements]
            if self.primary == "cost"
            else [m.ops_per_s for m in other.measurements]
        )
        pairs = [a / b for a, b in zip(mine, theirs, strict=False) if b > 0]
        if pairs:
            self.ratios[label] = Summary.of(pairs)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready copy, with summaries."""
        out: dict[str, Any] = {
            "workload": self.workload,
            "title": self.title,
            "system": self.system,
            "backend": self.backend,
            "unit": self.unit,
            "primary": self.primary,
            "references": list(self.references),
            "skipped": self.skipped,
            "measurements": [m.to_dict() for m in self.measurements],
            "ratios": {k: v.to_dict() for k, v in self.ratios.items()},
        }
        if self.measurements:
            cpu = self.cpu_costs()
            out["us_per_op"] = self.costs().to_dict()
            out["ops_per_s"] = self.rates().to_dict()
            out["cpu_us_per_op"] = None if cpu is None else cpu.to_dict()
        return out
