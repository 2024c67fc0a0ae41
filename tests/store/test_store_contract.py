"""The contract of :class:`durable.log.Store`, run against every backend (GUARANTEES.md G3, G7,
G9, G11).

Each test speaks only the Store's own words (runs, events, leases, signals); payloads are built
with the ``durable.events`` structs. After every scenario the ``runs`` row is checked to be the
fold of its journal (:func:`assert_row_is_fold`).
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Sequence
from typing import Any

import msgspec
import pytest

from durable.errors import IdConflictError, StoreError
from durable.events import (
    OUTCOME_KIND,
    CancelData,
    ChildData,
    ErrorInfo,
    EventType,
    Failure,
    NewEvent,
    ProgressData,
    ProgressScope,
    ResultData,
    RunStartedData,
    SignalData,
    StageData,
    StepStartedData,
    SuspendData,
    decode_data,
)
from durable.log import AppendRequest, JournalRow, Lease, NewRun, RunRow, Store, open_store
from durable.log.store import RunFilter
from durable.states import WaitFor

T = EventType
WF = "wf"
TERMINAL = {"completed", "failed", "cancelled"}
FAR = 3600.0

# ---------------------------------------------------------------- payloads


def enc(value: Any) -> bytes:
    return msgspec.msgpack.encode(value)


def new_run(run_id: str, workflow: str = WF, queue: str | None = None, **kw: Any) -> NewRun:
    """A run on a queue of its own unless told (so that :func:`take` can single it out)."""
    q = run_id if queue is None else queue
    return NewRun(id=run_id, workflow=workflow, queue=q, input=enc([run_id]), **kw)


def step_started(pos: int, name: str = "step") -> NewEvent:
    return NewEvent(T.STEP_STARTED, StepStartedData(), position=pos, name=name, attempt=1)


def step_completed(pos: int, value: Any = None, name: str = "step") -> NewEvent:
    data = ResultData(result=msgspec.Raw(enc(value)))
    return NewEvent(T.STEP_COMPLETED, data, position=pos, name=name, attempt=1)


def run_completed(value: Any = "done") -> NewEvent:
    return NewEvent(T.RUN_COMPLETED, ResultData(result=msgspec.Raw(enc(value))))


def run_failed(error_type: str = "ValueError", message: str = "boom") -> NewEvent:
    return NewEvent(T.RUN_FAILED, Failure(error=ErrorInfo(type=error_type, message=message)))


def suspended(wake_at: float | None = None, waiting_for: WaitFor | None = None) -> NewEvent:
    return NewEvent(T.RUN_SUSPENDED, SuspendData(wake_at=wake_at, waiting_for=waiting_for))


def run_cancelled() -> NewEvent:
    return NewEvent(T.RUN_CANCELLED, CancelData(text="asked"))


def child_started(pos: int, child_id: str) -> NewEvent:
    return NewEvent(T.CHILD_STARTED, ChildData(child_id=child_id), position=pos, name="c")


# ---------------------------------------------------------------- helpers


def take(store: Store, run_id: str, owner: str = "w1", ttl: float = FAR, **kw: Any) -> Lease:
    """Lease ``run_id``, and only it, through its own queue (it must be runnable)."""
    row = run(store, run_id)
    got = store.lease(owner, ttl, [row.workflow], [row.queue], 100, **kw)
    assert [ls.run.id for ls in got] == [run_id], f"{run_id} was not leased"
    return got[0]


def leased_ids(leases: Sequence[Lease]) -> list[str]:
    return [ls.run.id for ls in leases]


def append1(store: Store, req: AppendRequest) -> Any:
    (res,) = store.append([req])
    return res


def run(store: Store, run_id: str) -> RunRow:
    row = store.get_run(run_id)
    assert row is not None
    return row


def types(store: Store, run_id: str) -> list[str]:
    return [r.type for r in store.read_journal(run_id)]


def _status_after(status: str, ev: JournalRow) -> str:
    t = ev.type
    if t == T.RUN_STARTED or t == T.RUN_RESUMED:
        return "pending"
    if t == T.LEASE_TAKEN:
        return "running"
    if t == T.RUN_SUSPENDED:
        reason = decode_data(t, ev.data).reason
        return "pending" if reason == "released" else "sleeping"
    return {
        T.RUN_COMPLETED: "completed",
        T.RUN_FAILED: "failed",
        T.RUN_CANCELLED: "cancelled",
    }.get(t, status)


def assert_row_is_fold(store: Store, run_id: str) -> list[JournalRow]:
    """G3: the journal is well formed and the ``runs`` row is its fold."""
    journal = store.read_journal(run_id)
    row = run(store, run_id)
    assert [e.seq for e in journal] == list(range(1, len(journal) + 1)), "seq not gapless"
    assert journal[0].type == T.RUN_STARTED
    assert row.last_seq == journal[-1].seq == max(e.seq for e in journal)
    epochs = [e.epoch for e in journal]
    assert epochs == sorted(epochs), f"epochs decrease in seq order: {epochs}"
    assert row.lease_epoch >= epochs[-1]
    outcomes = Counter(
        (e.position, OUTCOME_KIND[e.type]) for e in journal if e.type in OUTCOME_KIND
    )
    assert all(n == 1 for n in outcomes.values()), outcomes
    status, attempt, output, error_type = "pending", 1, None, None
    for e in journal:
        status = _status_after(status, e)
        if e.type in (T.RUN_RESUMED, T.RUN_RETRY_SCHEDULED):
            attempt = e.attempt
        if e.type == T.RUN_COMPLETED:
            output = bytes(decode_data(e.type, e.data).result)
        if e.type == T.RUN_FAILED:
            error_type = decode_data(e.type, e.data).error.type
        if e.type == T.RUN_RESUMED:
            output = error_type = None
    assert row.status == status
    assert row.attempt == attempt
    assert row.output == output
    assert row.error_type == error_type
    assert row.steps_completed == sum(1 for e in journal if e.type == T.STEP_COMPLETED)
    if status in TERMINAL:
        assert journal[-1].type in (T.RUN_COMPLETED, T.RUN_FAILED, T.RUN_CANCELLED)
        assert row.finished_at is not None and row.due_at is None
    if status != "running":
        assert row.lease_owner is None
    return journal


# ---------------------------------------------------------------- create_run (G9)


def test_create_run_writes_run_started_at_seq_1(store: Store) -> None:
    row, created = store.create_run(new_run("r1", queue="q", priority=3))
    assert created
    assert (row.id, row.workflow, row.queue, row.priority) == ("r1", WF, "q", 3)
    assert (row.status, row.lease_epoch, row.last_seq, row.attempt) == ("pending", 0, 1, 1)
    assert row.input == enc(["r1"])
    (ev,) = store.read_journal("r1")
    assert (ev.seq, ev.type, ev.epoch) == (1, T.RUN_STARTED, 0)
    data = decode_data(ev.type, ev.data)
    assert isinstance(data, RunStartedData)
    # The input lives in the row only (the source of truth), not in run_started.
    assert (data.input, data.workflow) == (None, WF)
    assert_row_is_fold(store, "r1")


def test_create_run_is_idempotent_on_the_id(store: Store) -> None:
    first, created = store.create_run(new_run("r1"))
    assert created
    again, created = store.create_run(
        NewRun(id="r1", workflow="other", queue="q2", input=enc("different"), priority=9)
    )
    assert not created
    assert again == first  # the existing row, untouched
    assert types(store, "r1") == [T.RUN_STARTED]


def test_concurrent_create_run_creates_exactly_once(store: Store) -> None:
    results: list[bool] = []
    barrier = threading.Barrier(8)

    def go() -> None:
        barrier.wait()
        results.append(store.create_run(new_run("same"))[1])

    threads = [threading.Thread(target=go) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [False] * 7 + [True]
    assert types(store, "same") == [T.RUN_STARTED]


def test_create_runs_writes_each_run_like_create_run_and_skips_taken_ids(store: Store) -> None:
    first, _ = store.create_run(new_run("taken"))
    ids = [f"m{i}" for i in range(300)]  # more than one multi-row chunk
    with pytest.raises(IdConflictError):  # taken by a run of another workflow: nothing written
        store.create_runs([new_run("fresh"), new_run("taken", workflow="other")])
    assert store.get_run("fresh") is None
    created = store.create_runs([new_run("taken"), *map(new_run, ids)])
    assert created == set(ids)
    assert store.get_run("taken") == first  # untouched
    for rid in (ids[0], ids[137], ids[-1]):
        row = run(store, rid)
        assert (row.status, row.lease_epoch, row.last_seq, row.input) == (
            "pending",
            0,
            1,
            enc([rid]),
        )
        assert types(store, rid) == [T.RUN_STARTED]
        assert_row_is_fold(store, rid)
    assert store.create_runs([new_run(ids[0])]) == set()
    assert store.create_runs([]) == set()


def test_concurrent_create_runs_create_each_id_exactly_once(store: Store) -> None:
    results: list[set[str]] = []
    barrier = threading.Barrier(4)
    ids = [f"c{i}" for i in range(50)]

    def go() -> None:
        barrier.wait()
        results.append(store.create_runs([new_run(r) for r in ids]))

    threads = [threading.Thread(target=go) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(r for created in results for r in created) == sorted(ids)
    assert all(types(store, r) == [T.RUN_STARTED] for r in ids)


def test_get_run_get_runs_list_runs(store: Store) -> None:
    assert store.get_run("nope") is None
    store.create_run(new_run("a", queue="q1"))
    store.create_run(new_run("b", workflow="other", queue="q2"))
    store.create_run(new_run("c", queue="q2", parent_id="a"))
    assert sorted(r.id for r in store.get_runs(["a", "c", "nope"])) == ["a", "c"]
    assert store.get_runs([]) == []
    assert [r.id for r in store.list_runs(RunFilter())] == ["c", "b", "a"]  # newest first
    assert [r.id for r in store.list_runs(RunFilter(queue="q2"))] == ["c", "b"]
    assert [r.id for r in store.list_runs(RunFilter(workflow="other"))] == ["b"]
    assert [r.id for r in store.list_runs(RunFilter(parent_id="a"))] == ["c"]
    assert [r.id for r in store.list_runs(RunFilter(status="running"))] == []
    assert len(store.list_runs(RunFilter(limit=2))) == 2
    assert [r.id for r in store.list_runs(RunFilter(limit=None))] == ["c", "b", "a"]


def test_read_journals_reads_many_whole_journals_at_once(store: Store) -> None:
    """Each id's journal as ``read_journal`` gives it, in seq order, in batches of any size
    (more ids than one statement names); an unknown id gets an empty list."""
    ids = [f"r{i:03d}" for i in range(300)]
    store.create_runs([new_run(i) for i in ids])
    for i in ids[:3]:
        ls = take(store, i)
        append1(store, AppendRequest(i, ls.epoch, [step_started(1), step_completed(1, 7)]))
    got = store.read_journals([*reversed(ids), "ghost", ids[0]])
    assert sorted(got) == sorted([*ids, "ghost"])
    assert got["ghost"] == []
    for i in ids:
        assert got[i] == store.read_journal(i)
    assert [e.type for e in got[ids[0]]] == [
        T.RUN_STARTED,
        T.LEASE_TAKEN,
        T.STEP_STARTED,
        T.STEP_COMPLETED,
    ]
    assert store.read_journals([]) == {}


# ---------------------------------------------------------------- lease (G7)


def test_lease_takes_only_due_runs_of_the_given_workflows_and_queues(store: Store) -> None:
    store.create_run(new_run("w1q1", queue="q1"))
    store.create_run(new_run("w1q2", queue="q2"))
    store.create_run(new_run("w2q1", workflow="w2", queue="q1"))
    store.create_run(new_run("late", queue="q1", delay=FAR))
    assert store.lease("o", FAR, [], None, 10) == []
    assert store.lease("o", FAR, [WF], None, 0) == []
    assert leased_ids(store.lease("o", FAR, ["w3"], None, 10)) == []
    assert leased_ids(store.lease("o", FAR, [WF], ["q1"], 10)) == ["w1q1"]
    assert leased_ids(store.lease("o", FAR, [WF, "w2"], None, 10)) == ["w1q2", "w2q1"]
    assert run(store, "late").status == "pending"
    assert store.lease("o", FAR, [WF, "w2"], None, 10) == []


def test_lease_order_is_priority_then_fifo(store: Store) -> None:
    for i, prio in enumerate([0, 5, 0, 5, -1, 0]):
        store.create_run(new_run(f"r{i}", priority=prio))
        time.sleep(0.002)  # distinct creation instants, so FIFO is observable
    order = [leased_ids(store.lease("o", FAR, [WF], None, 1)) for _ in range(7)]
    assert order == [["r1"], ["r3"], ["r0"], ["r2"], ["r5"], ["r4"], []]


def test_lease_respects_delay(store: Store) -> None:
    row, _ = store.create_run(new_run("soon", delay=0.3))
    store.create_run(new_run("later", delay=FAR))
    assert row.due_at is not None and row.due_at >= row.created_at + 0.3
    nd = store.next_due([WF], None)
    assert nd is not None and abs(nd - row.due_at) < 1e-6
    deadline = time.monotonic() + 10
    while not (got := store.lease("o", FAR, [WF], None, 10)):
        assert time.monotonic() < deadline, "the delayed run never became due"
        time.sleep(0.02)
    assert leased_ids(got) == ["soon"]
    assert got[0].db_now >= row.due_at  # taken by the database's clock, not before
    assert run(store, "later").status == "pending"
    assert store.lease("o", FAR, [WF], None, 10) == []


def test_lease_sets_epoch_and_appends_lease_taken(store: Store) -> None:
    store.create_run(new_run("r1"))
    ls = take(store, "r1", owner="worker-a", ttl=30.0)
    assert (ls.epoch, ls.takeover) == (1, False)
    row = run(store, "r1")
    assert (row.status, row.lease_owner, row.lease_epoch, row.last_seq) == (
        "running",
        "worker-a",
        1,
        2,
    )
    assert row.lease_expires_at is not None
    assert abs(row.lease_expires_at - (ls.db_now + 30.0)) < 1e-3
    assert ls.run.lease_epoch == 1 and ls.run.status == "running"
    ev = store.read_journal("r1")[-1]
    assert (ev.seq, ev.type, ev.epoch) == (2, T.LEASE_TAKEN, 1)
    mark = decode_data(ev.type, ev.data)
    assert (mark.owner, mark.takeover) == ("worker-a", False)
    assert_row_is_fold(store, "r1")


def test_a_live_lease_is_not_taken_again(store: Store) -> None:
    store.create_run(new_run("r1"))
    take(store, "r1", owner="a")
    assert store.lease("b", FAR, [WF], None, 10) == []
    assert store.lease("a", FAR, [WF], None, 10) == []
    assert run(store, "r1").lease_epoch == 1
    assert types(store, "r1") == [T.RUN_STARTED, T.LEASE_TAKEN]


def test_an_expired_lease_is_taken_over_with_a_higher_epoch(store: Store) -> None:
    store.create_run(new_run("r1"))
    first = take(store, "r1", owner="a", ttl=0.05)
    time.sleep(0.1)
    second = take(store, "r1", owner="b")
    assert second.takeover
    assert second.epoch > first.epoch
    assert run(store, "r1").lease_owner == "b"
    ev = store.read_journal("r1")[-1]
    assert (ev.type, ev.epoch) == (T.LEASE_TAKEN, second.epoch)
    assert decode_data(ev.type, ev.data).takeover
    # the stalled holder is fenced off
    assert not append1(store, AppendRequest("r1", first.epoch, [step_started(1)])).ok
    assert append1(store, AppendRequest("r1", second.epoch, [step_started(1)])).ok
    assert_row_is_fold(store, "r1")


def test_reclaim_takes_runs_of_the_named_owners(store: Store) -> None:
    store.create_run(new_run("mine"))
    store.create_run(new_run("theirs"))
    old = take(store, "mine", owner="host-1")
    take(store, "theirs", owner="host-2")
    assert store.lease("host-1", FAR, [WF], None, 10) == []  # live leases, no reclaim
    got = store.lease("host-1", FAR, [WF], None, 10, reclaim=["host-1"])
    assert leased_ids(got) == ["mine"]
    assert got[0].takeover  # its holder stopped: a stall, as when a lease expires
    assert got[0].epoch > old.epoch  # never the old epoch again
    assert run(store, "mine").lease_owner == "host-1"
    assert run(store, "theirs").lease_owner == "host-2"
    assert not append1(store, AppendRequest("mine", old.epoch, [step_started(1)])).ok
    assert_row_is_fold(store, "mine")


def test_concurrent_leases_never_share_a_run(store: Store) -> None:
    for i in range(30):
        store.create_run(new_run(f"r{i:02d}"))
    taken: list[tuple[str, int]] = []
    lock = threading.Lock()
    barrier = threading.Barrier(5)

    def worker(n: int) -> None:
        barrier.wait()
        for _ in range(10):
            got = store.lease(f"w{n}", FAR, [WF], None, 3)
            with lock:
                taken.extend((ls.run.id, ls.epoch) for ls in got)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(taken) == [(f"r{i:02d}", 1) for i in range(30)]


def test_too_many_takeovers_without_progress_fail_the_run(db_url: str) -> None:
    store = open_store(db_url, max_stalls=1)
    try:
        store.create_run(new_run("poison"))
        take(store, "poison", owner="a", ttl=0.01)
        time.sleep(0.03)
        take(store, "poison", owner="b", ttl=0.01)  # first takeover: allowed
        time.sleep(0.03)
        assert store.lease("c", FAR, [WF], None, 10) == []
        row = run(store, "poison")
        assert (row.status, row.error_type) == ("failed", "RecoveryLimitExceeded")
        assert_row_is_fold(store, "poison")
    finally:
        store.close()


# ---------------------------------------------------------------- append (G3, G7)


def test_append_assigns_gapless_seq_and_the_writer_epoch(store: Store) -> None:
    store.create_run(new_run("r1"))
    ls = take(store, "r1")
    res = append1(store, AppendRequest("r1", ls.epoch, [step_started(1), step_completed(1, 7)]))
    assert (res.ok, res.last_seq, res.error) == (True, 4, None)
    res = append1(store, AppendRequest("r1", ls.epoch, [step_started(2)]))
    assert (res.ok, res.last_seq) == (True, 5)
    journal = assert_row_is_fold(store, "r1")
    assert [(e.seq, e.type, e.position, e.epoch) for e in journal[2:]] == [
        (3, T.STEP_STARTED, 1, ls.epoch),
        (4, T.STEP_COMPLETED, 1, ls.epoch),
        (5, T.STEP_STARTED, 2, ls.epoch),
    ]
    assert run(store, "r1").steps_completed == 1


def test_append_under_a_stale_epoch_writes_nothing(store: Store) -> None:
    store.create_run(new_run("r1"))
    ls = take(store, "r1")
    before_row, before_journal = run(store, "r1"), store.read_journal("r1")
    for epoch in (ls.epoch - 1, ls.epoch + 1, 0):
        res = append1(store, AppendRequest("r1", epoch, [step_completed(1), run_completed()]))
        assert not res.ok and res.error is None
    assert run(store, "r1") == before_row
    assert store.read_journal("r1") == before_journal


def test_append_to_an_unknown_run_is_refused(store: Store) -> None:
    assert not append1(store, AppendRequest("ghost", 1, [step_started(1)])).ok
    assert store.read_journal("ghost") == []


@pytest.mark.parametrize("end", [run_completed, run_failed])
def test_append_after_a_terminal_event_is_refused(store: Store, end: Any) -> None:
    store.create_run(new_run("r1"))
    ls = take(store, "r1")
    assert append1(store, AppendRequest("r1", ls.epoch, [step_completed(1), end()])).ok
    ended = run(store, "r1")
    assert ended.status in TERMINAL and ended.lease_epoch > ls.epoch
    for epoch in (ls.epoch, ended.lease_epoch):  # not even under the row's current epoch
        assert not append1(store, AppendRequest("r1", epoch, [step_started(2)])).ok
    assert run(store, "r1") == ended
    assert store.read_journal("r1")[-1].type == end().type
    assert_row_is_fold(store, "r1")


def test_a_batch_commits_the_good_request_and_skips_the_stale_one(store: Store) -> None:
    store.create_run(new_run("stale"))
    store.create_run(new_run("good"))
    old = take(store, "stale", ttl=0.01)
    time.sleep(0.03)
    take(store, "stale", owner="thief")
    good = take(store, "good")
    stale_before = store.read_journal("stale")
    res = store.append(
        [
            AppendRequest("stale", old.epoch, [step_completed(1, "x")]),
            AppendRequest("good", good.epoch, [step_completed(1, "y")]),
        ]
    )
    assert [r.ok for r in res] == [False, True]
    assert store.read_journal("stale") == stale_before
    assert store.read_journal("good")[-1].type == T.STEP_COMPLETED
    assert_row_is_fold(store, "stale")
    assert_row_is_fold(store, "good")


def test_the_outcome_index_refuses_a_second_outcome_at_a_position(store: Store) -> None:
    store.create_run(new_run("r1"))
    ls = take(store, "r1")
    assert append1(store, AppendRequest("r1", ls.epoch, [step_completed(1, "first")])).ok
    before_row, before_journal = run(store, "r1"), store.read_journal("r1")
    res = append1(
        store, AppendRequest("r1", ls.epoch, [step_started(2), step_completed(1, "second")])
    )
    assert not res.ok
    assert isinstance(res.error, StoreError) and res.error.integrity
    # nothing half-written: neither the event before the duplicate nor the row update
    assert run(store, "r1") == before_row
    assert store.read_journal("r1") == before_journal
    # the lease is still good for a correct append
    assert append1(store, AppendRequest("r1", ls.epoch, [step_completed(2, "ok")])).ok
    assert_row_is_fold(store, "r1")


def test_a_duplicate_outcome_within_one_request_is_refused(store: Store) -> None:
    store.create_run(new_run("r1"))
    ls = take(store, "r1")
    before = store.read_journal("r1")
    res = append1(store, AppendRequest("r1", ls.epoch, [step_completed(1), step_completed(1)]))
    assert not res.ok and isinstance(res.error, StoreError) and res.error.integrity
    assert store.read_journal("r1") == before
    assert_row_is_fold(store, "r1")


def test_a_batch_isolates_an_integrity_failure(store: Store) -> None:
    store.create_run(new_run("bad"))
    store.create_run(new_run("good"))
    bad = take(store, "bad")
    good = take(store, "good")
    assert append1(store, AppendRequest("bad", bad.epoch, [step_completed(1)])).ok
    bad_before = store.read_journal("bad")
    res = store.append(
        [
            AppendRequest("good", good.epoch, [step_completed(1)]),
            AppendRequest("bad", bad.epoch, [step_completed(1)]),
            AppendRequest("good", good.epoch, [step_completed(2)]),
        ]
    )
    assert [r.ok for r in res] == [True, False, True]
    assert isinstance(res[1].error, StoreError) and res[1].error.integrity
    assert store.read_journal("bad") == bad_before
    assert [e.position for e in store.read_journal("good")[2:]] == [1, 2]
    assert_row_is_fold(store, "good")
    assert_row_is_fold(store, "bad")


def test_seq_stays_gapless_through_a_whole_life(store: Store) -> None:
    store.create_run(new_run("r1"))
    ls = take(store, "r1")
    assert append1(store, AppendRequest("r1", ls.epoch, [step_started(1), step_completed(1)])).ok
    assert append1(store, AppendRequest("r1", ls.epoch, [suspended(wake_at=0.0)])).ok
    ls = take(store, "r1")
    prog = NewEvent(T.PROGRESS, ProgressData(value=0.5))
    stage = NewEvent(T.STAGE_ENTERED, StageData(), name="pay")
    assert append1(store, AppendRequest("r1", ls.epoch, [stage, prog, step_completed(2)])).ok
    store.cancel("r1", "test")  # held: its holder is asked, and ends it
    assert append1(store, AppendRequest("r1", ls.epoch, [run_cancelled()])).ok
    store.resume("r1")
    ls = take(store, "r1")
    assert append1(store, AppendRequest("r1", ls.epoch, [run_completed(42)])).ok
    journal = assert_row_is_fold(store, "r1")
    assert len(journal) == 13
    row = run(store, "r1")
    assert (row.status, row.output, row.progress, row.stage) == ("completed", enc(42), 1.0, "pay")


def test_the_row_follows_the_step_in_flight_and_its_progress(store: Store) -> None:
    store.create_run(new_run("r1"))
    ls = take(store, "r1")

    def step_progress(v: float, scope: ProgressScope) -> NewEvent:
        return NewEvent(T.PROGRESS, ProgressData(value=v, scope=scope), name="fetch")

    def row_now() -> tuple[Any, ...]:
        r = run(store, "r1")
        return (r.step, r.step_progress, r.progress, r.steps_completed)

    assert append1(store, AppendRequest("r1", ls.epoch, [step_started(1, "fetch")])).ok
    assert row_now() == ("fetch", None, None, 0)
    fraction = step_progress(0.4, ProgressScope.STEP)
    assert append1(store, AppendRequest("r1", ls.epoch, [fraction])).ok
    assert row_now() == ("fetch", 0.4, None, 0)
    assert append1(store, AppendRequest("r1", ls.epoch, [step_completed(1, name="fetch")])).ok
    assert row_now() == (None, None, None, 1)
    stage_p = step_progress(0.5, ProgressScope.STAGE)
    run_p = NewEvent(T.PROGRESS, ProgressData(value=0.3))
    assert append1(store, AppendRequest("r1", ls.epoch, [stage_p, run_p, step_started(2)])).ok
    assert row_now() == ("step", None, 0.3, 1)
    assert append1(store, AppendRequest("r1", ls.epoch, [suspended(wake_at=0.0)])).ok
    assert row_now()[0] is None
    ls = take(store, "r1")
    assert append1(store, AppendRequest("r1", ls.epoch, [step_started(2), run_completed()])).ok
    assert row_now() == (None, None, 1.0, 1)
    assert_row_is_fold(store, "r1")


def test_steps_of_the_last_completed_run_of_each_workflow(store: Store) -> None:
    assert store.steps_of_last_completed([WF, "other"]) == {}
    for run_id, steps in (("a", 2), ("b", 3)):
        store.create_run(new_run(run_id))
        ls = take(store, run_id)
        done = [step_completed(i) for i in range(1, steps + 1)]
        assert append1(store, AppendRequest(run_id, ls.epoch, [*done, run_completed()])).ok
    store.create_run(new_run("c"))
    ls = take(store, "c")
    evs = [step_completed(i) for i in range(1, 6)]
    assert append1(store, AppendRequest("c", ls.epoch, [*evs, run_failed()])).ok
    assert store.steps_of_last_completed([WF, WF, "other"]) == {WF: 3}


# ---------------------------------------------------------------- heartbeat, release


def test_heartbeat_extends_the_lease_and_reports_lost_runs(store: Store) -> None:
    store.create_run(new_run("kept"))
    store.create_run(new_run("lost"))
    kept = take(store, "kept", owner="a", ttl=0.2)
    lost = take(store, "lost", owner="a", ttl=0.05)
    time.sleep(0.1)
    take(store, "lost", owner="b")  # taken over
    held = {"kept": kept.epoch, "lost": lost.epoch, "ghost": 1}
    assert store.heartbeat("a", FAR, held) == {"lost", "ghost"}
    row = run(store, "kept")
    assert row.lease_expires_at is not None and row.lease_expires_at > time.time() + FAR / 2
    time.sleep(0.2)  # the old ttl has passed, the extended one has not
    assert store.lease("c", FAR, [WF], None, 10) == []
    assert run(store, "lost").lease_owner == "b"
    assert store.heartbeat("a", FAR, {}) == set()


def test_heartbeat_does_not_call_a_run_this_lease_just_ended_lost(store: Store) -> None:
    """A run that ended (or suspended) under the heartbeat's own epoch, between the
    worker's snapshot of its leases and the heartbeat, was not lost to anyone."""
    store.create_run(new_run("ended"))
    store.create_run(new_run("slept"))
    ended = take(store, "ended", owner="a")
    slept = take(store, "slept", owner="a")
    assert append1(store, AppendRequest("ended", ended.epoch, [run_completed()])).ok
    assert append1(store, AppendRequest("slept", slept.epoch, [suspended(time.time() + FAR)])).ok
    assert store.heartbeat("a", FAR, {"ended": ended.epoch, "slept": slept.epoch}) == set()


