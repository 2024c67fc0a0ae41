"""The committer's two writers (issue 5): a waiting thread writes its own append when no batch
is in flight, with everything queued before it; otherwise the committer thread writes what
queued up, in one transaction. On both backends, against a real log."""

from __future__ import annotations

import logging
import threading
from typing import Any

import msgspec
import pytest
from harness.faults import Fail, FaultyStore, Gate, run_ids

from durable.engine.committer import Committer
from durable.errors import StoreError
from durable.events import EventType, NewEvent, ResultData, StepStartedData
from durable.log import AppendRequest, NewRun, Store

T = EventType


def _started(pos: int) -> NewEvent:
    return NewEvent(T.STEP_STARTED, StepStartedData(), position=pos, name="s", attempt=1)


def _completed(pos: int) -> NewEvent:
    data = ResultData(result=msgspec.Raw(msgspec.msgpack.encode(pos)))
    return NewEvent(T.STEP_COMPLETED, data, position=pos, name="s", attempt=1)


def appends(store: FaultyStore) -> list[tuple[str, list[str]]]:
    """The calling thread and the runs of each ``append`` call through ``store``."""
    return [(c.thread, run_ids(c)) for c in store.calls_to("append")]


def _leased(store: Store, ids: list[str]) -> dict[str, int]:
    for rid in ids:
        store.create_run(NewRun(id=rid, workflow="wf", queue="q", input=b"\x90"))
    got = store.lease("w", 3600, ["wf"], ["q"], len(ids))
    assert sorted(g.run.id for g in got) == sorted(ids)
    return {g.run.id: g.epoch for g in got}


def test_a_lone_waiting_append_is_written_on_its_own_thread_after_what_lingers(
    store: Store,
) -> None:
    epochs = _leased(store, ["r"])
    rec = FaultyStore(store)
    committer = Committer(rec.as_store())
    committer.start()
    try:
        # A step's start lingers (nobody waits on it); its outcome is waited for.
        early = committer.submit(AppendRequest("r", epochs["r"], [_started(1)]), waited=False)
        res = committer.write(AppendRequest("r", epochs["r"], [_completed(1)]))
        assert res.ok and early.result(timeout=5).ok
        me = threading.current_thread().name
        assert appends(rec) == [(me, ["r", "r"])], "not one transaction on the caller's thread"
        types = [(e.type, e.position) for e in store.read_journal("r")][-2:]
        assert types == [(T.STEP_STARTED, 1), (T.STEP_COMPLETED, 1)]
    finally:
        committer.stop()


def test_appends_made_while_a_batch_is_in_flight_go_together_in_the_next(store: Store) -> None:
    ids = [f"r{i}" for i in range(6)]
    epochs = _leased(store, ids)
    gate = Gate(timeout=10)  # holds every append until opened
    rec = FaultyStore(store, before={"append": gate})
    committer = Committer(rec.as_store())
    committer.start()
    results: dict[str, Any] = {}

    def write(rid: str, pos: int) -> None:
        results[f"{rid}/{pos}"] = committer.write(AppendRequest(rid, epochs[rid], [_started(pos)]))

    first = threading.Thread(target=write, args=("r0", 1))
    first.start()
    assert gate.entered.wait(5)  # r0's batch is in flight, held
    others = [threading.Thread(target=write, args=(rid, 1)) for rid in ids[1:]]
    for t in others:
        t.start()
    while len(committer._pending) < len(others):  # every other append has queued behind it
        threading.Event().wait(0.005)
    gate.open()
    for t in [first, *others]:
        t.join(10)
    committer.stop()
    assert all(r.ok for r in results.values()) and len(results) == len(ids)
    calls = appends(rec)
    assert calls[0][1] == ["r0"]
    assert sorted(calls[1][1]) == sorted(ids[1:]), f"not one batch: {calls}"
    assert len(calls) == 2
    for rid in ids:
        assert [e.type for e in store.read_journal(rid)][-1] == T.STEP_STARTED


def test_after_stop_a_waiting_append_is_written_and_a_queued_one_refused(store: Store) -> None:
    epochs = _leased(store, ["r"])
    committer = Committer(store)
    committer.start()
    committer.stop()
    # No thread any more: a waiting caller writes its own append; nobody would write a
    # queued one, so it is refused at once instead of never resolving.
    assert committer.write(AppendRequest("r", epochs["r"], [_started(1)])).ok
    late = committer.submit(AppendRequest("r", epochs["r"], [_completed(1)]), waited=False)
    res = late.result(timeout=1)
    assert not res.ok and res.error is not None
    assert [e.type for e in store.read_journal("r")][-1] == T.STEP_STARTED


def test_a_cancelled_future_does_not_stop_the_committer(store: Store) -> None:
    epochs = _leased(store, ["a", "b"])
    gate = Gate(timeout=10)
    committer = Committer(FaultyStore(store, before={"append": gate}).as_store())
    committer.start()
    try:
        first = committer.submit(AppendRequest("a", epochs["a"], [_started(1)]))
        assert gate.entered.wait(5)
        first.cancel()  # its awaiting task was cancelled while the batch was in flight
        gate.open()
        nxt = committer.submit(AppendRequest("b", epochs["b"], [_started(1)]))
        assert nxt.result(timeout=5).ok
    finally:
        committer.stop()


def test_a_retried_append_is_logged_with_its_runs(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    epochs = _leased(store, ["r"])
    # The first append fails for a passing reason (the database restarting).
    restarting = Fail(StoreError("the database is restarting", transient=True), times=1)
    committer = Committer(FaultyStore(store, before={"append": restarting}).as_store())
    caplog.set_level(logging.WARNING, logger="durable.engine.committer")
    committer.start()
    try:
        assert committer.write(AppendRequest("r", epochs["r"], [_started(1)])).ok
    finally:
        committer.stop()
    assert len(restarting.fired) == 1, "the fault was never injected"
    [rec] = [r for r in caplog.records if "append failed" in r.getMessage()]
    assert "(runs r)" in rec.getMessage()
    assert rec.durable_run_id == "r"  # type: ignore[attr-defined]
    assert rec.durable_run_ids == ["r"]  # type: ignore[attr-defined]
