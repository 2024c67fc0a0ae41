"""Cancellation that reaches running code, across processes, on SQLite and Postgres.

A worker process (``procs/cancelapp.py``) executes the run; the test process cancels it
through the public client, so the worker can learn of it only by the log's push (a Postgres
``NOTIFY``, a SQLite FIFO wake-up). The step bodies leave marker files; the journal, read
through the client, says what was kept.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from harness.processes import Proc, Processes, run, wait_for
from markers import check_log, types, wait_ended, wait_marker
from procs.cancelapp import make_app

import durable
from durable import CancelOutcome, Status

pytestmark = [
    pytest.mark.timeout(120),
    pytest.mark.skipif(sys.platform == "win32", reason="needs POSIX signals and FIFOs"),
]

HERE = Path(__file__).resolve().parent
WORKER = HERE / "procs" / "cancelapp.py"


@pytest.fixture
def client(db_url: str) -> Iterator[durable.Client]:
    app = make_app(db_url)
    yield app.client()
    app.close()


def start_worker(
    processes: Processes, db_url: str, grace: float = 10.0, drain: float = 10.0
) -> Proc:
    return processes.python(WORKER, db_url, grace, drain, name="worker")


def marker(directory: Path, name: str) -> Path:
    return directory / name


# ---------------------------------------------------------------- a running step is told


def test_a_sync_body_sees_cancelled_and_what_it_recorded_is_kept(
    db_url: str, processes: Processes, client: durable.Client, tmp_path: Path
) -> None:
    worker = start_worker(processes, db_url)
    h = client.start("fetch", str(tmp_path))
    wait_marker(tmp_path, "page-3", worker)
    assert client.cancel(h.id) is CancelOutcome.REQUESTED
    wait_marker(tmp_path, "saw-cancel", worker)
    assert wait_ended(client, h.id, worker) is Status.CANCELLED
    with pytest.raises(durable.RunCancelledError):
        h.result(timeout=5)
    events = h.events()
    assert types(events)[-1] == "run_cancelled"
    # What the body recorded before it returned is kept: every page, its message, its
    # progress, and its result (it returned: the step completed).
    fetched = sorted(int(p.name.split("-")[1]) for p in tmp_path.glob("page-*"))
    outputs = h.outputs()["main"]["pages"]  # the step call's own keys, and its result
    assert [outputs[f"page-{i}"] for i in fetched] == fetched
    assert outputs["result"] == len(fetched)
    stopping = [e for e in events if e.type == "message"]
    assert stopping and stopping[0].data["fields"] == {"pages": len(fetched)}
    done = [e for e in events if e.type == "step_completed"]
    assert [e.name for e in done] == ["pages"]
    assert not marker(tmp_path, "after-ran").exists()  # the next step never ran
    assert client.cancel(h.id) is CancelOutcome.FINISHED  # a second cancel says so
    worker.terminate()
    check_log(client)


def test_an_async_body_gets_cancelled_error_and_its_cleanup_is_kept(
    db_url: str, processes: Processes, client: durable.Client, tmp_path: Path
) -> None:
    worker = start_worker(processes, db_url)
    h = client.start("fetch_async", str(tmp_path))
    wait_marker(tmp_path, "started", worker)
    wait_for(lambda: h.status() is Status.RUNNING, 10, "running")
    assert client.cancel(h.id) is CancelOutcome.REQUESTED
    wait_marker(tmp_path, "saw-cancel", worker)
    assert wait_ended(client, h.id, worker) is Status.CANCELLED
    assert h.outputs()["main"] == {"pages_async": {"cleaned-up": True}}
    events = h.events()
    assert types(events)[-1] == "run_cancelled"
    assert "step_completed" not in types(events) and "step_failed" not in types(events)
    assert not marker(tmp_path, "after-ran").exists()
    worker.terminate()
    check_log(client)


def test_a_body_that_ignores_the_cancel_is_abandoned_after_the_grace(
    db_url: str, processes: Processes, client: durable.Client, tmp_path: Path
) -> None:
    worker = start_worker(processes, db_url, grace=1.0)
    h = client.start("ignores", str(tmp_path))
    wait_marker(tmp_path, "started", worker)
    assert client.cancel(h.id) is CancelOutcome.REQUESTED
    wait_marker(tmp_path, "saw-cancel", worker)
    # The body goes on; after the grace the worker ends the run without it.
    assert wait_ended(client, h.id, worker) is Status.CANCELLED
    assert not marker(tmp_path, "late-done").exists()
    (tmp_path / "go-on").write_text("")
    wait_marker(tmp_path, "late-done", worker)
    assert marker(tmp_path, "refused").exists()  # its write after the grace was refused
    events = h.events()
    assert types(events)[-1] == "run_cancelled"
    assert "output" not in types(events) and "step_completed" not in types(events)
    assert not marker(tmp_path, "after-ran").exists()
    # Resumed, the abandoned step runs again (it has no outcome).
    (tmp_path / "started").unlink()
    client.resume(h.id)
    wait_marker(tmp_path, "started", worker)
    client.cancel(h.id)
    assert wait_ended(client, h.id, worker) is Status.CANCELLED
    worker.terminate()
    check_log(client)


def test_workflow_code_sees_cancelled_and_stops_at_its_next_step(
    db_url: str, processes: Processes, client: durable.Client, tmp_path: Path
) -> None:
    worker = start_worker(processes, db_url)
    h = client.start("loops", str(tmp_path))
    wait_marker(tmp_path, "started", worker)
    assert client.cancel(h.id) is CancelOutcome.REQUESTED
    done = int(wait_marker(tmp_path, "workflow-saw-cancel", worker))
    assert wait_ended(client, h.id, worker) is Status.CANCELLED
    completed = [e for e in h.events() if e.type == "step_completed"]
    assert len(completed) in (done, done + 1)  # the step running at the cancel may finish
    assert not marker(tmp_path, "after-ran").exists()
    worker.terminate()
    check_log(client)


def test_the_command_line_says_that_it_asked_the_worker(
    db_url: str, processes: Processes, client: durable.Client, tmp_path: Path
) -> None:
    worker = start_worker(processes, db_url)
    h = client.start("fetch", str(tmp_path))
    wait_marker(tmp_path, "page-1", worker)
    cli = [sys.executable, "-m", "durable.cli", "--database", db_url, "cancel", h.id]
    asked = run(cli, cwd=tmp_path)
    assert asked.returncode == 0 and f"asked to stop {h.id}" in asked.stdout, asked.describe()
    assert wait_ended(client, h.id, worker) is Status.CANCELLED
    again = run(cli, cwd=tmp_path)
    assert again.returncode == 0 and "had already finished (cancelled)" in again.stdout
    worker.terminate()


# ---------------------------------------------------------------- no worker holds it


def test_a_run_that_no_worker_holds_ends_at_once(
    db_url: str, client: durable.Client, tmp_path: Path
) -> None:
    h = client.start("fetch", str(tmp_path))
    assert client.cancel(h.id) is CancelOutcome.CANCELLED
    assert h.status() is Status.CANCELLED
    assert client.cancel(h.id) is CancelOutcome.FINISHED
    with pytest.raises(durable.RunNotFoundError):
        client.cancel("no-such-run")


def test_a_request_whose_worker_died_is_carried_out_by_the_next_lease(
    db_url: str, processes: Processes, client: durable.Client, tmp_path: Path
) -> None:
    first = processes.python(WORKER, db_url, 10.0, name="first")
    h = client.start("ignores", str(tmp_path))
    wait_marker(tmp_path, "started", first)
    # SIGKILL: its lease is still live in the log, so the cancel is a request that nobody
    # hears. (Not SIGSTOP: a SQLite writer stopped inside a transaction would hold the
    # file's write lock, and the cancel would wait for it.)
    first.kill()
    assert client.cancel(h.id) is CancelOutcome.REQUESTED
    # The lease (the App's 30 s) is not waited for: a worker restarting on this host takes
    # over the dead process's runs at once, finds the request, and ends the run unrun.
    second = processes.python(WORKER, db_url, 10.0, name="second")
    assert wait_ended(client, h.id, second, timeout=60) is Status.CANCELLED
    assert not marker(tmp_path, "late-done").exists()
    second.terminate()
    check_log(client)


# ---------------------------------------------------------------- step timeout, drain


@pytest.mark.parametrize("workflow", ["times_out", "times_out_async"])
def test_a_body_whose_timeout_passed_is_told(
    db_url: str, processes: Processes, client: durable.Client, tmp_path: Path, workflow: str
) -> None:
    worker = start_worker(processes, db_url)
    h = client.start(workflow, str(tmp_path))
    assert h.result(timeout=30) == "timed out"
    if workflow == "times_out":
        wait_marker(tmp_path, "saw-cancel", worker)
    else:
        assert wait_marker(tmp_path, "async-saw-cancel", worker) == "True"
    worker.terminate()
    check_log(client)


def test_a_body_still_running_when_the_drain_time_is_up_is_told(
    db_url: str, processes: Processes, client: durable.Client, tmp_path: Path
) -> None:
    worker = start_worker(processes, db_url, drain=0.5)
    h = client.start("drains", str(tmp_path))
    wait_marker(tmp_path, "started", worker)
    worker.terminate()
    wait_marker(tmp_path, "saw-cancel", worker)  # it wrote it before the process exited
    # The run was handed back, not ended: another worker runs the step again.
    (tmp_path / "saw-cancel").unlink()
    again = start_worker(processes, db_url)
    wait_marker(tmp_path, "started", again)
    assert h.status() is Status.RUNNING
    assert client.cancel(h.id) is CancelOutcome.REQUESTED
    assert wait_ended(client, h.id, again) is Status.CANCELLED
    again.terminate()
    check_log(client)
