"""Defining work: workflows and steps (sync and async), names, stages, progress, messages,
outputs, deterministic now/random/uuid4, child workflows, parallel steps, app.sequence, and
steps called outside a workflow or inside another step."""

from __future__ import annotations

import asyncio
import dataclasses
import enum
import threading
import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import NamedTuple

import msgspec
import pytest

import durable
from durable import Status
from durable.errors import NotInRunError


def _names(events, type_):
    return [e.name for e in events if e.type == type_]


def _local(test: str, name: str) -> str:
    """The ``__qualname__`` of function ``name`` defined inside test function ``test``."""
    return f"{test}.<locals>.{name}"


# ---------------------------------------------------------------- sync and async


def test_sync_workflow_with_sync_steps_runs_each_step_once(app, client):
    calls = []

    @app.step()
    def add(a: int, b: int) -> int:
        calls.append(("add", a, b))
        return a + b

    @app.step()
    def mul(a: int, b: int) -> int:
        calls.append(("mul", a, b))
        return a * b

    @app.workflow()
    def flow(x: int) -> int:
        return mul(add(x, 1), 10)

    with app.worker():
        h = client.start(flow, 4)
        assert h.result(timeout=10) == 50

    assert calls == [("add", 4, 1), ("mul", 5, 10)]
    assert h.status() == Status.COMPLETED
    events = h.events()
    completed = [e for e in events if e.type == "step_completed"]
    assert [e.position for e in completed] == [1, 2]
    assert events[0].type == "run_started"
    assert events[-1].type == "run_completed"


def test_async_workflow_awaits_sync_and_async_steps(app, client):
    calls = []

    @app.step()
    async def fetch(x: int) -> int:
        await asyncio.sleep(0.01)
        calls.append("fetch")
        return x * 2

    @app.step()
    def store(x: int) -> str:
        calls.append("store")
        return f"stored {x}"

    @app.workflow()
    async def flow(x: int) -> str:
        y = await fetch(x)
        return await store(y)

    with app.worker():
        h = client.start(flow, 21)
        assert h.result(timeout=10) == "stored 42"
    assert calls == ["fetch", "store"]


def test_sync_workflow_may_call_async_step(app, client):
    calls = []

    @app.step()
    async def twice(x: int) -> int:
        calls.append(x)
        return x * 2

    @app.workflow()
    def flow(x: int) -> int:
        return twice(x) + 1

    with app.worker():
        assert client.start(flow, 5).result(timeout=10) == 11
    assert calls == [5]


# ---------------------------------------------------------------- names


def test_default_names_are_qualnames(app, client):
    @app.step()
    def my_step() -> int:
        return 1

    @app.workflow()
    def my_flow() -> int:
        return my_step()

    with app.worker():
        h = client.start(my_flow)
        h.result(timeout=10)

    test = "test_default_names_are_qualnames"
    assert h.info().workflow == _local(test, "my_flow")
    assert _names(h.events(), "step_completed") == [_local(test, "my_step")]
    assert [r.workflow for r in client.list_runs()] == [_local(test, "my_flow")]


def test_explicit_names_and_start_by_name(app, client):
    @app.step(name="charge-card")
    def charge(amount: int) -> int:
        return amount

    @app.workflow(name="checkout")
    def flow(amount: int) -> int:
        return charge(amount)

    with app.worker():
        h = client.start("checkout", 7)
        assert h.result(timeout=10) == 7

    assert h.info().workflow == "checkout"
    assert _names(h.events(), "step_completed") == ["charge-card"]
    assert [r.workflow for r in client.list_runs()] == ["checkout"]


# ---------------------------------------------------------------- stage/progress/message/output


def test_stages_messages_outputs_tree(app, client):
    @app.step()
    def charge(order: str) -> dict:
        return {"order": order, "paid": 100}

    @app.step()
    def ship(order: str) -> str:
        return f"shipped {order}"

    @app.step()
    def audit() -> int:
        return 3

    @app.workflow()
    def checkout(order: str) -> str:
        with durable.stage("payment"):
            receipt = charge(order)
            durable.progress(0.5)
            durable.message("charged", amount=100)
            durable.output("receipt", receipt)
        with durable.stage("shipping"):
            label = ship(order)
        audit()
        durable.output("note", "done")
        return label

    with app.worker():
        h = client.start(checkout, "o-1")
        assert h.result(timeout=10) == "shipped o-1"

    test = "test_stages_messages_outputs_tree"
    outputs = h.outputs()
    assert outputs["payment"]["receipt"] == {"order": "o-1", "paid": 100}
    assert outputs["payment"][_local(test, "charge")] == {"result": {"order": "o-1", "paid": 100}}
    assert outputs["shipping"][_local(test, "ship")] == {"result": "shipped o-1"}
    assert outputs["main"][_local(test, "audit")] == {"result": 3}
    assert outputs["main"]["note"] == "done"
    assert set(outputs) == {"payment", "shipping", "main"}

    events = h.events()
    types = [e.type for e in events]
    assert _names(events, "stage_entered") == ["payment", "shipping"]
    assert _names(events, "stage_left") == ["payment", "shipping"]
    # The stage brackets its step.
    entered = types.index("stage_entered")
    left = types.index("stage_left")
    first_step = types.index("step_completed")
    assert entered < first_step < left
    messages = [e for e in events if e.type == "message"]
    assert len(messages) == 1
    assert "charged" in repr(messages[0].data)
    assert "progress" in types
    assert "output" in types