def test_heartbeat_under_a_stale_epoch_extends_nothing(store: Store) -> None:
    """G7: ``UPDATE ... WHERE id AND lease_epoch = :my_epoch``; a same-owner reclaim makes the
    old epoch stale, and its heartbeat must not keep the new lease alive."""
    store.create_run(new_run("r1"))
    old = take(store, "r1", owner="a", ttl=FAR)
    new = store.lease("a", 0.05, [WF], None, 10, reclaim=["a"])[0]
    assert new.epoch > old.epoch
    assert store.heartbeat("a", FAR, {"r1": old.epoch}) == {"r1"}
    time.sleep(0.1)
    assert leased_ids(store.lease("b", FAR, [WF], None, 10)) == ["r1"]


def test_release_makes_runs_due_now_under_a_new_epoch(store: Store) -> None:
    store.create_run(new_run("r1"))
    ls = take(store, "r1", owner="a")
    store.release({"r1": ls.epoch})
    row = run(store, "r1")
    assert row.status == "pending" and row.lease_owner is None
    assert row.lease_epoch > ls.epoch
    assert row.due_at is not None and row.due_at <= time.time()
    assert not append1(store, AppendRequest("r1", ls.epoch, [step_started(1)])).ok
    again = take(store, "r1", owner="b")
    assert not again.takeover and again.epoch > row.lease_epoch
    assert_row_is_fold(store, "r1")
    store.release({})


