"""Children started without waiting, crashed at every append: no child starts twice, and the
parent's result is what a crash-free run returns.

A *fan-out shape* is a list of groups of child runs. For each group the parent starts its
children with ``durable.start_child`` (a plain step may sit between two starts), then, if
the group has losers, ``durable.wait_first`` over the group in a drawn order, then a step
that signals the losers; then ``result()`` of each child in a drawn order, now or at the end
of the workflow. Each group has one *fast* child (it may fail: ``result()`` raises, the
parent catches it) and up to two *gated* ones, which wait for the signal ``go`` before their
step: so the fast one always ends first, and the winner ``wait_first`` records is known.

The shape runs crash-free for reference, then under the crashing store of
``test_crash_hypothesis`` (the worker killed at an append, before it is written or with its
reply lost, then a new incarnation under the same identity reclaims the runs) until the
parent ends. Checked: the result equals the reference's and the model's; every
``start_child`` recorded one ``child_started`` and the log holds exactly one child run per
start (``{parent}:{position}``), each with one ``run_started``; one ``first_finished`` per
``wait_first`` position, naming the fast child; outcome events unique per position; each
child's step body ran no more than its committed tries plus one per crashed incarnation;
``client.replay`` of the crashed parent returns its result and executes nothing.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass
from typing import Any

import pytest
import test_crash_hypothesis as h
from hypothesis import given, note, settings
from hypothesis import strategies as st

import durable
from durable.codec import Codec
from durable.events import decode_data
from durable.log.store import RunFilter

pytestmark = [
    pytest.mark.timeout(600),
    pytest.mark.filterwarnings("error::pytest.PytestUnhandledThreadExceptionWarning"),
]

M = h.M


@dataclass(frozen=True)
class Group:
    """One group of children of a fan-out shape (``uid``: unique within the shape)."""

    uid: int
    gated: int  # 0..2 children that wait for the signal "go"
    fast_fails: bool  # the fast child fails (result() raises RunFailedError)
    first_order: tuple[int, ...]  # the order of the group's handles given to wait_first
    result_order: tuple[int, ...]  # the order result() is called in
    deferred: bool  # results at the end of the workflow, after every later group
    step_between: bool  # a plain step between the first and the second start


def _group(uid: int, data: tuple[int, bool, bool, bool, int]) -> Group:
    gated, fails, deferred, between, seed = data
    rng = random.Random(seed)
    n = gated + 1
    first = list(range(n))
    rng.shuffle(first)
    results = list(range(n))
    rng.shuffle(results)
    return Group(uid, gated, fails, tuple(first), tuple(results), deferred, between)


groups = st.lists(
    st.tuples(st.integers(0, 2), st.booleans(), st.booleans(), st.booleans(), st.integers(0, 1000)),
    min_size=1,
    max_size=3,
).map(lambda raw: tuple(_group(i + 1, g) for i, g in enumerate(raw)))


def child_value(uid: int, j: int, x: int) -> int:
    """What child ``j`` of group ``uid`` returns for input ``x``."""
    return h.mix(uid * 10 + j, x)


def model(shape: tuple[Group, ...], x: int) -> list[Any]:
    """The parent's result for input ``x``."""
    out: list[Any] = []
    acc = x
    deferred: list[tuple[Group, int]] = []

    def results(g: Group, base: int) -> None:
        for j in g.result_order:
            if j == 0 and g.fast_fails:
                out.append(f"failed:kid{g.uid}.0")
            else:
                out.append(child_value(g.uid, j, base))

    for g in shape:
        base = acc  # the children's input
        if g.step_between:
            acc = h.mix(g.uid + 500, acc)
            out.append(acc)
        if g.gated:
            out.append(f"first:kid{g.uid}.0")
            out.append(g.gated)  # the release step: how many it signalled
        if g.deferred:
            deferred.append((g, base))
        else:
            results(g, base)
    for g, base in deferred:
        results(g, base)
    out.append(acc)
    return out


