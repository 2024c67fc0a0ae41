"""The benchmark suite runs end to end (``python -m benchmarks --quick``). No timing asserts.

SQLite always; Postgres too when ``DURABLE_TEST_POSTGRES_URL`` names a server (each
measurement there creates and drops its own schema).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest
from harness.processes import ROOT, run

NEW_WORKLOADS = ("w2-1", "w2-2", "w2-4", "w5")
WL_WORKLOADS = ("w3", "w4-same", "w4-other", "w6-sleeping", "w6-concurrent", "w7")
"""W3, W4, W6, W7 (issue 5); their --quick sizes are in ``Settings.quick``."""


def _run_quick(tmp_path: Path, *args: str) -> tuple[list[str], dict[str, Any]]:
    """``python -m benchmarks --quick --raw --repeat 1 ARGS``: its table lines and JSON."""
    out = tmp_path / "results.json"
    quick = ["--quick", "--raw", "--repeat", "1", "--tmpdir", str(tmp_path), "--json", str(out)]
    proc = run([sys.executable, "-m", "benchmarks", *quick, *args], cwd=ROOT, timeout=600)
    assert proc.returncode == 0, f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    doc: dict[str, Any] = json.loads(out.read_text(encoding="utf-8"))
    return proc.stdout.splitlines(), doc


def _check_new_workloads(lines: list[str], doc: dict[str, Any], backend: str) -> None:
    cells = {(r["workload"], r["system"], r["backend"]): r for r in doc["results"]}
    refs = ["raw"] + (["raw8"] if backend == "postgres" else [])
    for ref in refs:
        assert cells[(ref, "raw", backend)]["skipped"] is None
    for key in ("w1", *NEW_WORKLOADS):
        r = cells[(key, "durable", backend)]
        assert r["skipped"] is None, r["skipped"]
        assert len(r["measurements"]) == 1 and r["measurements"][0]["ops"] > 0
        row = [ln for ln in lines if ln.split()[:3] == [key, "durable", backend]]
        assert row and "skipped" not in row[0]
    for key in ("w2-1", "w2-2", "w2-4"):
        r = cells[(key, "durable", backend)]
        assert r["measurements"][0]["ops"] == 50 * 10  # --quick: 50 runs of 10 steps
        assert sorted(r["ratios"]) == sorted(refs)  # steps/s against each raw reference
    w5 = cells[("w5", "durable", backend)]
    assert {"wake_p50_us", "wake_p99_us"} <= set(w5["measurements"][0]["extra"])
    assert any(f"w5/durable/{backend} wake_p99_us" in ln for ln in lines)


def _check_wl_workloads(lines: list[str], doc: dict[str, Any], backend: str) -> None:
    """W3/W4/W6/W7 ran once each, printed a row, and recorded their figures (no timing
    asserts: only that the figures exist and the recovery counts are consistent)."""
    cells = {(r["workload"], r["system"], r["backend"]): r for r in doc["results"]}
    extras = {}
    for key in WL_WORKLOADS:
        r = cells[(key, "durable", backend)]
        assert r["skipped"] is None, r["skipped"]
        assert len(r["measurements"]) == 1 and r["measurements"][0]["ops"] > 0
        extras[key] = r["measurements"][0]["extra"]
        row = [ln for ln in lines if ln.split()[:3] == [key, "durable", backend]]
        assert row and "skipped" not in row[0]
    assert cells[("w3", "durable", backend)]["measurements"][0]["ops"] == 50  # --quick children
    for key in ("w4-same", "w4-other"):
        extra = extras[key]
        assert extra["held_at_kill"] >= 1
        # a body runs twice only if it was in flight at the kill
        assert 0 <= extra["ran_twice"] <= extra["in_flight"]
    assert {"first_step_s", "all_done_s"} <= set(extras["w4-same"])
    assert {"takeover_s", "lease_expiry_s", "lease_timeout_s"} <= set(extras["w4-other"])
    for key in ("w6-sleeping", "w6-concurrent"):
        assert {"idle_rss_mb", "rss_over_idle_mb", "kb_per_run"} <= set(extras[key])
        assert extras[key]["idle_rss_mb"] > 0
    assert extras["w7"]["finished_runs"] == 20_000  # --quick fill
    assert {"ratio", "fill_s", "start_ratio", "pickup_ratio", "execute_ratio"} <= set(extras["w7"])
    for shown in ("w4-same", "w4-other", "w6-sleeping", "w7"):
        assert any(ln.strip().startswith(f"{shown}/durable/{backend} ") for ln in lines)


def test_benchmarks_quick_runs_and_prints_the_table(tmp_path: Path) -> None:
    out = tmp_path / "results.json"
    quick = ["--quick", "--raw", "--repeat", "2", "--tmpdir", tmp_path, "--json", out]
    proc = run([sys.executable, "-m", "benchmarks", *quick, "w1"], cwd=ROOT, timeout=300)
    assert proc.returncode == 0, f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    lines = proc.stdout.splitlines()
    assert any(line.split()[:2] == ["workload", "system"] for line in lines if line.strip())
    assert any(line.split()[:3] == ["raw", "raw", "sqlite"] for line in lines if line.strip())
    w1 = [line for line in lines if line.split()[:3] == ["w1", "durable", "sqlite"]]
    assert w1 and "skipped" not in w1[0] and "µs/step" in w1[0]

    doc = json.loads(out.read_text(encoding="utf-8"))
    cells = {(r["workload"], r["system"], r["backend"]): r for r in doc["results"]}
    w1_result = cells[("w1", "durable", "sqlite")]
    assert w1_result["skipped"] is None
    assert len(w1_result["measurements"]) == 2
    assert "raw" in w1_result["ratios"]
    assert cells[("raw", "raw", "sqlite")]["skipped"] is None
    # the temp databases were cleaned up
    assert not [p for p in tmp_path.iterdir() if p.name.startswith("durable-bench-")]


def test_benchmarks_quick_covers_w2_and_w5_on_sqlite(tmp_path: Path) -> None:
    lines, doc = _run_quick(tmp_path, "--backend", "sqlite", "w1", "w2", "w5")
    _check_new_workloads(lines, doc, "sqlite")
    assert not [p for p in tmp_path.iterdir() if p.name.startswith("durable-bench-")]


def test_benchmarks_quick_covers_w3_w4_w6_w7_on_sqlite(tmp_path: Path) -> None:
    lines, doc = _run_quick(tmp_path, "--backend", "sqlite", "w3", "w4", "w6", "w7")
    _check_wl_workloads(lines, doc, "sqlite")
    assert not [p for p in tmp_path.iterdir() if p.name.startswith("durable-bench-")]


def test_benchmarks_quick_covers_w15_on_sqlite(tmp_path: Path) -> None:
    lines, doc = _run_quick(tmp_path, "--backend", "sqlite", "w15")
    cells = {(r["workload"], r["system"], r["backend"]): r for r in doc["results"]}
    r = cells[("w15", "durable", "sqlite")]
    assert r["skipped"] is None, r["skipped"]
    assert r["measurements"][0]["ops"] == 3  # --quick: 3 runs
    assert r["measurements"][0]["extra"]["virtual_days"] > 37
    assert any("w15/durable/sqlite env_ms" in ln for ln in lines)


def test_benchmarks_quick_covers_w16_on_sqlite(tmp_path: Path) -> None:
    """W16 (durable check) checked its --quick log three times and recorded its figures."""
    lines, doc = _run_quick(tmp_path, "--backend", "sqlite", "w16")
    cells = {(r["workload"], r["system"], r["backend"]): r for r in doc["results"]}
    r = cells[("w16", "durable", "sqlite")]
    assert r["skipped"] is None, r["skipped"]
    m = r["measurements"][0]
    assert m["ops"] == 200  # --quick: 200 runs checked
    assert m["extra"]["jobs"] >= 1 and m["extra"]["children_cpu_s"] >= 0
    assert {"one_process_runs_per_s", "speedup", "blocking_runs_per_s"} <= set(m["extra"])
    assert any("w16/durable/sqlite speedup" in ln for ln in lines)


def test_benchmarks_quick_covers_w14_on_sqlite(tmp_path: Path) -> None:
    lines, doc = _run_quick(tmp_path, "--backend", "sqlite", "w14")
    cells = {(r["workload"], r["system"], r["backend"]): r for r in doc["results"]}
    r = cells[("w14", "durable", "sqlite")]
    assert r["skipped"] is None, r["skipped"]
    extra = r["measurements"][0]["extra"]
    assert r["measurements"][0]["ops"] == 5  # --quick: 5 timed requests of each page
    assert extra["finished_runs"] == 20_000 and extra["run_events"] >= 99
    for key in ("first", "failed", "workflow", "deep", "run", "api", "live", "live_big"):
        assert extra[f"{key}_p95_ms"] > 0, key
    assert any("w14/durable/sqlite live_p95_ms" in ln for ln in lines)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith("durable-bench-")]


def test_benchmarks_quick_covers_w17_on_sqlite(tmp_path: Path) -> None:
    """Schedules with four worker processes: every tick of the range has exactly one run."""
    lines, doc = _run_quick(tmp_path, "--backend", "sqlite", "w17")
    cells = {(r["workload"], r["system"], r["backend"]): r for r in doc["results"]}
    r = cells[("w17", "durable", "sqlite")]
    assert r["skipped"] is None, r["skipped"]
    extra = r["measurements"][0]["extra"]
    assert r["measurements"][0]["ops"] == 5  # --quick: 5 ticks
    assert extra["runs_per_tick"] == 1.0 and extra["missing_ticks"] == 0.0
    assert any("w17/durable/sqlite start_p99_us" in ln for ln in lines)


@pytest.mark.timeout(600)
def test_benchmarks_quick_on_postgres(tmp_path: Path) -> None:
    server = os.environ.get("DURABLE_TEST_POSTGRES_URL")
    if not server:
        pytest.skip("Postgres: set DURABLE_TEST_POSTGRES_URL to run the benchmarks on it")
    workloads = ("w1", *NEW_WORKLOADS, *WL_WORKLOADS, "w9", "w10", "w13", "w14", "w16")
    args = ("--backend", "postgres", "--postgres-url", server, *workloads)
    lines, doc = _run_quick(tmp_path, *args)
    _check_new_workloads(lines, doc, "postgres")
    _check_wl_workloads(lines, doc, "postgres")
    assert any(ln.startswith("postgres: ") and "synchronous_commit" in ln for ln in lines)
    cells = {(r["workload"], r["system"], r["backend"]): r for r in doc["results"]}
    for key in ("w9-latency", "w9-fanout", "w10", "w13", "w14", "w16"):
        assert cells[(key, "durable", "postgres")]["skipped"] is None, key


def test_benchmarks_list() -> None:
    proc = run([sys.executable, "-m", "benchmarks", "--list"], cwd=ROOT, timeout=60)
    assert proc.returncode == 0, proc.stderr
    for key in (
        "raw",
        "raw8",
        "w1",
        "w2-1",
        "w2-2",
        "w2-4",
        "w5",
        "w10",
        "w13",
        "w14",
        "w15",
        "w16",
        *WL_WORKLOADS,
    ):
        assert key in proc.stdout


DBOS_WORKLOADS = ("w1", "w2-1", "w2-2", "w2-4", "w3", "w4-dbos", "w5", "w8")


def _check_dbos_cells(lines: list[str], doc: dict[str, Any], backend: str) -> None:
    cells = {(r["workload"], r["system"], r["backend"]): r for r in doc["results"]}
    for key in DBOS_WORKLOADS:
        r = cells[(key, "dbos", backend)]
        assert r["skipped"] is None, r["skipped"]
        assert len(r["measurements"]) == 1 and r["measurements"][0]["ops"] > 0
        row = [ln for ln in lines if ln.split()[:3] == [key, "dbos", backend]]
        assert row and "skipped" not in row[0]
    for key in ("w1", "w2-1", "w2-2", "w2-4", "w3", "w5", "w8"):  # both sides: a ratio
        assert "dbos" in cells[(key, "durable", backend)]["ratios"]
    for key in ("w2-1", "w2-2", "w2-4"):
        assert cells[(key, "dbos", backend)]["measurements"][0]["ops"] == 50 * 10
    assert cells[("w3", "dbos", backend)]["measurements"][0]["ops"] == 50  # --quick children
    w4 = cells[("w4-dbos", "dbos", backend)]["measurements"][0]["extra"]
    assert w4["twice_ran"] <= w4["in_flight_at_kill"]  # a body reruns only if it was in flight
    assert {"wake_p50_us", "wake_p99_us"} <= set(
        cells[("w5", "dbos", backend)]["measurements"][0]["extra"]
    )
    assert "vs dbos" in next(ln for ln in lines if ln.split()[:2] == ["workload", "system"])


def _dbos_backends() -> list[tuple[str, ...]]:
    server = os.environ.get("DURABLE_TEST_POSTGRES_URL")
    pg = ("--backend", "postgres", "--postgres-url", server) if server else None
    return [("--backend", "sqlite"), *([pg] if pg else [])]


@pytest.mark.timeout(1200)
@pytest.mark.parametrize("backend_args", _dbos_backends(), ids=lambda a: a[1])
def test_benchmarks_quick_compare_dbos(tmp_path: Path, backend_args: tuple[str, ...]) -> None:
    """Every DBOS cell runs with ``--quick`` (only where the ``bench`` extra is installed;
    CI installs ``dev`` alone, so there this skips)."""
    pytest.importorskip("dbos")
    lines, doc = _run_quick(tmp_path, "--compare", "dbos", *backend_args, *DBOS_WORKLOADS)
    _check_dbos_cells(lines, doc, backend_args[1])
    assert not [p for p in tmp_path.iterdir() if p.name.startswith("durable-bench-")]


def test_compare_dbos_without_dbos_is_one_line(tmp_path: Path) -> None:
    """Without DBOS installed, ``--compare dbos`` stops with one line, not a traceback."""
    blocker = tmp_path / "dbos.py"  # shadows any installed dbos: importing it fails
    blocker.write_text("raise ImportError('dbos hidden by the test')\n", encoding="utf-8")
    argv = [sys.executable, "-m", "benchmarks", "--quick", "--compare", "dbos", "w1"]
    proc = run(argv, cwd=ROOT, path=[tmp_path], timeout=60)
    assert proc.returncode == 2, proc.stderr
    assert "bench" in proc.stderr and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_baseline_runs_the_same_workload_on_another_checkouts_durable(tmp_path: Path) -> None:
    """``--baseline DIR``: a ``base`` row beside each durable row, and a ``vs base`` ratio.

    The other checkout here is a copy of this one whose ``durable`` leaves a mark when it is
    imported, so that the test can tell that the base side really ran that package.
    """
    other = tmp_path / "other"
    (other / "durable").mkdir(parents=True)
    for src in (ROOT / "durable").rglob("*.py"):
        dst = other / "durable" / src.relative_to(ROOT / "durable")
        dst.parent.mkdir(parents=True, exist_ok=True)
        dst.write_text(src.read_text())
    mark = tmp_path / "imported"
    init = other / "durable" / "__init__.py"
    init.write_text(init.read_text() + f"\nopen({str(mark)!r}, 'a').write('base\\n')\n")
    lines, data = _run_quick(tmp_path, "--baseline", str(other), "w1")
    assert mark.read_text().count("base") >= 1
    rows = {(r["workload"], r["system"]) for r in data["results"] if r["measurements"]}
    assert {("w1", "durable"), ("w1", "base")} <= rows
    assert "vs base" in lines[0] or any("vs base" in line for line in lines)
    mine = next(r for r in data["results"] if r["workload"] == "w1" and r["system"] == "durable")
    assert "base" in mine["ratios"]


def test_baseline_refuses_a_folder_without_durable(tmp_path: Path) -> None:
    proc = run(
        [sys.executable, "-m", "benchmarks", "--quick", "--baseline", str(tmp_path), "w1"],
        cwd=ROOT,
    )
    assert proc.returncode == 2, proc.describe()
    assert "no durable package" in proc.stderr


def test_benchmarks_quick_covers_w10_on_sqlite(tmp_path: Path) -> None:
    """W10 (cancel to the body) ran and recorded its percentiles; no timing asserts."""
    lines, doc = _run_quick(tmp_path, "w10")
    cells = {(r["workload"], r["system"], r["backend"]): r for r in doc["results"]}
    w10 = cells[("w10", "durable", "sqlite")]
    assert w10["skipped"] is None and w10["measurements"][0]["ops"] == 3  # --quick
    assert {"cancel_p50_us", "cancel_p99_us"} <= set(w10["measurements"][0]["extra"])
    assert any("w10/durable/sqlite cancel_p99_us" in ln for ln in lines)


def test_benchmarks_quick_covers_w11_on_sqlite(tmp_path: Path) -> None:
    """W11 (threads against the process pool) ran both cells; no timing asserts."""
    lines, doc = _run_quick(tmp_path, "w11")
    cells = {(r["workload"], r["system"], r["backend"]): r for r in doc["results"]}
    cpu = cells[("w11-cpu", "durable", "sqlite")]
    assert cpu["skipped"] is None
    assert {"thread_s", "speedup", "alone_s"} <= set(cpu["measurements"][0]["extra"])
    overhead = cells[("w11-overhead", "durable", "sqlite")]
    assert overhead["skipped"] is None and overhead["measurements"][0]["ops"] == 5  # --quick
    assert {"thread_us", "overhead_us"} <= set(overhead["measurements"][0]["extra"])
    assert any("w11-cpu/durable/sqlite speedup" in ln for ln in lines)


def test_benchmarks_quick_covers_w13_on_sqlite(tmp_path: Path) -> None:
    """W13 (bounded against unbounded starts) ran, checked the bound and recorded its ratio;
    no timing asserts."""
    lines, doc = _run_quick(tmp_path, "w13")
    cells = {(r["workload"], r["system"], r["backend"]): r for r in doc["results"]}
    w13 = cells[("w13", "durable", "sqlite")]
    assert w13["skipped"] is None and w13["measurements"][0]["ops"] == 50  # --quick
    extra = set(w13["measurements"][0]["extra"])
    assert {"unbounded_starts_per_s", "ratio", "refused_per_s"} <= extra
    assert any("w13/durable/sqlite ratio" in ln for ln in lines)
