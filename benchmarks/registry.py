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
    reference: str | None = "raw"
    """The workload whose result this one is divided by (``None`` for a reference itself)."""

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
    title="store: one INSERT + COMMIT per row",
    unit="commit",
    primary="cost",
    systems={"raw": {"sqlite": "benchmarks.raw_store:sqlite_single_row"}},
    reference=None,
)

W1 = Workload(
    key="w1",
    title="W1 latency: 10-step workflow, one at a time",
    unit="step",
    primary="cost",
    systems={"durable": {"sqlite": "benchmarks.w1_latency:durable_w1"}},
)

WORKLOADS: dict[str, Workload] = {w.key: w for w in (RAW, W1)}
"""Every workload, in table order. The references come first."""