def build(shape: tuple[Group, ...], is_async: bool, db_url: str, tracker: h.Tracker) -> h.Built:
    app = durable.App("fanout", database=db_url, poll_interval=0.05, lease_timeout=30.0)
    kids: dict[tuple[int, int], Any] = {}

    def track() -> None:
        info = durable.info()
        assert info.step_position is not None and info.step_attempt is not None
        tracker.body(info.id, info.step_position, info.step_attempt)

    def make_kid(g: Group, j: int) -> Any:
        fails = j == 0 and g.fast_fails
        gated = j > 0

        def body(x: int) -> int:
            track()
            if fails:
                raise durable.PermanentError(f"kid {g.uid}.{j} fails")
            return child_value(g.uid, j, x)

        step = app.step(name=f"kidstep{g.uid}.{j}")(body)

        def kid(x: int) -> int:
            if gated:
                durable.wait_signal("go")
            return step(x)  # type: ignore[no-any-return]

        return app.workflow(name=f"kid{g.uid}.{j}")(kid)

    for g in shape:
        for j in range(g.gated + 1):
            kids[(g.uid, j)] = make_kid(g, j)

    @app.step(name="between")
    def between(uid: int, acc: int) -> int:
        track()
        return h.mix(uid + 500, acc)

    @app.step(name="release")
    def release(ids: list[str]) -> int:
        track()
        client = app.client()
        for run_id in ids:
            client.signal(run_id, "go")
        return len(ids)

    def start(g: Group, acc: int, out: list[Any]) -> tuple[list[Any], int]:
        hs = [durable.start_child(kids[(g.uid, 0)], acc)]
        base = acc
        if g.step_between:
            acc = between(g.uid, acc)
            out.append(acc)
        hs += [durable.start_child(kids[(g.uid, j)], base) for j in range(1, g.gated + 1)]
        return hs, acc

    if not is_async:

        def collect(g: Group, hs: list[Any], out: list[Any]) -> None:
            for j in g.result_order:
                try:
                    out.append(hs[j].result())
                except durable.RunFailedError as exc:
                    out.append(f"failed:{hs[j].workflow}")
                    assert exc.run_id == hs[j].id

        def wf(x: int) -> list[Any]:
            out: list[Any] = []
            later: list[tuple[Group, list[Any]]] = []
            acc = x
            for g in shape:
                hs, acc = start(g, acc, out)
                if g.gated:
                    first = durable.wait_first([hs[j] for j in g.first_order])
                    out.append(f"first:{first.workflow}")
                    out.append(release([k.id for k in hs if k is not first]))
                if g.deferred:
                    later.append((g, hs))
                else:
                    collect(g, hs, out)
            for g, hs in later:
                collect(g, hs, out)
            out.append(acc)
            return out

    else:

        async def collect_async(g: Group, hs: list[Any], out: list[Any]) -> None:
            for j in g.result_order:
                try:
                    out.append(await hs[j].result())
                except durable.RunFailedError:
                    out.append(f"failed:{hs[j].workflow}")

        def start_async(g: Group, acc: int, out: list[Any]) -> Any:
            async def go() -> tuple[list[Any], int]:
                hs = [durable.start_child(kids[(g.uid, 0)], acc)]
                base, now = acc, acc
                if g.step_between:
                    now = await between(g.uid, acc)
                    out.append(now)
                hs += [durable.start_child(kids[(g.uid, j)], base) for j in range(1, g.gated + 1)]
                return hs, now

            return go()

        async def wf(x: int) -> list[Any]:  # type: ignore[misc]
            out: list[Any] = []
            later: list[tuple[Group, list[Any]]] = []
            acc = x
            for g in shape:
                hs, acc = await start_async(g, acc, out)
                if g.gated:
                    first = await durable.wait_first([hs[j] for j in g.first_order])
                    out.append(f"first:{first.workflow}")
                    out.append(await release([k.id for k in hs if k is not first]))
                if g.deferred:
                    later.append((g, hs))
                else:
                    await collect_async(g, hs, out)
            for g, hs in later:
                await collect_async(g, hs, out)
            out.append(acc)
            return out

    workflow = app.workflow(name="fanout")(wf)
    return h.Built(app, workflow, app.store)


