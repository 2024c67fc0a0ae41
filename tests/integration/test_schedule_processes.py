"""Schedules with real worker processes, on every backend: four processes fire the same
per-second ticks, and each tick has one run, executed once; one process killed, the others
go on without a gap; a pause from this process stops the ticks in all of them."""

from __future__ import annotations

import datetime as dt
import itertools
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from harness.processes import Processes, wait_for
from procs.wfapp import read_lines

import durable

pytestmark = [
    pytest.mark.timeout(120),
    pytest.mark.skipif(sys.platform == "win32", reason="needs POSIX signals"),
]

WORKER = Path(__file__).resolve().parent / "procs" / "schedworker.py"


def _ticks(fx: Path) -> list[dict[str, object]]:
    return read_lines(fx / "ticks.log")


def test_four_worker_processes_make_one_run_per_tick(
    db_url: str, fx: Path, processes: Processes, check: durable.Client
) -> None:
    workers = [processes.python(WORKER, db_url, fx, name=f"sched-{i}") for i in range(4)]
    for w in workers:
        w.wait_for_output("schedule worker pid=", 30)
    wait_for(lambda: len(_ticks(fx)) >= 4, 60, "four ticks executed", processes)
    workers[0].kill()  # a crash: the other three keep the schedule going
    seen = len(_ticks(fx))
    wait_for(lambda: len(_ticks(fx)) >= seen + 4, 60, "four more ticks", processes)

    check.pause_schedule("every-second")
    paused_at = dt.datetime.now(dt.UTC)
    time.sleep(2.5)  # runs started before the pause finish
    for w in workers[1:]:
        assert w.terminate() == 0, w.describe()

    lines = _ticks(fx)
    runs = [str(line["run"]) for line in lines]
    assert [r for r, n in Counter(runs).items() if n > 1] == []  # each body ran once
    ticks = sorted(dt.datetime.fromisoformat(str(line["tick"])) for line in lines)
    assert all(b - a == dt.timedelta(seconds=1) for a, b in itertools.pairwise(ticks))
    assert all(r == f"every-second:{t}" for r, t in ((x["run"], x["tick"]) for x in lines))
    assert ticks[-1] <= paused_at  # no tick after the pause started a run
    in_log = {r.id for r in check.list_runs(workflow="tick", limit=1000)}
    assert in_log == set(runs)  # every run of a tick was executed
