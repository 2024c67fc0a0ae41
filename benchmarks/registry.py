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
    return Workload(
        key=f"w2-{processes}",
        title=(
            f"W2-lite throughput: N runs of the 10-step workflow started at once, drained by "
            f"{processes} worker process{'es' if processes > 1 else ''} (concurrency 16 each)"
        ),
        unit="step",
        primary="rate",
        systems={"durable": {"sqlite": fn, "postgres": fn}},
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
        }
    },
    references=(),
    show=("wake_p50_us", "wake_p99_us"),
)

WORKLOADS: dict[str, Workload] = {
    w.key: w for w in (RAW, RAW8, W1, W1_TRACED, _w2(1), _w2(2), _w2(4), W5)
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