def test_run_progress_is_visible_while_running_and_one_when_done(app, client, wait_until):
    @app.workflow()
    def flow() -> str:
        durable.progress(0.25)
        return durable.wait_signal("go", timeout=30)

    with app.worker():
        h = client.start(flow)
        wait_until(lambda: h.info().progress == 0.25, what="progress 0.25")
        client.signal(h.id, "go", "ok")
        assert h.result(timeout=10) == "ok"
    assert h.info().progress == 1.0


def test_in_run_functions_outside_a_workflow():
    # Journaled calls fail clearly outside a run; reporting calls are no-ops there, so that a
    # step using them stays callable as a plain function.
    assert durable.in_run() is False
    for call in (lambda: durable.sleep(0.01), durable.now, durable.random, durable.uuid4):
        with pytest.raises(NotInRunError):
            call()
    with durable.stage("s"):
        durable.progress(0.5)
        durable.message("m")
        durable.output("k", 1)


# ---------------------------------------------------------------- now/random/uuid4


def test_now_random_uuid4_are_deterministic_across_replay(app, client):
    seen = []

    @app.step()
    def noop() -> int:
        return 0

    @app.workflow()
    def flow() -> list:
        t = durable.now()
        r = durable.random()
        u = durable.uuid4()
        seen.append((t, r, u))
        durable.sleep(0.2)  # the run is suspended and its code re-runs from the top
        noop()
        return [t.isoformat(), r, str(u)]

    with app.worker():
        h = client.start(flow)
        result = h.result(timeout=10)

    t, r, u = seen[0]
    assert all(s == seen[0] for s in seen), seen
    assert isinstance(t, datetime)
    assert t.tzinfo is not None
    assert abs((datetime.now(t.tzinfo) - t).total_seconds()) < 60
    assert 0.0 <= r < 1.0
    assert isinstance(u, uuid.UUID)
    assert u.version == 4
    assert result == [t.isoformat(), r, str(u)]

    # A replay re-runs the code against the journal: the same values come back.
    before = len(seen)
    assert client.replay(h.id) == result
    assert len(seen) == before + 1
    assert seen[-1] == seen[0]

    recorded = [e for e in h.events() if e.type == "value_recorded"]
    assert [e.position for e in recorded] == [1, 2, 3]


def test_info_inside_workflow_and_step(app, client):
    got = {}

    @app.step()
    def inner() -> int:
        got["step"] = durable.info()
        return 1

    @app.workflow()
    def flow() -> int:
        got["flow"] = durable.info()
        durable.now()  # position 1
        return inner()  # position 2

    with app.worker():
        h = client.start(flow)
        h.result(timeout=10)

    assert isinstance(got["flow"], durable.RunInfo)
    assert got["flow"].id == h.id
    assert got["flow"].workflow == _local("test_info_inside_workflow_and_step", "flow")
    assert got["flow"].status == Status.RUNNING
    step = got["step"]
    assert step.id == h.id
    assert step.step_position == 2
    assert step.step_key == f"{h.id}:2"
    assert step.step_attempt == 1
    assert step.step_name == _local("test_info_inside_workflow_and_step", "inner")


# ---------------------------------------------------------------- child workflows


def test_sync_workflow_calling_another_workflow_starts_a_child_run(app, client):
    calls = []

    @app.step()
    def square(x: int) -> int:
        calls.append(x)
        return x * x

    @app.workflow()
    def child(x: int) -> int:
        return square(x) + 1

    @app.workflow()
    def parent(x: int) -> int:
        a = child(x)
        b = child(x + 1)
        return a + b

    with app.worker():
        h = client.start(parent, 2)
        assert h.result(timeout=15) == (4 + 1) + (9 + 1)

    assert sorted(calls) == [2, 3]
    runs = client.list_runs()
    assert len(runs) == 3
    children = [r for r in runs if r.id != h.id]
    test = "test_sync_workflow_calling_another_workflow_starts_a_child_run"
    assert {r.workflow for r in children} == {_local(test, "child")}
    assert {r.parent_id for r in children} == {h.id}
    assert all(r.status == Status.COMPLETED for r in children)
    # G9: child ids are deterministic, "{parent}:{position}".
    assert sorted(r.id for r in children) == [f"{h.id}:1", f"{h.id}:2"]
    assert [e.position for e in h.events() if e.type == "child_started"] == [1, 2]


