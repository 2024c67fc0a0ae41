"""Step bodies in the worker's process pool (``executor="process"``), on SQLite and Postgres.

A worker process (``procs/poolapp.py``) executes the runs; the test process starts and
cancels them through the public client. The bodies leave marker files and return the id of
the process they ran in; the journal, read through the client, says what was recorded.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from harness.processes import Proc, Processes, run, wait_for
from markers import check_log, types, wait_ended, wait_marker
from procs.poolapp import make_app

import durable
from durable import CancelOutcome, Status

pytestmark = [
    pytest.mark.timeout(120),
    pytest.mark.skipif(sys.platform == "win32", reason="needs POSIX signals"),
]

HERE = Path(__file__).resolve().parent
WORKER = HERE / "procs" / "poolapp.py"
EXAMPLES = HERE.parent.parent / "examples"
SCRIPT = Path(sys.executable).parent / "durable"
COMMAND = [str(SCRIPT)] if SCRIPT.exists() else [sys.executable, "-m", "durable.cli"]


@pytest.fixture
def client(db_url: str) -> Iterator[durable.Client]:
    app = make_app(db_url)
    yield app.client()
    app.close()


def start_worker(
    processes: Processes,
    db_url: str,
    *,
    grace: float = 10.0,
    pool: int = 2,
    concurrency: int = 4,
    lease: float = 30.0,
    drain: float = 5.0,
) -> Proc:
    args = (grace, pool, concurrency, lease, drain)
    return processes.python(WORKER, db_url, *args, name="worker")


def test_bodies_run_at_once_in_other_processes(
    db_url: str, processes: Processes, client: durable.Client, tmp_path: Path
) -> None:
    worker = start_worker(processes, db_url)
    h = client.start("parallel", str(tmp_path))
    out = h.result(timeout=60)
    # Each waited for the other: they ran at the same time, in two processes of the pool,
    # neither of them the worker.
    assert out["a"]["met"] and out["b"]["met"]
    assert out["a"]["pid"] != out["b"]["pid"]
    assert worker.pid not in (out["a"]["pid"], out["b"]["pid"])
    assert out["worker"] == worker.pid
    worker.terminate()
    check_log(client)


def test_progress_messages_and_outputs_from_the_pool_are_journaled(
    db_url: str, processes: Processes, client: durable.Client, tmp_path: Path
) -> None:
    worker = start_worker(processes, db_url)
    h = client.start("reports", str(tmp_path))
    out = h.result(timeout=60)
    assert out["pid"] != worker.pid
    assert out["run"] == h.id and out["step"] == "report" and out["attempt"] == 1
    assert out["in_run"] is True
    events = h.events()
    progress = [e.data["value"] for e in events if e.type == "progress"]
    assert progress == [0.25, 1.0]
    messages = [e for e in events if e.type == "message"]
    assert [(m.name, m.data["text"], m.data["fields"]) for m in messages] == [
        ("report", "halfway", {"n": 2})
    ]
    assert messages[0].data["stage"] == "crunch"
    assert h.outputs()["crunch"]["report"]["answer"] == 42  # kept under its step
    worker.terminate()
    check_log(client)


def test_a_cancel_reaches_a_body_in_the_pool(
    db_url: str, processes: Processes, client: durable.Client, tmp_path: Path
) -> None:
    worker = start_worker(processes, db_url)
    h = client.start("cancel_me", str(tmp_path))
    pid = int(wait_marker(tmp_path, "started", worker))
    assert pid != worker.pid
    assert client.cancel(h.id) is CancelOutcome.REQUESTED
    assert int(wait_marker(tmp_path, "saw-cancel", worker)) == pid
    assert wait_ended(client, h.id, worker) is Status.CANCELLED
    events = h.events()
    assert types(events)[-1] == "run_cancelled"
    assert h.outputs()["main"]["until_cancelled"]["stopped"] is True  # kept after the cancel
    assert [e.name for e in events if e.type == "step_completed"] == ["until_cancelled"]
    assert not (tmp_path / "after-ran").exists()
    worker.terminate()
    check_log(client)


def test_a_body_in_the_pool_is_told_when_the_drain_time_is_up(
    db_url: str, processes: Processes, client: durable.Client, tmp_path: Path
) -> None:
    worker = start_worker(processes, db_url, drain=0.5)
    h = client.start("cancel_me", str(tmp_path))
    pid = int(wait_marker(tmp_path, "started", worker))
    assert worker.terminate() == 0
    assert int((tmp_path / "saw-cancel").read_text()) == pid  # before the worker exited
    # The run was handed back, not ended: another worker runs the step again.
    assert not h.status().is_terminal
    (tmp_path / "started").unlink()
    again = start_worker(processes, db_url)
    wait_marker(tmp_path, "started", again)
    assert client.cancel(h.id) is CancelOutcome.REQUESTED
    assert wait_ended(client, h.id, again) is Status.CANCELLED
    again.terminate()
    check_log(client)


def test_a_body_that_ignores_the_cancel_loses_its_process_after_the_grace(
    db_url: str, processes: Processes, client: durable.Client, tmp_path: Path
) -> None:
    worker = start_worker(processes, db_url, grace=1.0, pool=1)
    h = client.start("ignores", str(tmp_path))
    pid = int(wait_marker(tmp_path, "started", worker))
    assert client.cancel(h.id) is CancelOutcome.REQUESTED
    assert wait_ended(client, h.id, worker) is Status.CANCELLED
    events = h.events()
    assert types(events)[-1] == "run_cancelled"
    assert "step_completed" not in types(events) and "step_failed" not in types(events)
    # Its process was terminated and is replaced: the next body runs in a new one.
    h2 = client.start("echo", "again")
    assert h2.result(timeout=60) == "again"
    h3 = client.start("reports", str(tmp_path))
    assert h3.result(timeout=60)["pid"] != pid
    assert not (tmp_path / "late-done").exists() and not (tmp_path / "after-ran").exists()
    worker.terminate()
    check_log(client)


def test_a_body_past_its_timeout_is_told_and_the_step_fails(
    db_url: str, processes: Processes, client: durable.Client, tmp_path: Path
) -> None:
    worker = start_worker(processes, db_url)
    h = client.start("times_out", str(tmp_path))
    wait_marker(tmp_path, "saw-cancel", worker)
    assert wait_ended(client, h.id, worker) is Status.FAILED
    with pytest.raises(durable.RunFailedError) as err:
        h.result(timeout=5)
    assert err.value.error_type == "TimeoutError"
    assert "timed out after 1.0s" in err.value.error_message
    worker.terminate()
    check_log(client)


def test_a_killed_pool_process_fails_that_attempt_only_and_the_retry_succeeds(
    db_url: str, processes: Processes, client: durable.Client, tmp_path: Path
) -> None:
    worker = start_worker(processes, db_url)
    h = client.start("crash", str(tmp_path))
    out = h.result(timeout=60)
    killed = int((tmp_path / "victim-1").read_text())
    # The bystander, in another pool process, saw the victim's process die and went on.
    assert out["bystander"]["victim"] == killed and out["bystander"]["victim_gone"] is True
    assert out["bystander"]["pid"] != killed
    assert out["victim"] != killed  # the retry ran in a new process
    events = h.events()
    failed = [e for e in events if e.type == "step_failed"]
    assert [(e.name, e.attempt) for e in failed] == [("victim", 1)]
    assert failed[0].data["error"]["type"] == "PoolProcessDiedError"
    assert "killed by signal 9" in failed[0].data["error"]["message"]
    started = [(e.name, e.attempt) for e in events if e.type == "step_started"]
    assert started.count(("bystander", 1)) == 1 and ("bystander", 2) not in started
    worker.terminate()
    check_log(client)


def test_a_pool_process_that_exits_fails_the_step_with_a_clear_error(
    db_url: str, processes: Processes, client: durable.Client, tmp_path: Path
) -> None:
    worker = start_worker(processes, db_url)
    h = client.start("exits", str(tmp_path))
    with pytest.raises(durable.RunFailedError) as err:
        h.result(timeout=60)
    assert err.value.error_type == "PoolProcessDiedError"
    assert "exit code 7" in err.value.error_message
    assert client.start("echo", [1, 2]).result(timeout=60) == [1, 2]  # the pool goes on
    worker.terminate()
    check_log(client)


@pytest.mark.parametrize(
    ("workflow", "error_type", "says"),
    [
        ("renamed", "PermanentError", "cannot be imported there"),
        ("bad_result", "SerializationError", "cannot encode result of step 'bad_result'"),
        ("bad_argument", "SerializationError", "cannot encode arguments of step 'echo'"),
        ("resource", "ResourceError", "runs in the process pool (executor='process')"),
    ],
)
def test_bad_input_to_the_pool_fails_the_run_with_a_clear_error(
    db_url: str,
    processes: Processes,
    client: durable.Client,
    tmp_path: Path,
    workflow: str,
    error_type: str,
    says: str,
) -> None:
    worker = start_worker(processes, db_url)
    h = client.start(workflow, str(tmp_path))
    with pytest.raises(durable.RunFailedError) as err:
        h.result(timeout=60)
    assert err.value.error_type == error_type
    assert says in err.value.error_message
    assert "Traceback" not in err.value.error_message
    failed = [e for e in h.events() if e.type == "step_failed"]
    assert len(failed) == 1 and failed[0].data["retryable"] is False
    worker.terminate()
    check_log(client)


def test_runs_waiting_for_a_pool_process_are_bounded_and_keep_their_leases(
    db_url: str, processes: Processes, client: durable.Client, tmp_path: Path
) -> None:
    worker = start_worker(processes, db_url, pool=1, concurrency=2, lease=1.0)
    handles = [client.start("waits", str(tmp_path), i) for i in range(5)]

    def running() -> list[str]:
        return [h.id for h in handles if h.status() is Status.RUNNING]

    wait_for(lambda: len(running()) == 2 and len(list(tmp_path.glob("run-*"))) == 1, 30, "2 runs")
    holding = running()
    # Several lease timeouts later: the same two runs, one in the pool's only process and
    # one waiting for it, both still held (heartbeats go on); the other three not leased.
    time.sleep(3.0)
    assert running() == holding
    assert len(list(tmp_path.glob("run-*"))) == 1
    assert sum(h.status() is Status.PENDING for h in handles) == 3
    (tmp_path / "go").write_text("")
    assert sorted(h.result(timeout=60) for h in handles) == [0, 1, 2, 3, 4]
    for h in handles:  # each body ran once: no lease was lost, no step run again
        assert [e.attempt for e in h.events() if e.type == "step_started"] == [1]
    worker.terminate()
    check_log(client)


def test_the_command_line_worker_sizes_its_pool(db_url: str, processes: Processes) -> None:
    argv = [*COMMAND, "--database", db_url, "worker", "cpu_pool:app", "--processes", "1"]
    worker = processes.start(argv, name="worker", cwd=EXAMPLES, separate_stderr=True)
    start = [*COMMAND, "--database", db_url, "start", "mandelbrot", "[3, 24]", "--wait", "--json"]
    done = run(start, timeout=120)
    assert done.returncode == 0, done.describe()
    out = json.loads(done.stdout)["result"]
    pids = {t["pid"] for t in out["tiles"]}
    assert len(pids) == 1 and worker.pid not in pids  # one pool process ran every tile
    worker.terminate()


# ---------------------------------------------------------------- at definition time


def _top_level(x: int) -> int:
    return x


def test_what_the_pool_cannot_import_is_refused_when_the_step_is_defined(
    tmp_path: Path,
) -> None:
    app = durable.App("defs", database=f"sqlite:///{tmp_path / 'defs.db'}")

    def nested(x: int) -> int:
        return x

    with pytest.raises(ValueError, match="a lambda or a function defined inside another"):
        app.step(executor="process")(nested)
    with pytest.raises(ValueError, match="a lambda or a function defined inside another"):
        app.step(name="l", executor="process")(lambda x: x)
    with pytest.raises(ValueError, match=r"unknown executor 'processes' \(one of 'loop'"):
        app.step(executor="processes")(_top_level)

    async def coro() -> None:
        return None

    with pytest.raises(ValueError, match="an async def, which runs on the worker's loop"):
        app.step(name="c", executor="process")(coro)
    with pytest.raises(ValueError, match="executor='loop' takes an async def"):
        app.step(executor="loop")(_top_level)
    assert app.step(executor="process")(_top_level)(3) == 3  # outside a run: a plain call
    with pytest.raises(ValueError, match="processes must be at least 1"), app.worker(processes=0):
        pass
    for bad in ("2", True, 1.5):
        with (
            pytest.raises(TypeError, match="processes must be an int"),
            app.worker(processes=bad),  # type: ignore[arg-type]
        ):
            pass
    app.close()


def test_a_script_that_starts_its_worker_unguarded_fails_fast_and_says_why(
    db_url: str, processes: Processes
) -> None:
    script = HERE / "procs" / "unguarded.py"
    done = processes.python(script, db_url, separate_stderr=True).result(timeout=90)
    assert done.returncode == 0, done.describe()
    assert "failed: PoolProcessDiedError" in done.stdout, done.describe()
    assert 'Start the worker (and the runs) under `if __name__ == "__main__":`' in done.stderr
    app = durable.App("unguarded", database=db_url)
    assert len(app.client().list_runs()) == 1  # no run started by the pool's import
    app.close()