def test_owners_running(store: Store) -> None:
    store.create_run(new_run("r1"))
    store.create_run(new_run("r2"))
    store.create_run(new_run("r3"))
    take(store, "r1", owner="a")
    take(store, "r2", owner="b")
    assert sorted(store.owners_running([WF])) == ["a", "b"]
    assert store.owners_running(["other"]) == []


# ---------------------------------------------------------------- cancel, resume (G11)


def test_cancel_bumps_the_epoch_and_cancels_unfinished_children(store: Store) -> None:
    store.create_run(new_run("parent"))
    ls = take(store, "parent")
    kids = [new_run(f"parent:{i}", parent_id="parent") for i in (1, 2, 3)]
    res = append1(
        store,
        AppendRequest(
            "parent",
            ls.epoch,
            [
                *(child_started(i, f"parent:{i}") for i in (1, 2, 3)),
                suspended(waiting_for=WaitFor.children()),
            ],
            new_runs=kids,
        ),
    )
    assert res.ok
    sleeping = run(store, "parent")
    done = take(store, "parent:1")
    assert append1(store, AppendRequest("parent:1", done.epoch, [run_completed()])).ok
    held = take(store, "parent:2")  # running under a lease
    grandchild = new_run("parent:3:1", parent_id="parent:3")
    store.create_run(grandchild)

    got = store.cancel("parent", "user asked")
    assert got is not None
    row, cancelled = got
    assert cancelled and row.status == "cancelled"
    assert row.lease_epoch > sleeping.lease_epoch
    last = store.read_journal("parent")[-1]
    assert (last.type, last.epoch) == (T.RUN_CANCELLED, row.lease_epoch)
    assert decode_data(last.type, last.data).text == "user asked"
    assert run(store, "parent:1").status == "completed"
    for rid in ("parent:3", "parent:3:1"):
        assert run(store, rid).status == "cancelled"
        assert store.read_journal(rid)[-1].type == T.RUN_CANCELLED
    # The child a live lease holds is asked to stop, not ended (G11): its holder ends it.
    asked = run(store, "parent:2")
    assert asked.status == "running" and asked.cancel_requested_at is not None
    assert [r.id for r in store.cancel_requests()] == ["parent:2"]
    assert append1(store, AppendRequest("parent:2", held.epoch, [run_cancelled()])).ok
    assert store.cancel_requests() == []
    # the old holder's next append fails (G7/G11)
    assert not append1(store, AppendRequest("parent", ls.epoch, [step_completed(9)])).ok
    assert store.lease("w", FAR, [WF], None, 10) == []
    for rid in ("parent", "parent:1", "parent:2", "parent:3", "parent:3:1"):
        assert_row_is_fold(store, rid)


