"""Run the files in ``examples/`` as a user would, in subprocesses, against temporary logs.

An example takes part by defining a module-level ``TEST_ARGS = [...]`` (a literal list of
strings): it is then run as ``python examples/NAME.py --database URL *TEST_ARGS`` with
``DURABLE_DATABASE_URL`` set to the same temporary database, and must exit with status 0.
The quickstart is also killed with SIGKILL mid-run and restarted, to check that it resumes
from its journal without executing completed steps again.
"""

from __future__ import annotations

import ast
import contextlib
import json
import re
import signal
import sys
from pathlib import Path
from typing import Any

import pytest
from harness.processes import Proc, Processes, run

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
QUICKSTART = EXAMPLES / "quickstart.py"
RUN_ID = "quickstart-1"
TOTAL_STEPS = 12


def _test_args(path: Path) -> list[str] | None:
    """The example's literal ``TEST_ARGS`` list, or None when it exposes no test mode."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    for node in tree.body:
        if isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if any(isinstance(t, ast.Name) and t.id == "TEST_ARGS" for t in targets):
                value = ast.literal_eval(node.value) if node.value is not None else None
                assert isinstance(value, list), f"{path.name}: TEST_ARGS must be a list"
                assert all(isinstance(a, str) for a in value), f"{path.name}: TEST_ARGS: str"
                return value
    return None


def _examples_with_test_mode() -> list[Path]:
    return sorted(p for p in EXAMPLES.glob("*.py") if _test_args(p) is not None)


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'examples.db'}"


@pytest.fixture
def spawn(tmp_path: Path, processes: Processes) -> Any:
    """``spawn(script_and_args, db_url, name)``: an example process in its own session, with
    ``DURABLE_DATABASE_URL`` set (killed with its whole group when the test ends)."""

    def start(args: list[str], db_url: str, name: str) -> Proc:
        env = {"DURABLE_DATABASE_URL": db_url}
        return processes.python(*args, name=name, cwd=tmp_path, env=env, new_session=True)

    return start


def _finish(proc: Proc, timeout: float) -> tuple[int, str]:
    """Wait for ``proc`` to end (killed, and the test failed, after ``timeout`` s)."""
    rc = proc.wait(timeout)
    return rc, proc.output()


def _side_entries(path: Path) -> list[dict[str, Any]]:
    entries = []
    if path.exists():
        for line in path.read_text(encoding="utf-8").splitlines():
            with contextlib.suppress(ValueError):  # a line cut short by SIGKILL
                entries.append(json.loads(line))
    return entries


def test_quickstart_exposes_a_test_mode() -> None:
    assert QUICKSTART in _examples_with_test_mode()


@pytest.mark.parametrize("example", _examples_with_test_mode(), ids=lambda p: p.name)
def test_example_runs(example: Path, sqlite_url: str, spawn: Any, tmp_path: Path) -> None:
    args = _test_args(example)
    assert args is not None
    proc = spawn([str(example), "--database", sqlite_url, *args], sqlite_url, example.stem)
    rc, output = _finish(proc, timeout=90)
    assert rc == 0, output
    if example == QUICKSTART:
        assert f"run {RUN_ID}: new run" in output, output
        assert f"run {RUN_ID} completed (" in output, output
        assert "result: " in output and '"rows_loaded": 20' in output, output
        assert "outputs:" in output and "report:" in output, output
        assert "[load" in output, output  # one progress line per change when not a TTY
        assert "step validate attempt 1 failed, retrying" in output, output
        assert "(12 steps + 1 retries)" in output, output
    if example.name == "download.py":
        assert "[watch] fetched " in output and "[watch] progress " in output, output
        assert re.search(r"\[watch\] run \S+ ended: cancelled", output), output
        assert ": requested" in output, output  # cancelled from another process, while running
        assert re.search(r"run \S+ is cancelled", output), output
        kept = re.search(r"pages kept in the journal: (\d+); files in \S+: (\d+)", output)
        assert kept is not None and kept.group(1) == kept.group(2), output
        assert 20 <= int(kept.group(1)) < 40, output
    if example.name == "task_sequence.py":
        assert "on_success published https://cdn.example/thumb-cat.png" in output, output
        assert "thumbnail  dog.png (attempt 2)" in output, output
        assert "on_error   publish failed in thumbnail on attempt 1: PermanentError" in output
        assert output.count("on_error   ") == 1, output
        assert "-> failed after 1 attempt(s); handlers: on_success x0, on_error x1" in output
    if example.name == "bullmq_jobs.py":
        assert "refused img-one-too-many: queue 'images' is full" in output, output
        assert "img-broken failed after its retries: ConnectionError" in output, output
        assert "img-long is cancelled" in output, output
        assert "(priority 10) was in the worker's first take: True" in output, output
        assert "'tries': 2" in output, output  # the flaky job succeeded on its retry
        assert "metrics image_job on images: 19 completed, 1 failed, 1 cancelled" in output
        assert "kept {'cancelled': 1, 'completed': 10, 'failed': 1}" in output, output
    if example.name == "testing_workflows.py":
        assert "ok test_a_confirmed_subscription_is_charged_after_three_declines" in output
        assert "3 tests passed; the App's own log was not opened" in output, output
        assert not (tmp_path / "examples.db").exists(), output
    if example.name == "golden_journals.py":
        assert re.search(r"exported run \S+ \(6 events\) to \S+/order/sleeping\.json", output)
        assert "v1: 1 journal replays" in output, output
        assert "v2: 1 of 1 exported journal no longer replays" in output, output
        assert (
            "of workflow 'order', at position 2: the code calls step 'fraud', the journal "
            "holds sleep"
        ) in output, output
        assert "v3 (patched): 1 journal replays" in output, output
    if example.name == "tracing.py":
        assert "charged order 42" in output, output
        lines = [ln for ln in output.splitlines() if re.match(r"[0-9a-f]{32} ", ln)]
        assert len({ln.split()[0] for ln in lines}) == 1, output  # one trace
        names = [ln.split()[1] for ln in lines]
        for name in ("POST", "start", "order_pipeline", "stage", "step"):
            assert name in names, output
        assert "attempt=2 outcome=completed" in output, output
        assert "* progress" in output and "* message" in output, output


def test_quickstart_help(tmp_path: Path, sqlite_url: str) -> None:
    env = {"DURABLE_DATABASE_URL": sqlite_url}
    proc = run([sys.executable, QUICKSTART, "--help"], cwd=tmp_path, env=env, timeout=60)
    assert proc.returncode == 0, proc.stderr
    for option in ("--database", "--step-seconds", "--fresh", "--id", "--side-file"):
        assert option in proc.stdout


def _journal(client: Any) -> list[Any]:
    import durable

    try:
        return list(client.get(RUN_ID).events())
    except durable.RunNotFoundError:
        return []


def _completed_positions(events: list[Any]) -> list[int]:
    return [e.position for e in events if e.type == "step_completed"]


@pytest.mark.timeout(240)
def test_quickstart_resumes_after_sigkill(sqlite_url: str, spawn: Any, tmp_path: Path) -> None:
    import durable

    side = tmp_path / "steps.jsonl"
    common = [str(QUICKSTART), "--database", sqlite_url, "--side-file", str(side)]

    # 1. Start slowly, wait for three completed steps in the journal, then SIGKILL.
    first = spawn([*common, "--step-seconds", "0.3"], sqlite_url, "first")
    first.wait_for_output("tip:", timeout=60)  # the run has been started
    client = durable.Client(sqlite_url)
    try:
        first.wait_for(
            lambda: len(_completed_positions(_journal(client))) >= 3,
            60,
            "three completed steps in the journal",
        )
        assert first.kill() == -signal.SIGKILL
        completed = set(_completed_positions(_journal(client)))
    finally:
        close = getattr(client, "close", None)
        if close is not None:
            close()
    first_output = first.output()
    assert f"run {RUN_ID}: new run" in first_output, first_output
    assert 3 <= len(completed) < TOTAL_STEPS, completed
    assert all(e["pid"] == first.pid for e in _side_entries(side))

    # 2. Start again: the same run resumes from its journal and completes.
    second = spawn([*common, "--step-seconds", "0.05"], sqlite_url, "second")
    rc, output = _finish(second, timeout=120)
    assert rc == 0, output
    assert f"run {RUN_ID}: resumed run" in output, output
    match = re.search(r"replaying (\d+) of 12 steps from the journal", output)
    assert match is not None, output
    assert int(match.group(1)) == len(completed), output
    match = re.search(
        r"replayed (\d+) steps from the journal; replayed steps executed again: 0", output
    )
    assert match is not None, output
    assert int(match.group(1)) == len(completed), output
    assert "result: " in output and '"rows_loaded": 20' in output, output

    # 3. The side file: no completed step's body ran in the second process.
    entries = _side_entries(side)
    first_positions = {e["position"] for e in entries if e["pid"] == first.pid}
    second_positions = [e["position"] for e in entries if e["pid"] == second.pid]
    assert completed <= first_positions, (completed, entries)
    assert not completed & set(second_positions), (completed, entries)
    assert second_positions, entries  # the rest of the run executed in the second process
    reported = re.search(r"step bodies executed in this process: (\d+)", output)
    assert reported is not None and int(reported.group(1)) == len(second_positions), output

    # 4. The journal: every step has exactly one outcome, and the run completed.
    client = durable.Client(sqlite_url)
    try:
        handle = client.get(RUN_ID)
        positions = _completed_positions(list(handle.events()))
        assert len(positions) == len(set(positions)) == TOTAL_STEPS, positions
        assert handle.status() == durable.Status.COMPLETED
    finally:
        close = getattr(client, "close", None)
        if close is not None:
            close()