def test_async_workflow_awaits_child_workflow(app, client):
    @app.step()
    async def greet(name: str) -> str:
        return f"hello {name}"

    @app.workflow()
    async def child(name: str) -> str:
        return await greet(name)

    @app.workflow()
    async def parent(name: str) -> str:
        return (await child(name)).upper()

    with app.worker():
        h = client.start(parent, "ada")
        assert h.result(timeout=15) == "HELLO ADA"
    children = [r for r in client.list_runs() if r.parent_id == h.id]
    assert len(children) == 1
    assert client.get(children[0].id).result(timeout=5) == "hello ada"


def test_failed_child_fails_parent_unless_caught(app, client):
    @app.workflow()
    def child(x: int) -> int:
        raise ValueError(f"bad {x}")

    @app.workflow()
    def parent() -> str:
        try:
            child(1)
        except Exception as exc:
            return f"caught {type(exc).__name__}"
        return "no error"

    with app.worker():
        h = client.start(parent)
        result = h.result(timeout=15)
    assert result.startswith("caught")
    kids = [r for r in client.list_runs() if r.parent_id == h.id]
    assert [r.status for r in kids] == [Status.FAILED]


# ---------------------------------------------------------------- parallel steps


def test_asyncio_gather_runs_steps_concurrently_with_call_order_positions(app, client):
    lock = threading.Lock()
    state = {"running": 0, "max": 0}
    calls = []

    def make(label: str):
        @app.step(name=f"par-{label}")
        async def step(x: int) -> str:
            with lock:
                state["running"] += 1
                state["max"] = max(state["max"], state["running"])
                calls.append(label)
            await asyncio.sleep(0.3)
            with lock:
                state["running"] -= 1
            return f"{label}{x}"

        return step

    a, b, c = make("a"), make("b"), make("c")

    @app.workflow()
    async def flow() -> list:
        return list(await asyncio.gather(a(1), b(2), c(3)))

    with app.worker():
        h = client.start(flow)
        assert h.result(timeout=10) == ["a1", "b2", "c3"]

    assert sorted(calls) == ["a", "b", "c"]
    assert state["max"] == 3
    positions = {e.name: e.position for e in h.events() if e.type == "step_completed"}
    assert positions == {"par-a": 1, "par-b": 2, "par-c": 3}


def test_gathered_steps_replay_without_running_again(app, client):
    calls = []

    @app.step()
    async def part(x: int) -> int:
        calls.append(x)
        return x * 10

    @app.workflow()
    async def flow() -> int:
        values = await asyncio.gather(part(1), part(2), part(3))
        durable.sleep(0.2)
        return sum(values)

    with app.worker():
        h = client.start(flow)
        assert h.result(timeout=10) == 60
    assert sorted(calls) == [1, 2, 3]
    assert client.replay(h.id) == 60
    assert sorted(calls) == [1, 2, 3]


# ---------------------------------------------------------------- app.sequence


def test_sequence_passes_each_result_to_the_next_step(app, client):
    calls = []

    @app.step()
    def inc(x: int) -> int:
        calls.append("inc")
        return x + 1

    @app.step()
    def double(x: int) -> int:
        calls.append("double")
        return x * 2

    @app.step()
    def show(x: int) -> str:
        calls.append("show")
        return f"={x}"

    app.sequence("pipeline", [inc, double, show])

    with app.worker():
        h = client.start("pipeline", 3)
        assert h.result(timeout=10) == "=8"

    assert calls == ["inc", "double", "show"]
    assert h.info().workflow == "pipeline"
    test = "test_sequence_passes_each_result_to_the_next_step"
    completed = [(e.name, e.position) for e in h.events() if e.type == "step_completed"]
    assert completed == [
        (_local(test, "inc"), 1),
        (_local(test, "double"), 2),
        (_local(test, "show"), 3),
    ]


# ---------------------------------------------------------------- plain calls


def test_step_called_outside_a_workflow_is_a_plain_call(app, client):
    calls = []

    @app.step(retry=durable.Retry(attempts=3, initial_delay=0.01))
    def add(a: int, b: int) -> int:
        calls.append((a, b))
        return a + b

    @app.step()
    async def aadd(a: int, b: int) -> int:
        calls.append(("async", a, b))
        return a + b

    assert add(2, 3) == 5
    assert asyncio.run(aadd(1, 1)) == 2
    assert calls == [(2, 3), ("async", 1, 1)]
    assert client.list_runs() == []


