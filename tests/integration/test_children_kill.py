"""A parent killed with SIGKILL after ``durable.start_child`` and taken over by a worker of
another process starts no second child, on every backend.

The first worker serves only the parent's queue, so the child waits, pending, for the
second one: whatever the first process did before it died, the child's body can only run
in the second, and its log says how often it ran.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from harness.processes import Processes, wait_for

import durable

HERE = Path(__file__).resolve().parent
APP = HERE / "procs" / "childrenapp.py"
LEASE = 2.0


def _exists(client: durable.Client, run_id: str) -> bool:
    try:
        client.get(run_id)
    except durable.RunNotFoundError:
        return False
    return True


@pytest.mark.timeout(120)
@pytest.mark.skipif(sys.platform == "win32", reason="needs POSIX signals")
def test_a_parent_killed_after_start_child_starts_it_once(
    db_url: str, tmp_path: Path, processes: Processes
) -> None:
    fx = tmp_path / "fx"
    fx.mkdir()
    client = durable.Client(db_url)
    try:
        h = client.start("parent", str(fx), 21)
        first = processes.python(APP, db_url, "first", LEASE, "default", name="first")
        first.wait_for_output("READY", timeout=30)
        kid_id = f"{h.id}:1"
        wait_for(lambda: list(fx.glob("holding.*")), 30, "the parent to hold after the start")
        # The start is appended without waiting: the body after it may begin first.
        wait_for(lambda: _exists(client, kid_id), 30, "the child's row")
        assert client.get(kid_id).status() is durable.Status.PENDING  # nobody serves "kids"
        first.kill()

        (fx / "go").write_text("")
        second = processes.python(APP, db_url, "second", LEASE, "default", "kids", name="second")
        second.wait_for_output("READY", timeout=30)
        assert h.result(timeout=60) == [kid_id, "held", 42]
        second.terminate()
    finally:
        client.close()

    check = durable.Client(db_url)
    try:
        kids = [r for r in check.list_runs(limit=100) if r.parent_id == h.id]
        assert [k.id for k in kids] == [kid_id]
        assert [e.type for e in check.events(kid_id)].count("run_started") == 1
        assert [e.type for e in check.events(h.id)].count("child_started") == 1
        runs_of_body = (fx / "kid.log").read_text().splitlines()
        assert [line.split()[1] for line in runs_of_body] == [kid_id]
        # The parent's step ran in both processes (at least once); the takeover is journaled.
        assert len(list(fx.glob("holding.*"))) == 2
        takeovers = [e for e in check.events(h.id) if e.type == "lease_taken"]
        assert any(e.data.get("takeover") for e in takeovers)
    finally:
        check.close()
