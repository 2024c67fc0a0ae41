"""The ``durable`` console script, run for real in subprocesses, on SQLite and Postgres."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from harness.processes import Finished, Proc, Processes, run

import durable

PROCS = Path(__file__).resolve().parent / "procs"
sys.path.insert(0, str(PROCS))
import cliapp  # noqa: E402

SCRIPT = Path(sys.executable).parent / "durable"
COMMAND = [str(SCRIPT)] if SCRIPT.exists() else [sys.executable, "-m", "durable.cli"]


def durable_cli(*args: str, timeout: float = 60) -> Finished:
    """Run ``durable ARGS`` from the folder of ``cliapp.py`` (no ``DURABLE_*`` variables)."""
    return run([*COMMAND, *args], cwd=PROCS, timeout=timeout)


def run_all(*commands: list[str]) -> list[Finished]:
    """Run several ``durable`` commands at once (they only read, or fail); in order."""
    with Processes() as group:
        started = [
            group.start([*COMMAND, *c], name="durable", cwd=PROCS, separate_stderr=True)
            for c in commands
        ]
        return [proc.result(timeout=60) for proc in started]


def ok_json(*args: str) -> Any:
    """Run a command that must succeed and print JSON; return the parsed JSON."""
    r = durable_cli(*args, "--json")
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def one_line_error(r: Finished, code: int, words: str) -> None:
    """The command failed with ``code`` and one clear line, no traceback."""
    assert r.returncode == code, (r.returncode, r.stdout, r.stderr)
    assert r.stderr.startswith("durable: ") and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert words in r.stderr and "Traceback" not in r.stderr


@pytest.fixture
def worker(db_url: str, processes: Processes) -> Proc:
    """``durable worker cliapp:app`` on the test's log, in a child process."""
    argv = [*COMMAND, "--database", db_url, "worker", "cliapp:app", "--concurrency", "4"]
    return processes.start(argv, name="worker", cwd=PROCS, separate_stderr=True)


def test_the_console_script_is_installed() -> None:
    assert SCRIPT.exists(), "pip install -e . installs the durable script beside python"
    r = run([sys.executable, "-m", "durable.cli", "--version"])
    assert r.returncode == 0 and r.stdout.startswith("durable ")


COMMANDS = [
    [],
    ["worker"],
    ["start"],
    ["runs"],
    ["runs", "list"],
    ["runs", "show"],
    ["runs", "events"],
    ["runs", "watch"],
    ["runs", "export"],
    ["resume"],
    ["cancel"],
    ["replay"],
    ["check"],
    ["signal"],
    ["prune"],
    ["stats"],
    ["workers"],
]


def test_help_on_every_command() -> None:
    for command, r in zip(COMMANDS, run_all(*[[*c, "--help"] for c in COMMANDS]), strict=True):
        assert r.returncode == 0, command
        assert r.stdout.startswith("usage: durable"), command
        assert "exit codes:" in r.stdout and "130  interrupted" in r.stdout, command
    r = durable_cli("no-such-command")
    assert r.returncode == 2 and "invalid choice" in r.stderr


def test_worker_start_wait_watch_stats_and_sigterm(db_url: str, worker: Proc) -> None:
    db = ["--database", db_url]
    done = ok_json(*db, "start", "greet", '["ana"]', "--kwargs", '{"punctuation": "?"}', "--wait")
    assert done["status"] == "completed" and done["result"] == "hello ANA?"

    failed = durable_cli(*db, "start", "fails", "7", "--wait", "--id", "f-1")
    assert failed.returncode == 1, failed.stderr
    assert "ended f-1 (fails): failed" in failed.stdout

    # Watch a run from its start to its end: JSON lines of events, then the run.
    started = ok_json(*db, "start", "greet", '"bo"', "--id", "w-1")
    assert started["id"] == "w-1" and started["status"] in ("pending", "running", "completed")
    r = durable_cli(*db, "runs", "watch", "w-1", "--json", "--interval", "0.05")
    assert r.returncode == 0, r.stderr
    lines = [json.loads(line) for line in r.stdout.splitlines()]
    types = [line["event"]["type"] for line in lines[:-1]]
    assert types[0] == "run_started" and types[-1] == "run_completed"
    assert {"stage_entered", "progress", "message", "step_completed"} <= set(types)
    assert [e["event"]["seq"] for e in lines[:-1]] == list(range(1, len(types) + 1))
    assert lines[-1]["run"]["status"] == "completed"
    # Into a pipe without --json: one line per event, then how the run ended.
    r = durable_cli(*db, "runs", "watch", "f-1")
    assert r.returncode == 1 and r.stdout.splitlines()[-1].startswith("run f-1 failed: Value")

    runs = ok_json(*db, "runs", "list", "--status", "completed")
    assert sorted(x["workflow"] for x in runs) == ["greet", "greet"]
    show = ok_json(*db, "runs", "show", "w-1")
    assert show["outputs"]["prepare"] == {"shout": {"result": "BO"}, "loud": "BO"}
    assert show["run"]["steps_completed"] == 2
    events = ok_json(*db, "runs", "events", "f-1")
    assert events[-1]["type"] == "run_failed"

    stats = {s["workflow"]: s for s in ok_json(*db, "stats")}
    greet, fails = stats["greet"], stats["fails"]
    assert (greet["completed"], greet["failed"], greet["success_rate"]) == (2, 0, 1.0)
    assert 0.4 < greet["p50_seconds"] < 30 and greet["p95_seconds"] >= greet["p50_seconds"]
    assert fails["success_rate"] == 0.0 and fails["top_errors"] == [["ValueError", 1]]
    assert fails["errors_per_hour"] == pytest.approx(1 / 24)
    table = durable_cli(*db, "stats", "--window", "all")
    assert table.returncode == 0 and table.stdout.split()[:3] == ["WORKFLOW", "QUEUE", "DONE"]

    assert worker.terminate(timeout=60) == 0, worker.describe()
    assert "durable worker: stopped" in worker.errors()