def check(b: h.Built, run_id: str, shape: tuple[Group, ...], x: int) -> list[Any]:
    """The checks of the module docstring on one finished parent; returns its result."""
    rows = h.journal_checks(b.real, run_id)
    row = b.real.get_run(run_id)
    assert row is not None and row.output is not None
    result = Codec.decode(row.output)
    assert result == model(shape, x)
    starts = [r for r in rows if r.type == "child_started"]
    assert len(starts) == sum(g.gated + 1 for g in shape)
    assert len({r.position for r in starts}) == len(starts), "a position started two children"
    child_ids = {decode_data(r.type, r.data).child_id: r for r in starts}
    assert set(child_ids) == {f"{run_id}:{r.position}" for r in starts}
    kids = {c.id for c in b.real.list_runs(_children_of(run_id))}
    assert kids == set(child_ids), "the log holds another set of children than was started"
    firsts = [r for r in rows if r.type == "first_finished"]
    assert len(firsts) == sum(1 for g in shape if g.gated)
    assert len({r.position for r in firsts}) == len(firsts)
    for r in firsts:
        winner = decode_data(r.type, r.data).child_id
        assert child_ids[winner].name is not None and child_ids[winner].name.endswith(".0")
    ends = Counter(r.position for r in rows if r.type in ("child_completed", "child_failed"))
    assert all(n == 1 for n in ends.values()), ends
    assert set(ends) == {r.position for r in starts}
    for child_id, start in child_ids.items():
        crows = b.real.read_journal(child_id)
        assert [r.seq for r in crows] == list(range(1, len(crows) + 1))
        assert sum(r.type == "run_started" for r in crows) == 1
        assert crows[-1].type in ("run_completed", "run_failed"), (child_id, start.name)
    return result  # type: ignore[no-any-return]


def _children_of(run_id: str) -> RunFilter:
    return RunFilter(parent_id=run_id, limit=1000)


def scenario(shape: tuple[Group, ...], is_async: bool, x: int, crashes: list[Any]) -> None:
    note(repr(shape))
    ref_tracker = h.Tracker()
    with h.fresh_db() as url:
        ref = build(shape, is_async, url, ref_tracker)
        try:
            rid = h.run_crash_free(ref, ref_tracker, x)
            expected = check(ref, rid, shape, x)
        finally:
            ref.app.close()
    tracker = h.Tracker()
    with h.fresh_db() as url:
        b = build(shape, is_async, url, tracker)
        try:
            run_id = h.run_with_crashes(b, tracker, x, crashes)
            assert check(b, run_id, shape, x) == expected
            h.check_executions(tracker, b, [run_id])
            before = len(tracker.execs)
            assert b.app.client().replay(run_id) == expected
            assert len(tracker.execs) == before
        finally:
            b.app.close()


@settings(h.COMMON, max_examples=20)
@given(shape=groups, x=st.integers(0, 1000), crashes=h.crash_plans)
def test_sync_fan_out_survives_crashes(shape: tuple[Group, ...], x: int, crashes: Any) -> None:
    scenario(shape, False, x, crashes)


@settings(h.COMMON, max_examples=20)
@given(shape=groups, x=st.integers(0, 1000), crashes=h.crash_plans)
def test_async_fan_out_survives_crashes(shape: tuple[Group, ...], x: int, crashes: Any) -> None:
    scenario(shape, True, x, crashes)


FIXED = (
    Group(1, 2, False, (2, 0, 1), (1, 0, 2), False, True),
    Group(2, 0, True, (0,), (0,), True, False),
)
"""A group of three (two gated, a step between the starts) and a failing child whose result
is asked at the end: every kind of call of the shapes above."""


@pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
@pytest.mark.parametrize("mode", ["before", "after"])
def test_a_crash_at_every_append_of_a_fan_out(
    is_async: bool, mode: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Crash once after each number of appends the crash-free run makes, in turn."""
    monkeypatch.setattr(h, "note", lambda text: None)  # outside Hypothesis: nothing to note
    tracker = h.Tracker()
    with h.fresh_db() as url:
        ref = build(FIXED, is_async, url, tracker)
        try:
            appends = h.CrashingStore(ref.real, 0, tracker, None)
            with h.use_store(ref.app, appends.store):
                rid = ref.app.client().start(ref.workflow, 7).id
                with ref.app.worker(worker_id="w1", concurrency=4):
                    assert h._wait(ref.real, rid, None, h.RUN_TIMEOUT) == "completed"
            expected = check(ref, rid, FIXED, 7)
            total = appends._appends
        finally:
            ref.app.close()
    assert total > 10
    for after in range(total):
        tracker = h.Tracker()
        with h.fresh_db() as url:
            b = build(FIXED, is_async, url, tracker)
            try:
                run_id = h.run_with_crashes(b, tracker, 7, [(after, mode)])
                assert check(b, run_id, FIXED, 7) == expected, f"crashed after {after}"
                h.check_executions(tracker, b, [run_id])
            finally:
                b.app.close()
