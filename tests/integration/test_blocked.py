"""Blocked runs, on both backends, with embedded workers: what parks a run, what it holds,
how it is taken up again (another version, ``resume``) and what never happens to it (a loop
under the same code, retention, ``result()`` returning)."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from harness.otel import OTel

import durable
from durable import Status
from durable.log import open_store

PROCS = Path(__file__).resolve().parent / "procs"
sys.path.insert(0, str(PROCS))
import deployapp  # noqa: E402

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(autouse=True)
def sleep(monkeypatch: pytest.MonkeyPatch) -> None:
    """The runs of ``deploys`` (tests/integration/conftest.py) sleep a fraction of a second."""
    monkeypatch.setattr(deployapp, "SLEEP", 0.3)


def sleeping_run(v1: durable.App, wait_status: Callable[..., None]) -> Any:
    client = v1.client()
    with v1.worker():
        h = client.start("order", 1)
        wait_status(h, Status.SLEEPING)
    return h


def blocked_under(app: durable.App, h: Any, wait_status: Callable[..., None]) -> None:
    with app.worker():
        wait_status(h, Status.BLOCKED)


def count(h: Any, type_: str) -> int:
    return sum(1 for e in h.events() if e.type == type_)


def test_a_blocked_run_holds_no_worker_and_has_not_ended(
    deploys: Callable[..., durable.App], wait_status: Callable[..., None], db_url: str
) -> None:
    h = sleeping_run(deploys("v1"), wait_status)
    v2 = deploys("v2")
    blocked_under(v2, h, wait_status)
    store = open_store(db_url)
    try:
        row = store.get_run(h.id)
    finally:
        store.close()
    assert row is not None
    assert row.lease_owner is None and row.lease_expires_at is None
    assert row.due_at is None and row.finished_at is None
    assert not Status.BLOCKED.is_terminal
    [stats] = [s for s in v2.client().stats() if s.workflow == "order"]
    assert (stats.blocked, stats.sleeping, stats.failed) == (1, 0, 0)
    info = h.info()
    assert info.error == f"NonDeterminismError: {info.error_message}"
    assert "position 2" in (info.error_message or "")
    with pytest.raises(TimeoutError, match="it is blocked: NonDeterminismError"):
        h.result(timeout=0.2)  # a blocked run has not finished: result() keeps waiting


def test_the_same_version_never_takes_it_again(
    deploys: Callable[..., durable.App], wait_status: Callable[..., None]
) -> None:
    h = sleeping_run(deploys("v1"), wait_status)
    v2 = deploys("v2")
    with v2.worker():
        wait_status(h, Status.BLOCKED)
        with v2.worker():  # a second worker of the same code starts, and looks
            time.sleep(0.5)
    assert count(h, "run_blocked") == 1
    assert count(h, "run_unblocked") == 0
    again = deploys("v2")  # another process of the same code: the same fingerprint
    assert again.version == v2.version
    with again.worker():
        time.sleep(0.3)
    assert h.status() is Status.BLOCKED and count(h, "run_blocked") == 1


def test_two_versions_that_both_cannot_replay_it_do_not_pass_it_back_and_forth(
    deploys: Callable[..., durable.App],
    wait_status: Callable[..., None],
    wait_until: Callable[..., Any],
) -> None:
    h = sleeping_run(deploys("v1"), wait_status)
    v2, v2b = deploys("v2"), deploys("v2", version="v2-hotfix")
    blocked_under(v2, h, wait_status)
    with v2b.worker():  # another version: it takes the run up, and cannot replay it either
        wait_until(lambda: count(h, "run_blocked") == 2, what="blocked a second time")
        wait_status(h, Status.BLOCKED)
    assert h.info().blocked_version == "v2-hotfix"
    assert h.events()[-1].data["tried"] == [v2.version, "v2-hotfix"]
    with v2.worker(), v2b.worker():
        time.sleep(0.5)
    assert count(h, "run_blocked") == 2 and h.status() is Status.BLOCKED
    with deploys("v3").worker():
        assert h.result(timeout=20) == "charged 2"


def test_resume_retries_a_blocked_run_on_demand(
    deploys: Callable[..., durable.App],
    wait_status: Callable[..., None],
    wait_until: Callable[..., Any],
) -> None:
    h = sleeping_run(deploys("v1"), wait_status)
    v2 = deploys("v2")
    with v2.worker():
        wait_status(h, Status.BLOCKED)
        resumed = v2.client().resume(h.id)  # the same code: it blocks again
        assert resumed.id == h.id
        wait_until(lambda: count(h, "run_blocked") == 2, what="blocked a second time")
        wait_status(h, Status.BLOCKED)
    assert count(h, "run_unblocked") == 1
    assert h.info().attempt == 1  # a retry of the replay, not of the workflow
    v3 = deploys("v3")
    v3.client().resume(h.id)  # no worker yet: the run waits, due
    assert h.status() is Status.PENDING
    with v3.worker():
        assert h.result(timeout=20) == "charged 2"
    assert v3.client().resume(h.id).status() is Status.COMPLETED  # left as it is


def test_retention_keeps_blocked_runs(
    deploys: Callable[..., durable.App], wait_status: Callable[..., None]
) -> None:
    h = sleeping_run(deploys("v1"), wait_status)
    v2 = deploys("v2")
    blocked_under(v2, h, wait_status)
    client = v2.client()
    everything = durable.Retention(keep_completed=0, keep_failed=0, max_age=0)
    assert client.prune(everything) == []
    assert client.prune({"order": everything}) == []
    assert h.status() is Status.BLOCKED


def test_blocked_runs_are_counted_and_logged(
    otel: OTel,
    deploys: Callable[..., durable.App],
    wait_status: Callable[..., None],
    caplog: pytest.LogCaptureFixture,
    backend: str,
) -> None:
    v1 = deploys("v1")
    with v1.worker():
        hs = [v1.client().start("order", n) for n in range(2)]
        for h in hs:
            wait_status(h, Status.SLEEPING)
    v2 = deploys("v2", version=f"metered-{backend}")

    def blocked() -> float:
        return sum(
            p.value
            for p in otel.points("durable.runs.blocked")
            if p.attributes.get("durable.workflow") == "order"
        )

    before = blocked()
    caplog.set_level("INFO", logger="durable")
    with v2.worker():
        for h in hs:
            wait_status(h, Status.BLOCKED)
    assert blocked() - before == 2
    warned = [
        r
        for r in caplog.records
        if r.levelname == "WARNING" and "blocked" in r.getMessage() and hs[0].id in r.getMessage()
    ]
    assert len(warned) == 1
    assert f"metered-{backend}" in warned[0].getMessage()
    assert getattr(warned[0], "durable_run_id", None) == hs[0].id


def test_a_blocked_run_can_be_cancelled(
    deploys: Callable[..., durable.App], wait_status: Callable[..., None]
) -> None:
    h = sleeping_run(deploys("v1"), wait_status)
    v2 = deploys("v2")
    blocked_under(v2, h, wait_status)
    assert v2.client().cancel(h.id) is durable.CancelOutcome.CANCELLED
    assert h.status() is Status.CANCELLED
    with deploys("v3").worker():  # another version does not take a cancelled run up
        time.sleep(0.3)
    assert h.status() is Status.CANCELLED
    with pytest.raises(durable.RunCancelledError):
        h.result(timeout=0)


def test_an_old_version_beside_a_new_one_never_takes_a_run_back(
    deploys: Callable[..., durable.App], wait_status: Callable[..., None]
) -> None:
    """A rolling deploy: workers of v2 (which parked the runs) still run while v3's start.
    v3 takes the runs up; the leases never hand them to v2 again, whichever worker asks."""
    v1 = deploys("v1")
    with v1.worker():
        hs = [v1.client().start("order", n) for n in range(4)]
        for h in hs:
            wait_status(h, Status.SLEEPING)
    v2, v3 = deploys("v2"), deploys("v3")
    with v2.worker(concurrency=8):
        for h in hs:
            wait_status(h, Status.BLOCKED)
        with v3.worker(concurrency=1):
            assert [h.result(timeout=30) for h in hs] == [f"charged {n + 1}" for n in range(4)]
    assert [count(h, "run_blocked") for h in hs] == [1, 1, 1, 1]
    owners = {e.data.get("owner") for h in hs for e in h.events()[-5:] if e.type == "lease_taken"}
    assert len(owners) == 1  # v3's worker, not v2's


def test_resume_forgets_the_versions_that_could_not_replay_it(
    deploys: Callable[..., durable.App], wait_status: Callable[..., None]
) -> None:
    """A fix deployed under the same explicit version heals on resume."""
    h = sleeping_run(deploys("v1"), wait_status)
    blocked_under(deploys("v2", version="1.0"), h, wait_status)
    fixed = deploys("v3", version="1.0")
    with fixed.worker():
        time.sleep(0.3)
        assert h.status() is Status.BLOCKED  # the same version does not take it up itself
        fixed.client().resume(h.id)
        assert h.result(timeout=20) == "charged 2"
