"""Plans the cells of a run and measures them, repetitions interleaved.

Within one repetition the cells run in plan order (the reference first: raw, durable,
[dbos,] raw, durable, ...), so that every ratio pairs two figures taken moments apart and
slow drift of the machine (page cache, thermal, a neighbour) affects both sides alike.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from benchmarks.model import Measurement, Result, Settings
from benchmarks.registry import WORKLOADS, Workload, load


@dataclass(frozen=True, slots=True)
class Cell:
    """One workload on one system and one backend."""

    workload: Workload
    system: str
    backend: str

    @property
    def label(self) -> str:
        return f"{self.workload.key}/{self.system}/{self.backend}"

    def new_result(self) -> Result:
        w = self.workload
        return Result(
            workload=w.key,
            title=w.title,
            system=self.system,
            backend=self.backend,
            unit=w.unit,
            primary=w.primary,
            references=list(w.references),
            show=list(w.show),
        )


BASE = "base"
"""The system name of durable's own workloads run on another checkout's code (``--baseline``)."""


def plan(
    workloads: Sequence[str],
    backends: Sequence[str],
    raw: bool,
    compare: Sequence[str],
    baseline: bool = False,
) -> list[Cell]:
    """The cells to measure, in the order each repetition runs them (with ``baseline``, a
    ``base`` cell right after each ``durable`` one)."""
    cells: list[Cell] = []
    seen: set[tuple[str, str, str]] = set()

    def add(workload: Workload, system: str, backend: str) -> None:
        key = (workload.key, system, backend)
        if key not in seen:
            seen.add(key)
            cells.append(Cell(workload, system, backend))

    for backend in backends:
        for key in workloads:
            workload = WORKLOADS[key]
            if raw:
                for ref in workload.references:
                    # a reference that does not exist on this backend (raw8 on SQLite, whose
                    # one writer at a time makes more clients meaningless) is left out
                    if WORKLOADS[ref].impl("raw", backend) is not None:
                        add(WORKLOADS[ref], "raw", backend)
            if workload.is_reference:
                add(workload, "raw", backend)
                continue
            # A system that implements a workload on no backend at all (DBOS's W6, durable's
            # w4-dbos) is left out rather than shown as skipped on every row.
            for system in ("durable", *compare):
                if workload.systems.get(system):
                    add(workload, system, backend)
                    if system == "durable" and baseline:
                        add(workload, BASE, backend)
    return cells


Progress = Callable[[str], None]


def run(
    cells: Sequence[Cell],
    settings: Settings,
    repeat: int,
    isolate: bool = False,
    progress: Progress | None = None,
    base_root: str | None = None,
) -> list[Result]:
    """Measure every cell ``repeat`` times, interleaved, and compute the ratios.

    ``base_root``: a code folder (see :func:`baseline_root`) whose ``durable`` the ``base``
    cells run; every durable and base cell then runs in a fresh interpreter, so that both
    sides of each ``vs base`` ratio are measured alike.

    A cell without an implementation is kept, marked ``skipped``. A cell that raises is
    marked ``skipped`` with the error (its traceback goes to ``progress``) and is not tried
    again in later repetitions; the others go on.
    """
    say = progress or (lambda _msg: None)
    results = {cell.label: cell.new_result() for cell in cells}

    def impl(cell: Cell) -> str | None:
        system = "durable" if cell.system == BASE else cell.system
        return cell.workload.impl(system, cell.backend)

    for cell in cells:
        if impl(cell) is None:
            results[cell.label].skipped = f"no {cell.system} implementation on {cell.backend} yet"
    for rep in range(1, repeat + 1):
        for cell in cells:
            result = results[cell.label]
            if result.skipped:
                continue
            target = impl(cell)
            assert target is not None
            try:
                if cell.system == BASE:
                    m = measure_in_subprocess(target, cell.backend, settings, root=base_root)
                elif isolate or (base_root is not None and cell.system == "durable"):
                    m = measure_in_subprocess(target, cell.backend, settings)
                else:
                    m = load(target)(settings, cell.backend)
            except Exception as exc:
                say(f"[{rep}/{repeat}] {cell.label}: FAILED\n{traceback.format_exc()}")
                result.skipped = f"error: {type(exc).__name__}: {exc}"
                result.measurements.clear()
                continue
            result.measurements.append(m)
            say(
                f"[{rep}/{repeat}] {cell.label:<24} {m.us_per_op:10.1f} µs/{cell.workload.unit}"
                f"  {m.ops_per_s:10.0f} {cell.workload.unit}s/s"
            )
    out = list(results.values())
    _compare(out)
    return out


def _compare(results: list[Result]) -> None:
    """Fill each result's ratios: against its raw reference, and ours against each peer."""
    by_key = {(r.workload, r.system, r.backend): r for r in results}
    for r in results:
        for key in r.references:
            ref = by_key.get((key, "raw", r.backend))
            if ref is not None:
                r.compare(key, ref)
        if r.system == "durable":
            for other in results:
                same_cell = other.workload == r.workload and other.backend == r.backend
                if same_cell and other.system not in ("durable", "raw"):
                    r.compare(other.system, other)


def baseline_root(checkout: str) -> str:
    """A folder in which ``durable`` is ``checkout``'s package and ``benchmarks`` is this one,
    so that the same workload code measures another version of durable (``--baseline``).

    Processes started from it (``benchmarks._worker``) find the same two, since the
    benchmarks' own paths are taken from where they were imported (the links are not
    resolved).
    """
    pkg = os.path.join(os.path.abspath(checkout), "durable")
    if not os.path.isfile(os.path.join(pkg, "__init__.py")):
        raise ValueError(f"--baseline {checkout}: no durable package in that folder")
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    root = tempfile.mkdtemp(prefix="durable-bench-base-")
    os.symlink(pkg, os.path.join(root, "durable"))
    os.symlink(os.path.join(here, "benchmarks"), os.path.join(root, "benchmarks"))
    return root


def measure_in_subprocess(
    target: str,
    backend: str,
    settings: Settings,
    timeout: float | None = None,
    root: str | None = None,
) -> Measurement:
    """Run one measurement (``"module:function"``) in a fresh interpreter
    (``benchmarks._child``) with ``root`` (default: this checkout) first on its path, and
    return it; raise with the child's stderr if it fails."""
    root = root or os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks._child",
            target,
            backend,
            json.dumps(settings.to_dict()),
        ],
        capture_output=True,
        text=True,
        cwd=root,
        env=env,
        timeout=timeout,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"{target} exited {proc.returncode}:\n{proc.stderr.strip()[-4000:]}")
    lines = proc.stdout.strip().splitlines()
    if not lines:
        raise RuntimeError(f"{target} printed no result:\n{proc.stderr.strip()[-4000:]}")
    return Measurement.from_dict(json.loads(lines[-1]))
