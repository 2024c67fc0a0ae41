"""The workloads the suite knows, and which system measures each on which backend.

A workload names its implementations as ``"module:function"`` strings, so that listing
the registry imports neither ``durable`` nor DBOS, and so that a cell can be run in a
fresh subprocess (``--isolate``) by name. Every implementation has the signature
``(settings: Settings, backend: str) -> Measurement``.

To add a workload: write ``benchmarks/wN_name.py`` with one function per system, and add a
:class:`Workload` to :data:`WORKLOADS`. To add a system (``dbos``): add its key to the
``systems`` of the workloads it implements; ``--compare dbos`` then measures it beside
``durable`` and prints its ratio against ours.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from benchmarks.model import Measurement, Primary, Settings

Impl = Callable[[Settings, str], Measurement]

BACKENDS = ("sqlite", "postgres")
BACKEND_CHOICES = (*BACKENDS, "all")
SYSTEMS = ("raw", "durable", "dbos")
"""``raw`` is the store alone; ``durable`` is ours; ``dbos`` is DBOS Transact (``bench`` extra)."""


@dataclass(frozen=True, slots=True)
class Workload:
    """One workload: what it measures and who implements it on which backend."""

    key: str
    """Short name used on the command line and in the JSON (``"w1"``)."""
    title: str
    """One line for the table."""
    unit: str
    """What one op is (``"step"``, ``"commit"``)."""
    primary: Primary
    """The headline figure: ``"cost"`` (µs per op) or ``"rate"`` (ops per second)."""
    systems: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    """``system -> backend -> "module:function"``."""
    references: tuple[str, ...] = ("raw",)
    """The reference workloads this one is divided by, each printed as a ``vs KEY`` column
    (``()`` for a reference itself, or for a workload read in absolute units)."""
    is_reference: bool = False
    """A reference (the store alone): measured only with ``--raw``, never by default."""
    show: tuple[str, ...] = ()
    """Keys of :attr:`Measurement.extra` printed under the table (median over repetitions)."""
    group: str | None = None
    """A name that selects this workload with its siblings on the command line (``w2``)."""

    def impl(self, system: str, backend: str) -> str | None:
        """The implementation's name for that cell, or ``None`` if there is none yet."""
        return self.systems.get(system, {}).get(backend)


def load(target: str) -> Impl:
    """Import ``"module:function"`` and return the function."""
    module_name, _, attr = target.partition(":")
    fn: Impl = getattr(importlib.import_module(module_name), attr)
    return fn


RAW = Workload(
    key="raw",
    title="store: one INSERT + COMMIT per row, one client",
    unit="commit",
    primary="cost",
    systems={
        "raw": {
            "sqlite": "benchmarks.raw_store:sqlite_single_row",
            "postgres": "benchmarks.raw_store:postgres_single_row",
        }
    },
    references=(),
    is_reference=True,
)

RAW8 = Workload(
    key="raw8",
    title="store: one INSERT + COMMIT per row, 8 client threads (commits/s of all)",
    unit="commit",
    primary="rate",
    systems={"raw": {"postgres": "benchmarks.raw_store:postgres_single_row_8"}},
    references=(),
    is_reference=True,
)

W1 = Workload(
    key="w1",
    title="W1 latency: 10-step workflow, one at a time",
    unit="step",
    primary="cost",
    systems={
        "durable": {
            "sqlite": "benchmarks.w1_latency:durable_w1",
            "postgres": "benchmarks.w1_latency:durable_w1",
        },
        "dbos": {
            "sqlite": "benchmarks.peer_dbos.w1:dbos_w1",
            "postgres": "benchmarks.peer_dbos.w1:dbos_w1",
        },
    },
)


W1_RELAXED = Workload(
    key="w1-relaxed",
    title='W1 with App(synchronous="NORMAL"): the opt-in that may lose the last commits on a '
    "crash of the OS (SQLite) or of the server (Postgres); vs raw at full durability",
    unit="step",
    primary="cost",
    systems={
        "durable": {
            "sqlite": "benchmarks.w1_latency:durable_w1_relaxed",
            "postgres": "benchmarks.w1_latency:durable_w1_relaxed",
        }
    },
)

W1_PATCHED = Workload(
    key="w1-patched",
    title="W1 with durable.patched() before each step (one patch marker per step): vs w1",
    unit="step",
    primary="cost",
    systems={
        "durable": {
            "sqlite": "benchmarks.w1_latency:durable_w1_patched",
            "postgres": "benchmarks.w1_latency:durable_w1_patched",
        }
    },
)

