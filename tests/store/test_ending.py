"""One way to end a run outside its lease: a cancel and the recovery limit both go through
``Runs.end``, which projects the final event as an append would, bumps the epoch, and wakes
a parent waiting for its children."""

from __future__ import annotations

import time
from typing import Any

import msgspec

from durable.events import EventType, NewEvent, SuspendData
from durable.log import AppendRequest, NewRun, RunRow, open_store
from durable.log.sqlstore import SqlStore
from durable.states import Status, SuspendReason, WaitFor

WF = "wf"
PARENT = "parent"


def _new(run_id: str, parent_id: str | None = None, workflow: str = WF) -> NewRun:
    return NewRun(
        id=run_id,
        workflow=workflow,
        queue="default",
        input=msgspec.msgpack.encode([]),
        parent_id=parent_id,
    )


def _parent_waiting_for(store: SqlStore, parent: str, child: str) -> None:
    """``parent`` sleeps until one of its children (``child``, created pending) ends."""
    store.create_run(_new(parent, workflow=PARENT))
    (lease,) = store.lease("w0", 3600.0, [PARENT], None, 1)
    assert lease.run.id == parent
    wait = SuspendData(wake_at=None, waiting_for=WaitFor.children(), reason=SuspendReason.CHILD)
    [res] = store.append(
        [
            AppendRequest(
                parent,
                lease.epoch,
                [NewEvent(EventType.RUN_SUSPENDED, wait)],
                new_runs=[_new(child, parent_id=parent)],
                wait_children=[child],
            )
        ]
    )
    assert res.ok
    row = store.get_run(parent)
    assert row is not None and row.status is Status.SLEEPING and row.due_at is None
    assert row.waiting_for == WaitFor.children()


def _ended_alike(row: RunRow, status: Status, epoch_before: int) -> None:
    assert row.status is status
    assert row.finished_at is not None
    assert (row.lease_owner, row.lease_expires_at, row.due_at, row.wake_at) == (None,) * 4
    assert row.waiting_for is None
    assert row.lease_epoch > epoch_before  # no append under an earlier epoch can land


def test_cancel_and_the_recovery_limit_end_runs_through_one_function(db_url: str) -> None:
    store = open_store(db_url, max_stalls=1)
    ended: list[tuple[str, EventType]] = []
    real = store.runs.end

    def spy(c: Any, run_id: str, event: NewEvent, now: float) -> bool:
        ended.append((run_id, event.type))
        return real(c, run_id, event, now)

    store.runs.end = spy  # type: ignore[method-assign]
    try:
        _parent_waiting_for(store, "p-cancel", "c-cancel")
        _parent_waiting_for(store, "p-stall", "c-stall")

        # A cancel: the child ends CANCELLED and its parent is due at once.
        before = store.get_run("c-cancel")
        assert before is not None
        got = store.cancel("c-cancel", "no longer needed")
        assert got is not None and got[1]
        _ended_alike(got[0], Status.CANCELLED, before.lease_epoch)

        # The recovery limit: taken over once too often without progress.
        for owner in ("a", "b"):
            taken = store.lease(owner, 0.01, [WF], None, 10)
            assert [ls.run.id for ls in taken] == ["c-stall"]
            time.sleep(0.03)
        before = store.get_run("c-stall")
        assert before is not None
        assert store.lease("c", 3600.0, [WF], None, 10) == []  # ended instead of taken
        row = store.get_run("c-stall")
        assert row is not None and row.error_type == "RecoveryLimitExceeded"
        _ended_alike(row, Status.FAILED, before.lease_epoch)

        assert ended == [
            ("c-cancel", EventType.RUN_CANCELLED),
            ("c-stall", EventType.RUN_FAILED),
        ]
        for parent in ("p-cancel", "p-stall"):  # both woke their waiting parent
            prow = store.get_run(parent)
            assert prow is not None and prow.due_at is not None
        for child, final in (
            ("c-cancel", EventType.RUN_CANCELLED),
            ("c-stall", EventType.RUN_FAILED),
        ):
            last = store.read_journal(child)[-1]
            row = store.get_run(child)
            assert row is not None and (last.type, last.epoch) == (final, row.lease_epoch)
    finally:
        store.close()
