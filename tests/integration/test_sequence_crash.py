"""A sequence's handler runs once even when the worker process is killed with SIGKILL after
the handler's step committed and before the run ended: the next worker replays it from the
journal and ends the run (both backends; workers are ``procs/seqapp.py``)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from harness.processes import Processes
from procs.seqapp import make_app
from procs.wfapp import read_lines

import durable

pytestmark = [
    pytest.mark.timeout(90),
    pytest.mark.skipif(sys.platform == "win32", reason="needs POSIX signals"),
]

SCRIPT = Path(__file__).resolve().parent / "procs" / "seqapp.py"
LEASE = 1.5


@pytest.mark.parametrize("outcome", ["on_success", "on_error"])
def test_a_handler_runs_once_across_a_sigkill_after_its_step(
    outcome: str, db_url: str, tmp_path: Path, processes: Processes
) -> None:
    app = make_app(db_url, str(tmp_path), LEASE)
    try:
        client = app.client()
        handle = client.start("crash_seq", "fail" if outcome == "on_error" else "ok")

        victim = processes.python(SCRIPT, db_url, tmp_path, LEASE, "hang", name="victim")
        victim.wait_for_output("HANDLER COMMITTED", timeout=30)
        assert handle.status() == durable.Status.RUNNING  # the handler committed, not the end
        victim.kill()

        heir = processes.python(SCRIPT, db_url, tmp_path, LEASE, "run", name="heir")
        if outcome == "on_success":
            assert handle.result(timeout=30) == "OK"
        else:
            with pytest.raises(durable.RunFailedError) as caught:
                handle.result(timeout=30)
            assert caught.value.error_type == "PermanentError"
        heir.terminate()

        lines = read_lines(tmp_path / f"{outcome}.log")
        assert [line["pid"] for line in lines] == [victim.pid], lines
        assert lines[0]["arg"] == ("'OK'" if outcome == "on_success" else "'second'")
        other = "on_error" if outcome == "on_success" else "on_success"
        assert read_lines(tmp_path / f"{other}.log") == []
        done = [e for e in handle.events() if e.type == "step_completed"]
        assert [e.name for e in done].count(f"crash_seq.{outcome}") == 1
        taken = [e for e in handle.events() if e.type == "lease_taken"]
        assert len(taken) == 2, "the heir did not take the run over"
    finally:
        app.close()