def test_cancel_of_a_sleeping_run_is_immediate(store: Store) -> None:
    store.create_run(new_run("r1"))
    ls = take(store, "r1")
    assert append1(store, AppendRequest("r1", ls.epoch, [suspended(wake_at=time.time() + FAR)])).ok
    assert run(store, "r1").status == "sleeping"
    got = store.cancel("r1", "stop")
    assert got is not None
    row, cancelled = got
    assert cancelled and row.status == "cancelled" and row.due_at is None
    # A second cancel finds it ended: the same row, and not cancelled by this call.
    assert store.cancel("r1", "again") == (run(store, "r1"), False)
    assert types(store, "r1").count(T.RUN_CANCELLED) == 1
    assert_row_is_fold(store, "r1")


def test_cancel_of_a_held_run_asks_its_holder(store: Store) -> None:
    store.create_run(new_run("r1"))
    ls = take(store, "r1")
    got = store.cancel("r1", "stop")
    assert got is not None
    row, asked = got
    assert asked and row.status == "running" and row.cancel_requested_at is not None
    assert row.lease_epoch == ls.epoch  # the holder may still record what its code does
    assert append1(store, AppendRequest("r1", ls.epoch, [step_completed(1)])).ok
    # A second cancel: asked already, nothing changes.
    assert store.cancel("r1", "again") == (run(store, "r1"), False)
    assert [r.id for r in store.cancel_requests()] == ["r1"]
    assert append1(store, AppendRequest("r1", ls.epoch, [run_cancelled()])).ok
    assert run(store, "r1").status == "cancelled" and store.cancel_requests() == []
    assert store.cancel("r1", "late") == (run(store, "r1"), False)
    # Resumed, the run carries no request any more.
    assert store.resume("r1") is not None
    assert run(store, "r1").cancel_requested_at is None
    assert_row_is_fold(store, "r1")