def test_start_list_signal_cancel_resume_without_a_worker(db_url: str) -> None:
    db = ["--database", db_url]
    first = ok_json(*db, "start", "waits", "--id", "a-1", "--queue", "slow", "--priority", "3")
    assert (first["id"], first["queue"], first["priority"]) == ("a-1", "slow", 3)
    later = ok_json(*db, "start", "greet", '["x"]', "--delay", "1h")
    assert later["wake_at"] is not None and later["status"] == "pending"
    assert [r["id"] for r in ok_json(*db, "runs", "list", "--queue", "slow")] == ["a-1"]
    by_workflow, limited, table = run_all(
        [*db, "runs", "list", "--workflow", "greet", "--limit", "5", "--json"],
        [*db, "runs", "list", "--limit", "1", "--json"],
        [*db, "runs", "list"],
    )
    assert len(json.loads(by_workflow.stdout)) == 1 and len(json.loads(limited.stdout)) == 1
    assert table.returncode == 0 and "a-1" in table.stdout and "STATUS" in table.stdout

    assert durable_cli(*db, "signal", "a-1", "go", '{"by": "ana"}').returncode == 0
    with durable.Client(db_url) as client:
        (received,) = [e for e in client.events("a-1") if e.type == "signal_received"] or [None]
        assert received is None  # no worker yet: the signal waits in the inbox
    assert ok_json(*db, "cancel", "a-1")["status"] == "cancelled"
    assert ok_json(*db, "resume", "a-1")["status"] == "pending"
    assert ok_json(*db, "runs", "show", "a-1")["run"]["attempt"] == 2
    one_line_error(durable_cli(*db, "runs", "show", "nope"), 3, "no run with id 'nope'")


def test_errors_are_one_line_with_an_exit_code(tmp_path: Path) -> None:
    """Backend-independent error paths, on a SQLite file (the not-found ones on both backends
    go through the same client code)."""
    db = ["--database", f"sqlite:///{tmp_path}/errors.db"]
    assert durable_cli(*db, "start", "waits", "--id", "a-1").returncode == 0
    expected = [
        (["runs", "show", "nope"], 3, "no run with id 'nope'"),
        (["runs", "events", "nope"], 3, "no run with id 'nope'"),
        (["runs", "watch", "nope"], 3, "no run with id 'nope'"),
        (["cancel", "nope"], 3, "no run with id 'nope'"),
        (["resume", "nope"], 3, "no run with id 'nope'"),
        (["signal", "nope", "go"], 3, "no run with id 'nope'"),
        (["start", "greet", "[1,"], 2, "ARGS_JSON is not valid JSON"),
        (["signal", "a-1", "go", "{x"], 2, "not valid JSON"),
        (["start", "greet", "--delay", "soon"], 2, "not a duration"),
        (["worker", "cliapp:nothing"], 2, "has no attribute"),
        (["worker", "nosuchmodule:app"], 2, "no such module"),
        (["start", "greet", "--app", "cliapp:app", "--kwargs", '{"x": 1}'], 2, "do not fit"),
        (["prune"], 2, "prune needs"),
    ]
    results = run_all(
        *[[*db, *c] for c, _, _ in expected], ["--database", "nosuch://x", "runs", "list"]
    )
    for (_, code, words), r in zip(expected, results, strict=False):
        one_line_error(r, code, words)
    one_line_error(results[-1], 2, "bad database URL")