W1_TRACED = Workload(
    key="w1-traced",
    title="W1 with tracing on (SDK provider, batch processor, dropping exporter): vs w1",
    unit="step",
    primary="cost",
    systems={
        "durable": {
            "sqlite": "benchmarks.w1_traced:durable_w1_traced",
            "postgres": "benchmarks.w1_traced:durable_w1_traced",
        }
    },
)


def _w2(processes: int) -> Workload:
    fn = f"benchmarks.w2_throughput:durable_w2_{processes}"
    peer = f"benchmarks.peer_dbos.w2:dbos_w2_{processes}"
    return Workload(
        key=f"w2-{processes}",
        title=(
            f"W2-lite throughput: N runs of the 10-step workflow started at once, drained by "
            f"{processes} worker process{'es' if processes > 1 else ''} (concurrency 16 each)"
        ),
        unit="step",
        primary="rate",
        systems={
            "durable": {"sqlite": fn, "postgres": fn},
            "dbos": {"sqlite": peer, "postgres": peer},
        },
        references=("raw", "raw8"),
        group="w2",
    )


W5 = Workload(
    key="w5",
    title="W5 wake-up: start to first step of an idle worker process (mean; p50/p99 below)",
    unit="wake-up",
    primary="cost",
    systems={
        "durable": {
            "sqlite": "benchmarks.w5_wakeup:durable_w5",
            "postgres": "benchmarks.w5_wakeup:durable_w5",
        },
        "dbos": {
            "sqlite": "benchmarks.peer_dbos.w5:dbos_w5",
            "postgres": "benchmarks.peer_dbos.w5:dbos_w5",
        },
    },
    references=(),
    show=("wake_p50_us", "wake_p99_us"),
)

W10 = Workload(
    key="w10",
    title="W10 cancel: client.cancel to durable.cancelled() in a step running in a worker "
    "process (mean; p50/p99 below)",
    unit="cancel",
    primary="cost",
    systems={
        "durable": {
            "sqlite": "benchmarks.w10_cancel:durable_w10",
            "postgres": "benchmarks.w10_cancel:durable_w10",
        },
    },
    references=(),
    show=("cancel_p50_us", "cancel_p99_us"),
)

W11_CPU = Workload(
    key="w11-cpu",
    title="W11 CPU-bound steps started together: executor='process' (wall s of the run; "
    "threads and speedup below)",
    unit="run",
    primary="cost",
    systems={
        "durable": {
            "sqlite": "benchmarks.w11_pool:durable_w11_cpu",
            "postgres": "benchmarks.w11_pool:durable_w11_cpu",
        },
    },
    references=(),
    show=("thread_s", "speedup", "alone_s"),
    group="w11",
)

W11_OVERHEAD = Workload(
    key="w11-overhead",
    title="W11 a no-op step with executor='process' (thread step and overhead below)",
    unit="step",
    primary="cost",
    systems={
        "durable": {
            "sqlite": "benchmarks.w11_pool:durable_w11_overhead",
            "postgres": "benchmarks.w11_pool:durable_w11_overhead",
        },
    },
    references=(),
    show=("thread_us", "overhead_us"),
    group="w11",
)

W15 = Workload(
    key="w15",
    title="W15 durable.testing: a 30-day sleep, a week's signal timeout and 3 hourly retries "
    "on the virtual clock (wall time to the result)",
    unit="run",
    primary="cost",
    systems={"durable": {"sqlite": "benchmarks.w15_testing:durable_w15"}},
    references=(),
    show=("p50_ms", "max_ms", "env_ms", "virtual_days"),
)

W16 = Workload(
    key="w16",
    title="W16 durable check: unfinished 10-step runs replayed against the code, per second, "
    "in os.cpu_count() forked processes (one process, speedup and blocking code below)",
    unit="run",
    primary="rate",
    systems={
        "durable": {
            "sqlite": "benchmarks.w16_check:durable_w16",
            "postgres": "benchmarks.w16_check:durable_w16",
        }
    },
    references=(),
    show=(
        "jobs",
        "one_process_runs_per_s",
        "speedup",
        "blocking_runs_per_s",
        "alone_cpu_s",
        "parent_cpu_s",
        "children_cpu_s",
        "fill_s",
    ),
)