def test_a_request_left_on_a_run_that_suspended_is_carried_out_by_a_cancel(
    store: Store,
) -> None:
    store.create_run(new_run("r1"))
    ls = take(store, "r1")
    store.cancel("r1", "stop")  # asked, and the holder's suspension commits just after
    assert append1(store, AppendRequest("r1", ls.epoch, [suspended(wake_at=time.time() + FAR)])).ok
    assert [(r.id, r.status) for r in store.cancel_requests()] == [("r1", "sleeping")]
    got = store.cancel("r1", "stop")  # no worker holds it now: ends at once
    assert got is not None and got[1] and got[0].status == "cancelled"
    assert store.cancel_requests() == []
    assert_row_is_fold(store, "r1")


def test_cancel_of_a_run_whose_lease_expired_ends_it_at_once(store: Store) -> None:
    store.create_run(new_run("r1"))
    ls = take(store, "r1", ttl=0.05)
    time.sleep(0.1)
    got = store.cancel("r1", "stop")
    assert got is not None and got[1] and got[0].status == "cancelled"
    assert not append1(store, AppendRequest("r1", ls.epoch, [step_completed(1)])).ok
    assert store.cancel_requests() == []


def test_cancel_requests_are_pushed_to_listeners(store: Store) -> None:
    heard: list[str] = []
    arrived = threading.Event()

    def on_cancel(run_id: str) -> None:
        heard.append(run_id)
        if run_id or store.cancel_requests():
            arrived.set()

    handle = store.listen_cancels(on_cancel)
    assert handle is not None
    try:
        store.create_run(new_run("r1"))
        take(store, "r1")
        # A Postgres listener that was not LISTENing yet looks the requests up once it is.
        store.cancel("r1", "stop")
        assert arrived.wait(10)
        assert "r1" in heard or [r.id for r in store.cancel_requests()] == ["r1"]
    finally:
        handle.stop()