def _completed_greets(db_url: str, n: int) -> list[str]:
    app = cliapp.make_app(db_url)
    try:
        client = app.client()
        with app.worker():
            return [
                client.start("greet", f"n{i}", id=f"g-{i}").result(20) and f"g-{i}"
                for i in range(n)
            ]
    finally:
        app.close()


def test_replay_matches_or_exits_5(db_url: str) -> None:
    (run_id,) = _completed_greets(db_url, 1)
    db = ["--database", db_url]
    replayed = ok_json(*db, "replay", run_id, "--app", "cliapp:app")
    assert replayed == {"id": run_id, "matches": True, "finished": True, "result": "hello N0!"}
    one_line_error(durable_cli(*db, "replay", run_id, "--app", "cliapp:changed"), 5, run_id)
    assert durable_cli(*db, "replay", run_id).returncode == 2  # --app is required
    one_line_error(durable_cli(*db, "replay", "nope", "--app", "cliapp:app"), 3, "nope")


def test_prune_deletes_old_finished_runs_only(db_url: str) -> None:
    done = _completed_greets(db_url, 3)
    db = ["--database", db_url]
    ok_json(*db, "start", "waits", "--id", "pending-1")
    would = ok_json(*db, "prune", "--keep-completed", "1", "--dry-run")
    assert would == {"dry_run": True, "count": 2, "ids": done[:2]}
    assert len(ok_json(*db, "runs", "list")) == 4
    assert ok_json(*db, "prune", "--older-than", "1h") == {"dry_run": False, "count": 0, "ids": []}
    gone = ok_json(*db, "prune", "--keep-completed", "1", "--workflow", "greet")
    assert gone["count"] == 2 and sorted(gone["ids"]) == done[:2]
    assert sorted(r["id"] for r in ok_json(*db, "runs", "list")) == [done[2], "pending-1"]
    r = durable_cli(*db, "prune", "--keep-completed", "0", "--keep-failed", "0")
    assert r.returncode == 0 and r.stdout.strip() == "deleted 1 finished run"


def test_watch_draws_progress_bars_on_a_terminal(db_url: str, processes: Processes) -> None:
    import pty

    (run_id,) = _completed_greets(db_url, 1)
    master, slave = pty.openpty()
    argv = [*COMMAND, "--database", db_url, "runs", "watch", run_id]
    proc = processes.start(argv, name="watch", cwd=PROCS, stdout=slave, separate_stderr=True)
    os.close(slave)
    out = b""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            chunk = os.read(master, 65536)
        except OSError:
            break
        if not chunk:
            break
        out += chunk
    os.close(master)
    assert proc.wait(30) == 0
    text = out.decode()
    assert "\x1b[2K" in text  # redrawn in place
    assert f"greet {run_id}" in text
    assert "run    [" + "#" * 30 + "] 100%" in text
    assert "stage  [" + "#" * 30 + "] 100%  prepare" in text
    assert "status completed" in text and "last message: shouted" in text


def test_read_only_commands_do_not_create_a_log(db_url: str) -> None:
    """On a SQLite file that does not exist (Postgres: a database without durable tables),
    every command but ``worker`` and ``start`` refuses with exit 6 and creates nothing."""
    db = ["--database", db_url]
    commands = [
        ["runs", "list"],
        ["runs", "show", "r"],
        ["runs", "events", "r"],
        ["runs", "watch", "r"],
        ["runs", "export", "r"],
        ["stats"],
        ["cancel", "r"],
        ["resume", "r"],
        ["signal", "r", "go"],
        ["replay", "r", "--app", "cliapp:app"],
        ["prune", "--keep-completed", "1"],
        ["workers"],
    ]
    words = "no durable log" if db_url.startswith("sqlite") else "holds no durable log"
    for command, r in zip(commands, run_all(*[[*db, *c] for c in commands]), strict=True):
        assert r.returncode == 6, (command, r.stderr)
        one_line_error(r, 6, words)
    if db_url.startswith("sqlite"):
        assert not Path(db_url[len("sqlite:///") :]).exists()
    assert durable_cli(*db, "start", "waits", "--id", "r").returncode == 0  # start creates it
    assert [r["id"] for r in ok_json(*db, "runs", "list")] == ["r"]


def test_bad_option_values_are_usage_errors(tmp_path: Path) -> None:
    db = ["--database", f"sqlite:///{tmp_path}/never.db"]
    expected = [
        (["stats", "--window", "0"], "--window: must be a duration above 0"),
        (["prune", "--keep-completed", "-1"], "--keep-completed: must be 0 or more"),
        (["runs", "watch", "r", "--interval", "-1"], "--interval: must be a number above 0"),
        (["runs", "list", "--limit", "-5"], "--limit: must be 1 or more"),
    ]
    for (_, words), r in zip(expected, run_all(*[[*db, *c] for c, _ in expected]), strict=True):
        assert r.returncode == 2, r.stderr
        assert words in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "never.db").exists()


