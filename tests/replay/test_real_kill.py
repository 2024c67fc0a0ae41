"""A real process, really killed: a rich workflow shape under SIGKILL at random moments.

The worker runs in a subprocess (this file run as a script) on a shape of
``test_crash_hypothesis``; the test SIGKILLs it a few times at random instants, restarts it
under the same ``worker_id`` (which reclaims the run at once), and finally lets it finish.
Then the same model and journal checks as the in-process crashes apply; step bodies append
one line per execution to a file, so executions can be counted across processes.
"""

from __future__ import annotations

import json
import os
import random
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from harness.processes import TESTS, Proc, Processes

HERE = Path(__file__).resolve().parent

# stage, steps, a flaky step, values fed into steps, sleeps, a caught failure, a child.
RAW_SHAPE: list[Any] = [
    ["stage", {}, [["step", {"async_body": False}, []], ["value", {"vkind": "random"}, []]]],
    ["step", {"async_body": True}, []],
    ["flaky", {"async_body": False, "k": 2, "extra": 0, "delay": 0.05}, []],
    ["sleep", {"delay": 0.1}, []],
    ["value", {"vkind": "uuid4"}, []],
    ["fail", {"async_body": False, "mode": "value"}, []],
    ["child", {}, []],
    ["stage", {}, [["value", {"vkind": "now"}, []], ["step", {"async_body": False}, []]]],
    ["sleep", {"delay": 0.1}, []],
    ["step", {"async_body": True}, []],
]
SLOW_STEP = 0.05  # seconds every step body sleeps, so that kills land inside bodies


def _shape(is_async: bool) -> Any:
    import itertools

    from test_crash_hypothesis import _number

    raw = [tuple(op) for op in RAW_SHAPE]
    fixed = [(k, p, [tuple(c) for c in kids]) for k, p, kids in raw]
    return _number(fixed, itertools.count(1))


def worker_main(url: str, is_async: bool, log_path: str) -> None:
    """The subprocess: the shape's App, a worker under a fixed identity, until SIGTERM."""
    import test_crash_hypothesis as h

    class FileTracker(h.Tracker):
        def __init__(self) -> None:
            super().__init__()
            self.f = open(log_path, "a", buffering=1)  # noqa: SIM115 - lives as long as us

        def body(self, run_id: str, pos: int, attempt: int) -> None:
            self.f.write(f"{os.getpid()} {run_id} {pos} {attempt}\n")
            time.sleep(SLOW_STEP)

    built = h.build(_shape(is_async), is_async, url, FileTracker())
    print("READY", flush=True)
    built.app.run_worker(worker_id="killed-worker", concurrency=4, drain_timeout=5)


def start_worker(processes: Processes, url: str, is_async: bool, log_path: Path, name: str) -> Proc:
    """This file run as a worker process (``worker_main``)."""
    mode = "async" if is_async else "sync"
    return processes.python(__file__, url, mode, log_path, name=name, path=[HERE, TESTS])


@pytest.mark.timeout(120)
@pytest.mark.skipif(sys.platform == "win32", reason="needs POSIX signals")
@pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
def test_sigkill_at_random_moments(tmp_path: Path, is_async: bool, processes: Processes) -> None:
    import test_crash_hypothesis as h

    ops = _shape(is_async)
    url = f"sqlite:///{tmp_path}/log.db"
    log_path = tmp_path / "bodies.txt"
    log_path.touch()
    built = h.build(ops, is_async, url, h.Tracker())
    rng = random.Random(int.from_bytes(os.urandom(4), "big"))
    kills = 0
    try:
        client = built.app.client()
        x = rng.randrange(1000)
        run_id = client.start(built.workflow, x).id
        for i in range(4):
            proc = start_worker(processes, url, is_async, log_path, f"worker{i}")
            proc.wait_for_output("READY", timeout=30)
            time.sleep(rng.uniform(0.02, 0.5))
            status = built.real.get_run(run_id)
            proc.kill()
            kills += 1
            if status is not None and status.status == "completed":
                break
        proc = start_worker(processes, url, is_async, log_path, "final")
        try:
            deadline = time.monotonic() + 60
            while True:
                row = built.real.get_run(run_id)
                assert row is not None
                if row.status in h.TERMINAL:
                    break
                assert time.monotonic() < deadline, f"run still {row.status}"
                time.sleep(0.05)
        finally:
            proc.terminate(timeout=20)
        assert row.status == "completed", (row.status, row.error_type, row.error_message)
        h.check_run(built, run_id, ops, x, h._has_par(ops))

        lines = [ln.split() for ln in log_path.read_text().splitlines() if ln.strip()]
        ran: dict[tuple[str, int], int] = {}
        for _pid, rid, pos, _att in lines:
            ran[(rid, int(pos))] = ran.get((rid, int(pos)), 0) + 1
        for rid in {rid for rid, _ in ran} | {run_id}:
            tries: dict[int, int] = {}
            for r in built.real.read_journal(rid):
                if r.type in ("step_completed", "step_failed") and r.position is not None:
                    tries[r.position] = tries.get(r.position, 0) + 1
            for pos, n in tries.items():
                count = ran.get((rid, pos), 0)
                assert n <= count <= n + kills, (rid, pos, n, count, kills, json.dumps(lines))
    finally:
        built.app.close()


if __name__ == "__main__":
    worker_main(sys.argv[1], sys.argv[2] == "async", sys.argv[3])