def test_cancel_of_an_ended_or_unknown_run(store: Store) -> None:
    assert store.cancel("ghost", "x") is None
    store.create_run(new_run("r1"))
    ls = take(store, "r1")
    assert append1(store, AppendRequest("r1", ls.epoch, [run_completed()])).ok
    before = run(store, "r1")
    assert store.cancel("r1", "too late") == (before, False)
    assert types(store, "r1")[-1] == T.RUN_COMPLETED


@pytest.mark.parametrize("how", ["failed", "cancelled"])
def test_resume_makes_an_ended_run_pending_again(store: Store, how: str) -> None:
    store.create_run(new_run("r1"))
    ls = take(store, "r1")
    assert append1(store, AppendRequest("r1", ls.epoch, [step_completed(1)])).ok
    if how == "failed":
        assert append1(store, AppendRequest("r1", ls.epoch, [run_failed()])).ok
    else:
        assert append1(store, AppendRequest("r1", ls.epoch, [suspended(wake_at=FAR)])).ok
        store.cancel("r1", "x")
    ended = run(store, "r1")
    assert ended.status == how
    row = store.resume("r1")
    assert row is not None
    assert (row.status, row.attempt) == ("pending", 2)
    assert row.lease_epoch > ended.lease_epoch
    assert (row.error_type, row.finished_at, row.output) == (None, None, None)
    last = store.read_journal("r1")[-1]
    assert (last.type, last.attempt, last.epoch) == (T.RUN_RESUMED, 2, row.lease_epoch)
    assert_row_is_fold(store, "r1")
    again = take(store, "r1")
    assert again.epoch > row.lease_epoch
    assert append1(store, AppendRequest("r1", again.epoch, [step_completed(2)])).ok
    assert_row_is_fold(store, "r1")