W14 = Workload(
    key="w14",
    title="W14 dashboard: server time of the runs page (first page; mean) on a log of N "
    "finished + 10,000 unfinished runs; filtered pages, a 1,000-event run page and "
    "commit-to-browser latency below",
    unit="request",
    primary="cost",
    systems={
        "durable": {
            "sqlite": "benchmarks.w14_dashboard:durable_w14",
            "postgres": "benchmarks.w14_dashboard:durable_w14",
        }
    },
    references=(),
    show=(
        "first_p50_ms",
        "first_p95_ms",
        "failed_p95_ms",
        "workflow_p95_ms",
        "deep_p95_ms",
        "run_p50_ms",
        "run_p95_ms",
        "api_p95_ms",
        "counts_p50_ms",
        "live_p50_ms",
        "live_p95_ms",
        "live_big_p50_ms",
        "live_big_p95_ms",
        "run_events",
        "fill_s",
    ),
)

W17 = Workload(
    key="w17",
    title="W17 schedules: a per-second cron tick to its run's start, 4 worker processes "
    "firing the same ticks (mean; p50/p99, runs per tick below)",
    unit="tick",
    primary="cost",
    systems={
        "durable": {
            "sqlite": "benchmarks.w17_schedules:durable_w17",
            "postgres": "benchmarks.w17_schedules:durable_w17",
        },
    },
    references=(),
    show=("start_p50_us", "start_p99_us", "runs_per_tick", "missing_ticks"),
)

W3 = Workload(
    key="w3",
    title="W3 fan-out: one async workflow gathers N child workflows (one no-op step each), "
    "embedded worker",
    unit="child run",
    primary="cost",
    systems={
        "durable": {
            "sqlite": "benchmarks.w3_fanout:durable_w3",
            "postgres": "benchmarks.w3_fanout:durable_w3",
        },
        "dbos": {
            "sqlite": "benchmarks.peer_dbos.w3:dbos_w3",
            "postgres": "benchmarks.peer_dbos.w3:dbos_w3",
        },
    },
    references=(),
    show=("total_s", "parent_leases", "extra_child_leases"),
)

W4_SAME = Workload(
    key="w4-same",
    title="W4 recovery: N runs of 10 x 10 ms steps, worker process SIGKILLed half-way, "
    "restarted under the same identity: restart to first resumed step",
    unit="restart",
    primary="cost",
    systems={
        "durable": {
            "sqlite": "benchmarks.w4_recovery:durable_w4_same",
            "postgres": "benchmarks.w4_recovery:durable_w4_same",
        }
    },
    references=(),
    show=("first_step_s", "ready_s", "all_done_s", "in_flight", "ran_twice"),
    group="w4",
)

W4_OTHER = Workload(
    key="w4-other",
    title="W4 recovery: the same, finished by a worker of another identity once the leases "
    "expire: kill to first step taken over",
    unit="takeover",
    primary="cost",
    systems={
        "durable": {
            "sqlite": "benchmarks.w4_recovery:durable_w4_other",
            "postgres": "benchmarks.w4_recovery:durable_w4_other",
        }
    },
    references=(),
    show=(
        "takeover_s",
        "lease_timeout_s",
        "lease_expiry_s",
        "pending_at_kill",
        "all_done_s",
        "in_flight",
        "ran_twice",
    ),
    group="w4",
)

W4_DBOS = Workload(
    key="w4-dbos",
    title="W4 recovery on DBOS (same executor id restarted; DBOS has no takeover by another "
    "worker without Conductor): kill to the last run done; compare with w4-same's all_done_s",
    unit="recovery",
    primary="cost",
    systems={
        "dbos": {
            "sqlite": "benchmarks.peer_dbos.w4:dbos_w4",
            "postgres": "benchmarks.peer_dbos.w4:dbos_w4",
        },
    },
    references=(),
    show=("twice_ran", "in_flight_at_kill", "restart_ready_s"),
    group="w4",
)

W8 = Workload(
    key="w8",
    title="W8 starts: client.start calls per second, nothing draining them "
    "(client.start_many batches below)",
    unit="start",
    primary="rate",
    systems={
        "durable": {
            "sqlite": "benchmarks.w8_starts:durable_w8",
            "postgres": "benchmarks.w8_starts:durable_w8",
        },
        "dbos": {
            "sqlite": "benchmarks.peer_dbos.w8:dbos_w8",
            "postgres": "benchmarks.peer_dbos.w8:dbos_w8",
        },
    },
    references=(),
    show=("batch_starts_per_s",),
)