def test_cancel_and_resume_say_when_a_run_had_finished(db_url: str) -> None:
    (run_id,) = _completed_greets(db_url, 1)
    db = ["--database", db_url]
    cancel, resume, listed = run_all(
        [*db, "cancel", run_id], [*db, "resume", run_id], ["runs", *db, "list"]
    )
    assert cancel.returncode == 0
    assert (
        cancel.stdout.strip() == f"{run_id} (greet) had already finished (completed): left as it is"
    )
    assert resume.returncode == 0
    assert resume.stdout.strip() == f"{run_id} (greet) is already completed: left as it is"
    assert listed.returncode == 0 and run_id in listed.stdout  # `runs --database URL list`
    assert ok_json(*db, "runs", "show", run_id)["run"]["status"] == "completed"


def test_workers_lists_the_live_workers_and_runs_show_says_when_there_is_none(
    db_url: str, processes: Processes
) -> None:
    db = ["--database", db_url]
    durable_cli(*db, "start", "greet", '["x"]', "--id", "early")
    shown = durable_cli(*db, "runs", "show", "early")
    assert "no live worker registers its workflow" in shown.stdout, shown.stdout
    assert ok_json(*db, "runs", "show", "early")["no_live_worker"] is True
    r = durable_cli(*db, "workers")
    assert (r.returncode, r.stdout.strip()) == (0, "no live worker")
    assert ok_json(*db, "workers") == []

    argv = [*COMMAND, *db, "worker", "cliapp:app", "--worker-id", "cli-w", "--queue", "default"]
    worker = processes.start(argv, name="worker", cwd=PROCS, separate_stderr=True)
    worker.wait_for(lambda: ok_json(*db, "workers"), 30, "the worker listed")
    [w] = ok_json(*db, "workers")
    assert (w["id"], w["pid"], w["queues"], w["version"]) == (
        "cli-w",
        worker.pid,
        ["default"],
        cliapp.make_app().version,  # the fingerprint of the same code, in the worker
    )
    assert {"greet", "fails"} <= set(w["workflows"])
    assert w["started_at"] <= w["last_seen"] and isinstance(w["running"], list)
    table = durable_cli(*db, "workers")
    headers = ["ID", "HOST", "PID", "QUEUES", "WORKFLOWS", "VERSION", "RUNNING", "STARTED", "SEEN"]
    assert table.returncode == 0 and table.stdout.split()[:9] == headers
    assert "cli-w" in table.stdout
    with durable.Client(db_url) as client:
        client.result("early", timeout=30)
    assert ok_json(*db, "runs", "show", "early")["no_live_worker"] is False
    assert worker.terminate(timeout=60) == 0, worker.describe()
    assert ok_json(*db, "workers") == []


def test_start_with_run_options_and_list_shows_progress(db_url: str, worker: Proc) -> None:
    db = ["--database", db_url]
    ok_json(*db, "start", "fails", "1", "--id", "r-1", "--retries", "1", "--run-timeout", "1h")
    r = durable_cli(*db, "start", "fails", "2", "--id", "r-0", "--retries", "0", "--wait")
    assert r.returncode == 1, r.stderr
    with durable.Client(db_url) as client:
        with pytest.raises(durable.RunFailedError):
            client.result("r-1", timeout=60)
        # one retry of the workflow code: the second attempt failed for good
        assert client.get("r-1").info().attempt == 2
        assert client.get("r-0").info().attempt == 1
        assert client._store.get_run("r-1").timeout == 3600.0
    table = durable_cli(*db, "runs", "list")
    assert table.returncode == 0
    assert table.stdout.split()[:9] == [
        "ID",
        "WORKFLOW",
        "STATUS",
        "QUEUE",
        "ATTEMPT",
        "VERSION",
        "PROGRESS",
        "ETA",
        "DOING",
    ]
    listed = {x["id"]: x for x in ok_json(*db, "runs", "list")}
    assert listed["r-1"]["progress"] == 0.0 and listed["r-1"]["eta"] is None
    bad = durable_cli(*db, "start", "fails", "1", "--retries", "-1")
    assert bad.returncode == 2 and "--retries" in bad.stderr
    one_line_error(durable_cli(*db, "start", "fails", "1", "--run-timeout", "0"), 2, "timeout")
    assert worker.terminate(timeout=60) == 0, worker.describe()