def test_resume_of_a_completed_or_live_run_does_nothing(store: Store) -> None:
    assert store.resume("ghost") is None
    store.create_run(new_run("done"))
    store.create_run(new_run("live"))
    ls = take(store, "done")
    assert append1(store, AppendRequest("done", ls.epoch, [run_completed()])).ok
    take(store, "live")
    for rid in ("done", "live"):
        before, journal = run(store, rid), store.read_journal(rid)
        assert store.resume(rid) == before
        assert store.read_journal(rid) == journal


# ---------------------------------------------------------------- signals (G4)


def test_signals_are_consumed_exactly_once_oldest_first(store: Store) -> None:
    store.create_run(new_run("r1"))
    assert store.send_signal("r1", "approve", enc("first"))
    assert store.send_signal("r1", "other", enc("not me"))
    assert store.send_signal("r1", "approve", enc("second"))
    assert store.send_signal("r1", "approve", None)
    ls = take(store, "r1")
    got: list[bytes | None] = []
    for pos in (1, 2, 3, 4):
        res = append1(
            store,
            AppendRequest(
                "r1", ls.epoch, [step_started(10 + pos)], consume_signal=("approve", pos)
            ),
        )
        assert res.ok
        got.append(res.signal[1] if res.signal is not None else b"<none>")
    assert got == [enc("first"), enc("second"), None, b"<none>"]
    received = [e for e in store.read_journal("r1") if e.type == T.SIGNAL_RECEIVED]
    assert [(e.position, e.name) for e in received] == [
        (1, "approve"),
        (2, "approve"),
        (3, "approve"),
    ]
    payloads = [decode_data(e.type, e.data) for e in received]
    assert all(isinstance(p, SignalData) for p in payloads)
    assert [bytes(p.payload) if p.payload is not None else None for p in payloads] == got[:3]
    # the signal_received comes before the request's own events
    journal = store.read_journal("r1")
    i = journal.index(received[0])
    assert journal[i + 1].type == T.STEP_STARTED
    assert_row_is_fold(store, "r1")


def test_a_stale_append_consumes_no_signal(store: Store) -> None:
    store.create_run(new_run("r1"))
    store.send_signal("r1", "go", enc(1))
    old = take(store, "r1", ttl=0.01)
    time.sleep(0.03)
    new = take(store, "r1", owner="b")
    res = append1(store, AppendRequest("r1", old.epoch, [], consume_signal=("go", 1)))
    assert not res.ok and res.signal is None
    res = append1(store, AppendRequest("r1", new.epoch, [], consume_signal=("go", 1)))
    assert res.ok and res.signal is not None and res.signal[1] == enc(1)
    assert_row_is_fold(store, "r1")