W13 = Workload(
    key="w13",
    title="W13 bounded queue: client.start calls per second into a queue near its "
    "max_pending (unbounded starts, ratio and refused starts below)",
    unit="start",
    primary="rate",
    systems={
        "durable": {
            "sqlite": "benchmarks.w13_bounded:durable_w13",
            "postgres": "benchmarks.w13_bounded:durable_w13",
        },
    },
    references=(),
    show=("unbounded_starts_per_s", "ratio", "refused_per_s"),
)

W6_SLEEPING = Workload(
    key="w6-sleeping",
    title="W6 memory: a worker process with N runs parked in durable.sleep: time to park them "
    "(RSS over idle below)",
    unit="run",
    primary="cost",
    systems={
        "durable": {
            "sqlite": "benchmarks.w6_memory:durable_w6_sleeping",
            "postgres": "benchmarks.w6_memory:durable_w6_sleeping",
        }
    },
    references=(),
    show=("idle_rss_mb", "rss_over_idle_mb", "peak_over_idle_mb", "kb_per_run"),
    group="w6",
)

W6_CONCURRENT = Workload(
    key="w6-concurrent",
    title="W6 memory: a worker process (concurrency N) with N async runs awaiting a slow async "
    "step: time to get them all in (RSS over idle below)",
    unit="run",
    primary="cost",
    systems={
        "durable": {
            "sqlite": "benchmarks.w6_memory:durable_w6_concurrent",
            "postgres": "benchmarks.w6_memory:durable_w6_concurrent",
        }
    },
    references=(),
    show=("idle_rss_mb", "rss_over_idle_mb", "peak_over_idle_mb", "kb_per_run"),
    group="w6",
)

W7 = Workload(
    key="w7",
    title="W7 scale of the log: one-step runs started and awaited one at a time with N "
    "finished runs in the log (ratio against an empty log below)",
    unit="run",
    primary="cost",
    systems={
        "durable": {
            "sqlite": "benchmarks.w7_log_scale:durable_w7",
            "postgres": "benchmarks.w7_log_scale:durable_w7",
        }
    },
    references=(),
    show=(
        "ratio",
        "ratio_p50",
        "start_ratio",
        "pickup_ratio",
        "execute_ratio",
        "empty_us_per_run",
        "finished_runs",
        "fill_s",
    ),
)

W9_LATENCY = Workload(
    key="w9-latency",
    title="W9 watch: from an append call to the event's arrival in a watcher process "
    "(mean; p50/p99 below; DBOS: no equivalent)",
    unit="event",
    primary="cost",
    systems={
        "durable": {
            "sqlite": "benchmarks.w9_watch:durable_w9_latency",
            "postgres": "benchmarks.w9_watch:durable_w9_latency",
        }
    },
    references=(),
    show=(
        "delay_p50_us",
        "delay_p99_us",
        "after_return_p50_us",
        "append_call_p50_us",
        "reads_per_event",
    ),
    group="w9",
)

W9_FANOUT = Workload(
    key="w9-fanout",
    title="W9 watch: 100 watches of 100 ten-step runs in one other process: its CPU per "
    "event (reads per event below; DBOS: no equivalent)",
    unit="event",
    primary="cost",
    systems={
        "durable": {
            "sqlite": "benchmarks.w9_watch:durable_w9_fanout",
            "postgres": "benchmarks.w9_watch:durable_w9_fanout",
        }
    },
    references=(),
    show=("reads_per_event", "from_at_p50_us", "from_at_p99_us"),
    group="w9",
)


WORKLOADS: dict[str, Workload] = {
    w.key: w
    for w in (
        RAW,
        RAW8,
        W1,
        W1_RELAXED,
        W1_PATCHED,
        W1_TRACED,
        _w2(1),
        _w2(2),
        _w2(4),
        W3,
        W4_SAME,
        W4_OTHER,
        W4_DBOS,
        W5,
        W6_SLEEPING,
        W6_CONCURRENT,
        W7,
        W8,
        W13,
        W10,
        W11_CPU,
        W11_OVERHEAD,
        W15,
        W16,
        W14,
        W17,
        W9_LATENCY,
        W9_FANOUT,
    )
}
"""Every workload, in table order. The references come first."""


def expand(names: list[str]) -> list[str]:
    """Workload keys for command-line names: a key, or a group (``w2``: all its members)."""
    out: list[str] = []
    for name in names:
        keys = [name] if name in WORKLOADS else [k for k, w in WORKLOADS.items() if w.group == name]
        if not keys:
            raise KeyError(name)
        out += [k for k in keys if k not in out]
    return out
