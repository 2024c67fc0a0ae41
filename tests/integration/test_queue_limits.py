"""Queue limits hold across worker processes: ``concurrency`` and ``rate_limit``."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pytest
from harness.processes import Proc, Processes

import durable
from durable import Status

PROCS = Path(__file__).parent / "procs"
sys.path.insert(0, str(PROCS))

from queued import CONCURRENCY, RATE, make_app  # noqa: E402


@pytest.fixture
def workers(db_url: str, tmp_path: Path, processes: Processes) -> tuple[list[Proc], Path]:
    """Three worker processes of ``procs/queued.py`` (killed when the test ends)."""
    rec = tmp_path / "records"
    rec.mkdir()
    make_app(db_url, str(rec)).client().close()  # create the schema before the race
    script = PROCS / "queued.py"
    procs = [
        processes.python(script, db_url, f"q{i}", rec, name=f"w{i}", path=[PROCS]) for i in range(3)
    ]
    return procs, rec


def _records(directory: Path) -> list[dict[str, float]]:
    out = []
    for f in directory.glob("*.jsonl"):
        out += [json.loads(line) for line in f.read_text().splitlines() if line]
    return out


def _max_overlap(records: list[dict[str, float]]) -> int:
    points = sorted([(r["start"], 1) for r in records] + [(r["end"], -1) for r in records])
    level = peak = 0
    for _, d in points:
        level += d
        peak = max(peak, level)
    return peak


def _drain(client: durable.Client, ids: list[str], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    for rid in ids:
        left = max(deadline - time.monotonic(), 0.1)
        assert client.get(rid).result(timeout=left) == "ok"


def test_a_limited_queue_never_runs_more_than_its_concurrency(db_url, workers):
    _procs, rec = workers
    client = durable.Client(db_url)
    try:
        ids = [client.start("limited", 0.3, queue="limited").id for _ in range(12)]
        _drain(client, ids, 60)
        records = _records(rec)
        assert len(records) == 12
        assert len({r["pid"] for r in records}) >= 2, "one worker did all the work"
        assert _max_overlap(records) <= CONCURRENCY
        assert all(client.get(i).status() == Status.COMPLETED for i in ids)
    finally:
        client.close()


def test_a_rate_limited_queue_starts_no_more_than_its_rate(db_url, workers):
    _procs, rec = workers
    client = durable.Client(db_url)
    n, per = RATE
    try:
        ids = [client.start("rated", 0.01, queue="rated").id for _ in range(7)]
        _drain(client, ids, 60)
        assert len(_records(rec)) == 7
        # A run starts when a worker first takes it: its first lease_taken, stamped by the
        # database's clock. No window of `per` seconds holds more than n of them.
        starts = sorted(
            next(e.at for e in client.get(i).events() if e.type == "lease_taken").timestamp()
            for i in ids
        )
        for i, t in enumerate(starts):
            in_window = [s for s in starts[i:] if s < t + per]
            assert len(in_window) <= n, starts
    finally:
        client.close()
