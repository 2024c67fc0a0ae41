"""The deploy story of docs/versioning.md, played with real worker processes on both backends.

Runs start under ``v1`` and sleep; ``v1``'s worker stops; ``v2`` (an incompatible change,
no patch) parks every one of them ``BLOCKED``, not failed, and never takes them again
itself; ``v3`` (the same change behind ``durable.patched``) takes them up by itself at its
start and finishes them all on the old branch, while a new run takes the new branch. The
command line shows the blocked runs, and ``durable check`` says before each deploy which
code would block them and which would not. Each deploy's version is the default fingerprint of its
code, computed in the worker process and here alike.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from harness.processes import Proc, Processes, run

import durable

PROCS = Path(__file__).resolve().parent / "procs"
sys.path.insert(0, str(PROCS))
import deployapp  # noqa: E402

SCRIPT = Path(sys.executable).parent / "durable"
COMMAND = [str(SCRIPT)] if SCRIPT.exists() else [sys.executable, "-m", "durable.cli"]
SLEEP = 1.0
RUNS = 6

pytestmark = pytest.mark.timeout(180)


@pytest.fixture
def apps(db_url: str) -> Iterator[dict[str, durable.App]]:
    """The three deploys' Apps in this process (a client of each; no worker here)."""
    made = {code: deployapp.make_app(code, db_url) for code in ("v1", "v2", "v3")}
    yield made
    for app in made.values():
        app.close()


def worker(processes: Processes, db_url: str, code: str) -> Proc:
    argv = [*COMMAND, "--database", db_url, "worker", "deployapp:app", "--concurrency", "8"]
    env = {"DEPLOY_CODE": code, "DEPLOY_SLEEP": str(SLEEP)}
    return processes.start(argv, name=f"worker-{code}", cwd=PROCS, env=env)


def cli(db_url: str, *args: str) -> Any:
    r = run([*COMMAND, "--database", db_url, *args, "--json"], cwd=PROCS, timeout=60)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def check(db_url: str, code: str) -> tuple[int, Any]:
    """``durable check --app deployapp:app --json`` with deploy ``code``: its exit code and
    its report."""
    argv = [*COMMAND, "--database", db_url, "check", "--app", "deployapp:app", "--json"]
    r = run(argv, cwd=PROCS, env={"DEPLOY_CODE": code, "DEPLOY_SLEEP": str(SLEEP)}, timeout=60)
    assert r.returncode in (0, 5), r.describe()
    return r.returncode, json.loads(r.stdout)


def statuses(client: durable.Client, ids: list[str]) -> set[durable.Status]:
    return {client.get(i).status() for i in ids}


def wait_all(
    client: durable.Client, ids: list[str], status: durable.Status, timeout: float
) -> None:
    deadline = time.monotonic() + timeout
    while statuses(client, ids) != {status}:
        seen = statuses(client, ids)
        assert durable.Status.FAILED not in seen, [client.get(i).info() for i in ids]
        assert time.monotonic() < deadline, f"not all {status}: {seen}"
        time.sleep(0.05)


def count(client: durable.Client, run_id: str, type_: str) -> int:
    return sum(1 for e in client.get(run_id).events() if e.type == type_)


def test_an_incompatible_deploy_parks_runs_and_a_patched_one_heals_them(
    db_url: str, processes: Processes, apps: dict[str, durable.App]
) -> None:
    v1, v2, v3 = (apps[c].version for c in ("v1", "v2", "v3"))
    assert len({v1, v2, v3}) == 3
    client = apps["v1"].client()
    ids = [client.start("order", n).id for n in range(RUNS)]
    assert {client.get(i).info().version for i in ids} == {v1}

    first = worker(processes, db_url, "v1")
    wait_all(client, ids, durable.Status.SLEEPING, 60)
    first.terminate()

    # Before deploying v2, `durable check` with its code says that every sleeping run would
    # be parked, where and why; with v3's code, that it replays them all.
    code, report = check(db_url, "v2")
    assert code == 5 and report["ok"] is False and report["version"] == v2
    assert sorted(r["run_id"] for r in report["runs"] if r["outcome"] == "blocks") == sorted(ids)
    assert {(r["position"], r["called"], r["recorded"], r["version"]) for r in report["runs"]} == {
        (2, "step 'fraud'", "sleep", v1)
    }
    code, report = check(db_url, "v3")
    assert code == 0 and report["ok"] is True and len(report["runs"]) == RUNS

    second = worker(processes, db_url, "v2")
    wait_all(client, ids, durable.Status.BLOCKED, 60)
    for i in ids:
        info = client.get(i).info()
        assert info.error_type == "NonDeterminismError"
        assert info.blocked_version == v2  # the fingerprint of the same code, in the worker
        blocked = client.get(i).events()[-1]
        assert blocked.type == "run_blocked"
        assert blocked.data["position"] == 2
        assert blocked.data["called"] == "step 'fraud'"
        assert blocked.data["recorded"] == "sleep"
        assert blocked.data["version"] == v2
    # The same version never takes them again by itself (its heartbeats run every second).
    time.sleep(3.5)
    assert statuses(client, ids) == {durable.Status.BLOCKED}
    assert {count(client, i, "run_blocked") for i in ids} == {1}
    workers = client.workers()
    assert [w.version for w in workers] == [v2]
    assert [w.running for w in workers] == [()]  # blocked runs hold no worker

    listed = cli(db_url, "runs", "list", "--status", "blocked")
    assert sorted(r["id"] for r in listed) == sorted(ids)
    assert {r["blocked_version"] for r in listed} == {v2}
    shown = run([*COMMAND, "--database", db_url, "runs", "show", ids[0]], cwd=PROCS)
    assert shown.returncode == 0, shown.stderr
    assert "blocked" in shown.stdout and "NonDeterminismError" in shown.stdout
    assert f"another code version than '{v2}'" in shown.stdout
    assert f"version:         {v1}" in shown.stdout
    second.terminate()
    code, report = check(db_url, "v3")  # v3 would take them up and replay them
    assert code == 0 and {r["status"] for r in report["runs"]} == {"blocked"}

    worker(processes, db_url, "v3")
    for n, i in enumerate(ids):
        assert client.get(i).result(timeout=60) == f"charged {n + 1}"  # the old branch
        assert count(client, i, "run_unblocked") == 1
        assert count(client, i, "patch_marked") == 0
    fresh = apps["v3"].client().start("order", 4)
    assert fresh.result(timeout=60) == "charged 50"  # the new branch
    assert fresh.info().version == v3
    assert count(apps["v3"].client(), fresh.id, "patch_marked") == 1
    assert not [r for r in client.list_runs(limit=100) if r.status is durable.Status.FAILED]
