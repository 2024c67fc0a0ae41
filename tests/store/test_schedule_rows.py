"""The schedules' transactions of the log, on every backend: a code's declarations saved
(kept, changed, removed), a tick fired by many transactions at once (one run), a paused row
skipped, and a plan that raises (nothing written)."""

from __future__ import annotations

import threading

import pytest

from durable import IdConflictError
from durable.codec import Codec
from durable.log import Store
from durable.log.schedule_store import Firing, NewSchedule, ScheduleRow
from durable.log.store import NewRun

ARGS = Codec().encode_args((), {}, "args")


def new(name: str = "nightly", cron: str = "0 3 * * *", app: str | None = "shop") -> NewSchedule:
    return NewSchedule(name, "report", "default", cron, "UTC", ARGS, "latest", app)


def at(when: float) -> object:
    """A ``first_tick`` that answers ``when``."""
    return lambda _new, _now: when


def run_of(row: ScheduleRow, tick: float) -> NewRun:
    return NewRun(id=f"{row.name}:{tick}", workflow=row.workflow, queue=row.queue, input=ARGS)


def tick_plan(row: ScheduleRow, now: float) -> Firing:
    """Start the due tick and move on to a day after now."""
    assert row.next_tick is not None
    return Firing(
        runs=[run_of(row, row.next_tick)],
        next_tick=now + 86400,
        last=(row.next_tick, f"{row.name}:{row.next_tick}"),
    )


def test_a_code_declaration_is_kept_changed_and_removed(store: Store) -> None:
    store.save_schedules("shop", [new(), new("hourly", "0 * * * *")], at(100.0))  # type: ignore[arg-type]
    store.pause_schedule("nightly", True, at(0.0))  # type: ignore[arg-type]
    store.save_schedules("shop", [new(), new("hourly", "0 * * * *")], at(999.0))  # type: ignore[arg-type]
    rows = {r.name: r for r in store.get_schedules()}
    assert rows["nightly"].paused and rows["nightly"].next_tick == 100.0  # a restart keeps both
    store.save_schedules("shop", [new(cron="0 4 * * *")], at(200.0))  # type: ignore[arg-type]
    rows = {r.name: r for r in store.get_schedules()}
    assert list(rows) == ["nightly"]  # "hourly" is no longer declared: deleted
    assert rows["nightly"].cron == "0 4 * * *" and rows["nightly"].next_tick == 200.0
    assert rows["nightly"].paused  # a new cron keeps the pause


def test_another_apps_rows_and_client_rows_are_left_alone(store: Store) -> None:
    store.create_schedule(new("made", app=None), at(5.0))  # type: ignore[arg-type]
    store.save_schedules("other", [new("theirs", app="other")], at(5.0))  # type: ignore[arg-type]
    store.save_schedules("shop", [], at(5.0))  # type: ignore[arg-type]
    assert [r.name for r in store.get_schedules()] == ["made", "theirs"]


def test_a_declaration_cannot_take_a_client_made_name(store: Store) -> None:
    store.create_schedule(new("nightly", app=None), at(5.0))  # type: ignore[arg-type]
    with pytest.raises(IdConflictError, match=r"made by client\.create_schedule"):
        store.save_schedules("shop", [new("x"), new("nightly")], at(5.0))  # type: ignore[arg-type]
    assert [r.name for r in store.get_schedules()] == ["nightly"]  # nothing written


def test_create_is_idempotent_on_the_name(store: Store) -> None:
    row, created = store.create_schedule(new(app=None), at(5.0))  # type: ignore[arg-type]
    again, created_again = store.create_schedule(new(cron="* * * * *", app=None), at(9.0))  # type: ignore[arg-type]
    assert created and not created_again and again == row and again.cron == "0 3 * * *"
    assert store.delete_schedule("nightly") and not store.delete_schedule("nightly")


def test_a_due_tick_fired_by_many_transactions_at_once_has_one_run(store: Store) -> None:
    store.save_schedules("shop", [new()], at(1.0))  # type: ignore[arg-type]
    barrier = threading.Barrier(4)
    created: list[list[str]] = []

    def fire() -> None:
        barrier.wait()
        created.append([r.id for r in store.fire_schedules(["report"], tick_plan).created])

    threads = [threading.Thread(target=fire) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(created) == [[], [], [], ["nightly:1.0"]]
    (row,) = store.get_schedules()
    assert (row.last_tick, row.last_run_id) == (1.0, "nightly:1.0")
    assert row.next_tick is not None and row.next_tick > 86400
    assert store.get_run("nightly:1.0") is not None


def test_a_paused_or_foreign_schedule_is_not_fired(store: Store) -> None:
    store.save_schedules("shop", [new()], at(1.0))  # type: ignore[arg-type]
    assert store.fire_schedules(["another"], tick_plan).created == []
    store.pause_schedule("nightly", True, at(0.0))  # type: ignore[arg-type]
    assert store.next_schedule_tick(["report"])[1] is None
    assert store.fire_schedules(["report"], tick_plan).created == []
    store.pause_schedule("nightly", False, at(7.0))  # type: ignore[arg-type]
    assert store.next_schedule_tick(["report"])[1] == 7.0


def test_a_plan_that_raises_writes_nothing(store: Store) -> None:
    store.save_schedules("shop", [new()], at(1.0))  # type: ignore[arg-type]

    def refuse(row: ScheduleRow, now: float) -> Firing:
        raise ValueError("no")

    with pytest.raises(ValueError, match="no"):
        store.start_schedule_runs("nightly", refuse)
    assert store.get_run("nightly:1.0") is None
    assert store.start_schedule_runs("missing", tick_plan) is None
    got = store.start_schedule_runs("nightly", tick_plan)
    assert got is not None and got[2] == {"nightly:1.0"}
    (row,) = store.get_schedules()
    assert row.next_tick == 1.0 and row.last_run_id == "nightly:1.0"  # next_tick untouched
