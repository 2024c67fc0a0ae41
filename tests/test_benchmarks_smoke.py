"""The benchmark suite runs end to end (``python -m benchmarks --quick``). No timing asserts."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_benchmarks_quick_runs_and_prints_the_table(tmp_path: Path) -> None:
    out = tmp_path / "results.json"
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    env.pop("DURABLE_DATABASE_URL", None)
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks",
            "--quick",
            "--raw",
            "--repeat",
            "2",
            "--tmpdir",
            str(tmp_path),
            "--json",
            str(out),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
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


def test_benchmarks_list() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--list"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "w1" in proc.stdout and "raw" in proc.stdout
