"""The Store's flow-control contract on every backend: deduplication keys
(``create_run``, ``create_runs``, ``resume``), ``start_and_signal``, ``cancel_many`` and
``resume_many``, and the ``first_finished`` outcome of a ``wait_first`` position."""

from __future__ import annotations

import pytest
from test_store_contract import (
    FAR,
    WF,
    append1,
    assert_row_is_fold,
    enc,
    new_run,
    run,
    run_completed,
    take,
    types,
)

from durable.errors import DuplicateRunError, IdConflictError, StoreError
from durable.events import EventType, FirstData, NewEvent, SuspendData
from durable.log import AppendRequest, Store
from durable.states import WaitFor
from durable.types import Status

T = EventType
UNFINISHED = [Status.PENDING, Status.RUNNING, Status.SLEEPING, Status.BLOCKED]


def test_an_unfinished_run_holds_its_dedup_key(store: Store) -> None:
    store.create_run(new_run("a", dedup_key="k"))
    with pytest.raises(DuplicateRunError) as refused:
        store.create_run(new_run("b", dedup_key="k"))
    assert refused.value.run_id == "a"
    assert store.get_run("b") is None
    row, created = store.create_run(new_run("a", dedup_key="k"))  # the id comes first
    assert (row.id, created) == ("a", False)
    with pytest.raises(DuplicateRunError):
        store.create_runs([new_run("c"), new_run("d", dedup_key="k")])
    assert store.get_run("c") is None  # the batch is written whole or not at all
    ls = take(store, "a")
    assert append1(store, AppendRequest("a", ls.epoch, [run_completed()])).ok
    row, created = store.create_run(new_run("b", dedup_key="k"))
    assert created and row.dedup_key == "k"
    assert store.create_runs([new_run("e", dedup_key="k2"), new_run("f")]) == {"e", "f"}
    assert_row_is_fold(store, "b")


def test_a_resume_takes_the_key_again_or_is_refused(store: Store) -> None:
    store.create_run(new_run("a", dedup_key="k"))
    store.cancel("a", "x")
    store.create_run(new_run("b", dedup_key="k"))
    with pytest.raises(DuplicateRunError) as refused:
        store.resume("a")
    assert refused.value.run_id == "b"
    assert run(store, "a").status is Status.CANCELLED
    store.cancel("b", "x")
    assert run(store, "a").status is Status.CANCELLED
    assert store.resume("a") is not None and run(store, "a").status is Status.PENDING
    with pytest.raises(DuplicateRunError):
        store.resume("b")
    assert_row_is_fold(store, "a")


def test_start_and_signal_starts_once_and_delivers_each_signal(store: Store) -> None:
    row, created = store.start_and_signal(new_run("r"), "add", enc(1))
    assert created and row.id == "r"
    row, created = store.start_and_signal(new_run("r"), "add", enc(2))
    assert not created
    ls = take(store, "r")
    for pos, want in ((1, 1), (2, 2)):
        res = append1(store, AppendRequest("r", ls.epoch, [], consume_signal=("add", pos)))
        assert res.signal is not None and res.signal[1] == enc(want)
    res = append1(store, AppendRequest("r", ls.epoch, [], consume_signal=("add", 3)))
    assert res.signal is None
    assert types(store, "r").count("signal_received") == 2


def test_start_and_signal_of_an_id_of_another_workflow_writes_nothing(store: Store) -> None:
    store.create_run(new_run("r", workflow="other"))
    with pytest.raises(IdConflictError):
        store.start_and_signal(new_run("r"), "add", enc(1))
    ls = take(store, "r")
    res = append1(store, AppendRequest("r", ls.epoch, [], consume_signal=("add", 1)))
    assert res.signal is None


def test_start_and_signal_wakes_a_run_waiting_for_that_signal(store: Store) -> None:
    store.create_run(new_run("r"))
    ls = take(store, "r")
    wait = NewEvent(T.RUN_SUSPENDED, SuspendData(waiting_for=WaitFor.signal("add")))
    assert append1(store, AppendRequest("r", ls.epoch, [wait])).ok
    assert store.lease("w", FAR, [WF], ["r"], 10) == []
    store.start_and_signal(new_run("r"), "add", None)
    assert [ls.run.id for ls in store.lease("w", FAR, [WF], ["r"], 10)] == ["r"]


def test_cancel_many_and_resume_many_by_filter(store: Store) -> None:
    for i in range(5):
        store.create_run(new_run(f"a{i}", queue="q1"))
    store.create_run(new_run("b", workflow="other", queue="q1"))
    store.create_run(new_run("a0:1", queue="q2", parent_id="a0"))  # a child on another queue
    done = store.cancel_many(UNFINISHED, WF, "q1", "bulk")
    assert sorted(done) == [(f"a{i}", WF, "q1") for i in range(5)]
    assert run(store, "a0:1").status is Status.CANCELLED  # with its parent, not listed
    assert run(store, "b").status is Status.PENDING
    assert store.cancel_many(UNFINISHED, WF, None, "bulk") == []
    resumed, refused = store.resume_many([Status.CANCELLED], None, "q1")
    assert sorted(resumed) == [f"a{i}" for i in range(5)] and refused == []
    assert run(store, "a0:1").status is Status.CANCELLED
    for i in range(5):
        assert_row_is_fold(store, f"a{i}")


def test_resume_many_reports_the_runs_whose_key_is_held(store: Store) -> None:
    store.create_run(new_run("a", dedup_key="k"))
    store.create_run(new_run("c"))
    store.cancel_many(UNFINISHED, WF, None, "bulk")
    store.create_run(new_run("b", dedup_key="k"))
    resumed, refused = store.resume_many([Status.CANCELLED], WF, None)
    assert resumed == ["c"]
    assert [(rid, exc.run_id) for rid, exc in refused] == [("a", "b")]


def test_one_first_finished_per_position(store: Store) -> None:
    store.create_run(new_run("p"))
    ls = take(store, "p")
    first = NewEvent(T.FIRST_FINISHED, FirstData(child_id="p:1"), position=3)
    assert append1(store, AppendRequest("p", ls.epoch, [first])).ok
    again = NewEvent(T.FIRST_FINISHED, FirstData(child_id="p:2", index=1), position=3)
    res = append1(store, AppendRequest("p", ls.epoch, [again]))
    assert not res.ok and isinstance(res.error, StoreError) and res.error.integrity
    assert types(store, "p").count("first_finished") == 1