def test_a_retried_append_that_had_committed_reports_the_signal_it_consumed(
    store: Store,
) -> None:
    """An append consuming a signal commits but its answer is lost; the committer's retry
    (``retried=True``, same ``append_id``) must learn which signal it consumed, not None."""
    store.create_run(new_run("r1"))
    store.send_signal("r1", "go", enc("payload"))
    ls = take(store, "r1")
    req = AppendRequest("r1", ls.epoch, [step_started(1)], consume_signal=("go", 2))
    first = append1(store, req)
    assert first.ok and first.signal is not None
    req.retried = True
    again = append1(store, req)
    assert again.ok and again.last_seq == first.last_seq
    assert again.signal == first.signal
    assert [e.type for e in store.read_journal("r1")].count(T.SIGNAL_RECEIVED) == 1


def test_send_signal_to_an_unknown_run(store: Store) -> None:
    assert store.send_signal("ghost", "x", None) is False


def test_a_run_waiting_for_a_signal_already_in_its_inbox_is_due_at_once(store: Store) -> None:
    store.create_run(new_run("r1"))
    ls = take(store, "r1")
    assert store.send_signal("r1", "approve", enc(True))  # arrives while the run is running
    res = append1(
        store,
        AppendRequest("r1", ls.epoch, [suspended(time.time() + FAR, WaitFor.signal("approve"))]),
    )
    assert res.ok
    row = run(store, "r1")
    assert row.status == "sleeping"
    assert row.due_at is not None and row.due_at <= time.time()
    assert leased_ids(store.lease("w", FAR, [WF], None, 10)) == ["r1"]
    assert_row_is_fold(store, "r1")


def test_a_signal_wakes_a_run_waiting_for_it(store: Store) -> None:
    store.create_run(new_run("r1"))
    ls = take(store, "r1")
    res = append1(
        store, AppendRequest("r1", ls.epoch, [suspended(None, WaitFor.signal("approve"))])
    )
    assert res.ok
    assert store.lease("w", FAR, [WF], None, 10) == []
    store.send_signal("r1", "unrelated", None)
    assert store.lease("w", FAR, [WF], None, 10) == []
    store.send_signal("r1", "approve", enc(1))
    assert leased_ids(store.lease("w", FAR, [WF], None, 10)) == ["r1"]


# ---------------------------------------------------------------- children


def test_children_inserted_with_an_append_and_a_parent_woken_by_their_end(store: Store) -> None:
    store.create_run(new_run("p"))
    store.create_run(new_run("p:2", workflow="taken"))  # an existing id is left as it is
    ls = take(store, "p")
    res = append1(
        store,
        AppendRequest(
            "p",
            ls.epoch,
            [child_started(1, "p:1"), child_started(2, "p:2")],
            new_runs=[new_run("p:1", parent_id="p"), new_run("p:2", parent_id="p")],
        ),
    )
    assert res.ok
    assert run(store, "p:1").parent_id == "p"
    assert run(store, "p:2").workflow == "taken"
    res = append1(
        store,
        AppendRequest("p", ls.epoch, [suspended(None, WaitFor.children())], wait_children=["p:1"]),
    )
    assert res.ok
    assert leased_ids(store.lease("w", FAR, [WF], None, 10)) == ["p:1"]
    child = store.get_run("p:1")
    assert child is not None
    assert append1(store, AppendRequest("p:1", child.lease_epoch, [run_completed()])).ok
    assert leased_ids(store.lease("w", FAR, [WF], None, 10)) == ["p"]


def test_a_parent_waiting_for_an_ended_child_is_due_at_once(store: Store) -> None:
    store.create_run(new_run("p"))
    ls = take(store, "p")
    append1(store, AppendRequest("p", ls.epoch, [], new_runs=[new_run("p:1", parent_id="p")]))
    store.cancel("p:1", "x")
    res = append1(
        store,
        AppendRequest("p", ls.epoch, [suspended(None, WaitFor.children())], wait_children=["p:1"]),
    )
    assert res.ok
    assert leased_ids(store.lease("w", FAR, [WF], None, 10)) == ["p"]


# ---------------------------------------------------------------- fork


def test_fork_copies_the_kept_rows(store: Store) -> None:
    store.create_run(new_run("orig"))
    ls = take(store, "orig")
    evs = [step_started(1), step_completed(1, "a"), step_started(2), step_completed(2, "b")]
    assert append1(store, AppendRequest("orig", ls.epoch, evs)).ok
    assert append1(store, AppendRequest("orig", ls.epoch, [run_completed()])).ok
    keep = [e for e in store.read_journal("orig") if e.position == 1]
    new = NewRun(id="copy", workflow=WF, queue="default", input=enc(["orig"]), forked_from="orig")
    row = store.fork("orig", new, keep)
    assert (row.id, row.status, row.steps_completed, row.last_seq) == ("copy", "pending", 1, 3)
    journal = assert_row_is_fold(store, "copy")
    assert decode_data(journal[0].type, journal[0].data).forked_from == "orig"
    copied = [(e.type, e.position, e.name, e.attempt, e.data) for e in journal[1:]]
    assert copied == [(e.type, e.position, e.name, e.attempt, e.data) for e in keep]
    # the copy's outcomes are protected by the unique index like any other
    lease = take(store, "copy")
    res = append1(store, AppendRequest("copy", lease.epoch, [step_completed(1, "again")]))
    assert not res.ok and isinstance(res.error, StoreError) and res.error.integrity
    assert append1(store, AppendRequest("copy", lease.epoch, [step_completed(2, "b2")])).ok
    assert_row_is_fold(store, "copy")
    assert_row_is_fold(store, "orig")
    with pytest.raises(IdConflictError):
        store.fork("orig", new, keep)