def test_step_called_outside_a_workflow_raises_plainly(app):
    calls = []

    @app.step(retry=durable.Retry(attempts=3, initial_delay=0.01))
    def boom() -> None:
        calls.append(1)
        raise KeyError("x")

    with pytest.raises(KeyError):
        boom()
    assert calls == [1]  # a plain call: no retry policy


def test_step_called_inside_another_step_is_not_journaled(app, client):
    calls = []

    @app.step(name="inner")
    def inner(x: int) -> int:
        calls.append("inner")
        return x + 1

    @app.step(name="outer")
    def outer(x: int) -> int:
        calls.append("outer")
        return inner(x) * 2

    @app.workflow()
    def flow(x: int) -> int:
        return outer(x)

    with app.worker():
        h = client.start(flow, 1)
        assert h.result(timeout=10) == 4

    assert calls == ["outer", "inner"]
    events = h.events()
    assert all(e.name != "inner" for e in events)
    assert _names(events, "step_completed") == ["outer"]
    assert [e.position for e in events if e.type == "step_completed"] == [1]


# ---------------------------------------------------------------- codec


class Color(enum.Enum):
    RED = "red"
    BLUE = "blue"


@dataclasses.dataclass
class Bag:
    when: datetime
    day: date
    span: timedelta
    uid: uuid.UUID
    amount: Decimal
    tags: set[str]
    raw: bytes
    color: Color
    pair: tuple[int, str]


class Point(msgspec.Struct):
    x: int
    y: int


class Pair(NamedTuple):
    left: int
    right: str


def _bag() -> Bag:
    return Bag(
        when=datetime(2024, 5, 1, 12, 30, tzinfo=UTC),
        day=date(2024, 5, 1),
        span=timedelta(seconds=90),
        uid=uuid.UUID("12345678-1234-5678-1234-567812345678"),
        amount=Decimal("10.25"),
        tags={"a", "b"},
        raw=b"\x00\xff",
        color=Color.BLUE,
        pair=(1, "one"),
    )


def test_results_decode_into_annotations_in_live_and_replayed_code(app, client):
    seen = []

    @app.step()
    def make_bag() -> Bag:
        return _bag()

    @app.step()
    def make_point() -> Point:
        return Point(1, 2)

    @app.step()
    def make_pair() -> Pair:
        return Pair(3, "three")

    @app.workflow()
    def flow() -> Bag:
        bag = make_bag()
        point = make_point()
        pair = make_pair()
        seen.append((type(bag), type(point), type(pair), bag))
        durable.sleep(0.1)  # code re-runs against the journal after this
        return bag

    with app.worker():
        h = client.start(flow)
        result = h.result(timeout=10)

    assert result == _bag()
    assert len(seen) >= 1
    for bag_type, point_type, pair_type, bag in seen:
        assert (bag_type, point_type, pair_type) == (Bag, Point, Pair)
        assert bag == _bag()


def test_supported_argument_types_round_trip(app, client):
    @app.workflow()
    def flow(bag: Bag, point: Point, pair: Pair, items: list, mapping: dict) -> list:
        assert isinstance(bag, Bag)
        assert isinstance(point, Point)
        return [bag.amount == Decimal("10.25"), point.x + point.y, pair[1], items, mapping]

    with app.worker():
        h = client.start(flow, _bag(), Point(2, 3), Pair(1, "x"), [1, "a", None], {"k": 1.5})
        assert h.result(timeout=10) == [True, 5, "x", [1, "a", None], {"k": 1.5}]


def test_positions_count_every_journaled_call_in_order(app, client):
    @app.step(name="s")
    def s(x: int) -> int:
        return x

    @app.workflow(name="kid")
    def kid() -> str:
        return "kid"

    @app.workflow(name="positions")
    def flow() -> str:
        durable.now()  # 1
        s(1)  # 2
        durable.sleep(0.05)  # 3
        durable.random()  # 4
        kid()  # 5
        durable.wait_signal("go", timeout=30)  # 6
        durable.uuid4()  # 7
        with durable.stage("end"):  # stages, progress, messages, outputs take no position
            durable.progress(0.9)
            durable.message("almost")
            durable.output("k", 1)
            s(2)  # 8
        return "done"

    h = client.start(flow)
    client.signal(h.id, "go", "x")
    with app.worker():
        assert h.result(timeout=15) == "done"

    events = h.events()
    by_type: dict[str, list[int | None]] = {}
    for e in events:
        by_type.setdefault(e.type, []).append(e.position)
    assert by_type["value_recorded"] == [1, 4, 7]
    assert by_type["step_completed"] == [2, 8]
    assert set(by_type["sleep_started"]) | set(by_type["sleep_fired"]) == {3}
    assert by_type["child_started"] == [5]
    assert by_type["signal_received"] == [6]
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
