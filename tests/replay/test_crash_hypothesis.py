"""Random workflow shapes, crashed at random appends, must end as if nothing had happened.

Hypothesis draws a workflow *shape*: a list of operations (plain steps, steps that fail their
first ``k`` tries under a ``Retry``, steps that fail for good and are caught, ``durable.sleep``,
``durable.now()/random()/uuid4()`` values fed into later steps, ``durable.patched`` markers,
stage blocks, child workflows, and in async workflows ``asyncio.gather`` of parallel steps).
The shape is turned into a real workflow on a fresh App and SQLite file, and run twice:

1. crash-free, for reference;
2. on another fresh log, under a store wrapper that "crashes" after ``N`` successful appends
   (the append raises ``SimulatedCrash``, before writing or after writing with the reply lost,
   and the worker is killed from another thread at that moment: it writes nothing more and
   hands no lease back). A new embedded worker with the same ``worker_id`` reclaims the run at
   once; this repeats with new crash points until the run ends.

Recorded ``now/random/uuid`` values differ between the two runs, so neither run is compared
with the other's values: a pure *model* of the shape predicts, from the values a run's own
journal recorded, its result, every journaled call's position and name, and every step's
result; both runs must match their model, and their outcome events must be the same.

Checked on every example (GUARANTEES.md G3, G4, G5): the result; the outcome events (types,
positions, names); at most one outcome per position; ``seq`` gapless from 1; epochs never go
back; each keyed event (stage, ...) once; a step body never starts after its completion was
committed; a body's executions exceed its recorded tries only in an incarnation that crashed,
by at most one there; ``client.replay`` of the crashed run returns its result.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import itertools
import shutil
import tempfile
import threading
import time
import uuid
import weakref
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from harness.faults import ANY, Call, FaultyStore, use_store
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st

import durable
from durable.codec import Codec
from durable.engine import runtime
from durable.events import decode_data
from durable.log.store import AppendRequest, AppendResult, JournalRow, Store

pytestmark = [
    pytest.mark.timeout(300),
    # A worker thread that dies (e.g. the committer) must fail the test, not warn.
    pytest.mark.filterwarnings("error::pytest.PytestUnhandledThreadExceptionWarning"),
]

M = 1 << 61
TERMINAL = frozenset({"completed", "failed", "cancelled"})
RUN_TIMEOUT = 30.0
OUTCOME_TYPES = frozenset(
    {
        "step_completed",
        "step_failed",
        "sleep_fired",
        "value_recorded",
        "child_started",
        "child_completed",
        "child_failed",
        "patch_marked",
    }
)
KEYED_TYPES = frozenset({"stage_entered", "stage_left", "progress", "message", "output"})
VALUE_TYPES: dict[str, Any] = {"now": dt.datetime, "random": float, "uuid4": uuid.UUID}


def mix(uid: int, x: int) -> int:
    """What every step computes from its input: deterministic, cheap, order-sensitive."""
    return (x * 1_000_003 + uid * 7919 + 1) % M


def value_to_int(kind: str, v: Any) -> int:
    if kind == "now":
        assert isinstance(v, dt.datetime), v
        return int(v.timestamp() * 1_000_000) % M
    if kind == "random":
        assert isinstance(v, float) and 0.0 <= v < 1.0, v
        return int(v * (1 << 52))
    assert isinstance(v, uuid.UUID) and v.version == 4, v
    return v.int % M


# ---------------------------------------------------------------------------- shapes


@dataclass(frozen=True)
class Op:
    """One operation of a shape; ``uid`` is unique within the shape."""

    kind: str  # step, flaky, fail, sleep, value, stage, par, child, patch
    uid: int = 0
    async_body: bool = False
    k: int = 0  # flaky: failed tries before success
    extra: int = 0  # flaky: spare tries in the Retry
    delay: float = 0.0  # flaky: Retry.initial_delay; sleep: seconds
    mode: str = ""  # fail: "value" (ValueError, no retry) or "permanent" (PermanentError)
    vkind: str = ""  # value: now, random, uuid4
    children: tuple[Op, ...] = ()


def _number(ops: list[Any], counter: Iterator[int]) -> tuple[Op, ...]:
    out = []
    for raw in ops:
        kind, params, kids = raw
        uid = next(counter)
        out.append(Op(kind=kind, uid=uid, children=_number(kids, counter), **params))
    return tuple(out)


def _leaf_steps(allow_par: bool) -> st.SearchStrategy[Any]:
    plain = st.builds(
        lambda a: ("step", {"async_body": a}, []),
        st.booleans(),
    )
    flaky = st.builds(
        lambda a, k, extra, d: ("flaky", {"async_body": a, "k": k, "extra": extra, "delay": d}, []),
        st.booleans(),
        st.integers(1, 2),
        st.integers(0, 1),
        st.floats(0.001, 0.01),
    )
    return st.one_of(plain, flaky)


def _leaves(is_async: bool) -> st.SearchStrategy[Any]:
    fail = st.builds(
        lambda a, m: ("fail", {"async_body": a, "mode": m}, []),
        st.booleans(),
        st.sampled_from(["value", "permanent"]),
    )
    sleep = st.builds(
        lambda s: ("sleep", {"delay": s}, []),
        st.one_of(st.just(0.0), st.floats(0.0, 0.05)),
    )
    value = st.builds(
        lambda v: ("value", {"vkind": v}, []), st.sampled_from(["now", "random", "uuid4"])
    )
    child = st.just(("child", {}, []))
    patch = st.just(("patch", {}, []))
    options = [_leaf_steps(False), _leaf_steps(False), fail, sleep, value, child, patch]
    if is_async:
        par = st.builds(
            lambda kids: ("par", {}, kids), st.lists(_leaf_steps(False), min_size=2, max_size=3)
        )
        options += [par, par]
    return st.one_of(*options)


def shapes(is_async: bool) -> st.SearchStrategy[tuple[Op, ...]]:
    leaf = _leaves(is_async)
    tree = st.recursive(
        leaf,
        lambda inner: st.builds(
            lambda kids: ("stage", {}, kids), st.lists(inner, min_size=1, max_size=3)
        ),
        max_leaves=8,
    )
    return st.lists(tree, min_size=1, max_size=7).map(lambda ops: _number(ops, itertools.count(1)))


def describe(ops: tuple[Op, ...], indent: str = "") -> str:
    lines = []
    for op in ops:
        params = {
            k: v
            for k, v in vars(op).items()
            if k not in ("kind", "uid", "children") and v not in (0, 0.0, "", False, ())
        }
        lines.append(f"{indent}{op.kind}#{op.uid} {params}")
        if op.children:
            lines.append(describe(op.children, indent + "    "))
    return "\n".join(lines)


# ---------------------------------------------------------------------------- the model


@dataclass
class Expected:
    result: list[Any] = field(default_factory=list)
    events: list[tuple[Any, ...]] = field(default_factory=list)
    step_results: dict[int, int] = field(default_factory=dict)
    tries: dict[int, int] = field(default_factory=dict)
    position: int = 0


def model(ops: tuple[Op, ...], x: int, values: dict[int, int]) -> Expected:
    """What a run of ``ops`` on input ``x`` must record and return, given the values that
    its journal recorded for ``now/random/uuid4`` (by position)."""
    exp = Expected()

    def step_events(op: Op, acc: int) -> int:
        exp.position += 1
        pos, name = exp.position, f"s{op.uid}"
        if op.kind == "fail":
            exp.events.append(("step_failed", pos, name, False))
            exp.tries[pos] = 1
            return -1
        for _ in range(op.k if op.kind == "flaky" else 0):
            exp.events.append(("step_failed", pos, name, True))
        exp.events.append(("step_completed", pos, name, None))
        exp.tries[pos] = (op.k if op.kind == "flaky" else 0) + 1
        exp.step_results[pos] = mix(op.uid, acc)
        return exp.step_results[pos]

    def walk(ops: tuple[Op, ...], acc: int) -> int:
        for op in ops:
            if op.kind in ("step", "flaky"):
                acc = step_events(op, acc)
                exp.result.append(acc)
            elif op.kind == "fail":
                step_events(op, acc)
                msg = f"boom {op.uid}"
                etype = "ValueError" if op.mode == "value" else "PermanentError"
                exp.result.append(f"caught:{etype}:{msg}")
                acc = mix(op.uid, acc ^ 0xDEAD)
            elif op.kind == "sleep":
                exp.position += 1
                exp.events.append(("sleep_fired", exp.position, None, None))
                acc = mix(op.uid, acc)
                exp.result.append(acc)
            elif op.kind == "value":
                exp.position += 1
                exp.events.append(("value_recorded", exp.position, op.vkind, None))
                acc = mix(op.uid, acc ^ values[exp.position])
                exp.result.append(acc)
            elif op.kind == "patch":
                exp.position += 1
                exp.events.append(("patch_marked", exp.position, f"p{op.uid}", None))
                acc = mix(op.uid, acc ^ 1)
                exp.result.append(True)
            elif op.kind == "stage":
                acc = walk(op.children, acc)
            elif op.kind == "child":
                exp.position += 1
                name = f"child{op.uid}"
                exp.events.append(("child_started", exp.position, name, None))
                exp.events.append(("child_completed", exp.position, name, None))
                acc = mix(op.uid, mix(op.uid + 100_000, acc))
                exp.result.append(acc)
            elif op.kind == "par":
                rs = [step_events(c, acc) for c in op.children]
                exp.result.append(rs)
                acc = mix(op.uid, sum(rs) % M)
            else:  # pragma: no cover
                raise AssertionError(op)
        return acc

    acc = walk(ops, x)
    exp.result.append(acc)
    return exp


# ---------------------------------------------------------------------------- tracking


class Tracker:
    """Body executions and committed tries, per incarnation of the worker."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.clock = itertools.count()
        self.execs: list[tuple[int, str, int, int, int]] = []  # inc, run, pos, attempt, tick
        self.commits: list[tuple[int, str, int, int, str, int]] = []  # ..., type, tick
        self.crashed: set[int] = set()
        self.incarnations: weakref.WeakKeyDictionary[Any, int] = weakref.WeakKeyDictionary()
        """The incarnation of each store that a worker ran on (a ``CrashingStore``'s)."""

    def body(self, run_id: str, pos: int, attempt: int) -> None:
        state = runtime.current()
        inc = self.incarnations.get(state.s.store, -1)
        with self.lock:
            self.execs.append((inc, run_id, pos, attempt, next(self.clock)))

    def committed(self, inc: int, reqs: list[AppendRequest], results: list[AppendResult]) -> None:
        with self.lock:
            for req, res in zip(reqs, results, strict=True):
                if not res.ok:
                    continue
                for ev in req.events:
                    if ev.type in ("step_completed", "step_failed"):
                        assert ev.position is not None and ev.attempt is not None
                        self.commits.append(
                            (inc, req.run_id, ev.position, ev.attempt, ev.type, next(self.clock))
                        )


class SimulatedCrash(Exception):
    """The worker's process 'died' during this call."""


class CrashingStore:
    """A real store behind a :class:`FaultyStore` (``store``); after ``crash_after``
    successful appends the next append crashes (``before``: nothing written; ``after``:
    written, reply lost), the worker is killed from another thread, and every later call of
    this incarnation raises."""

    def __init__(
        self,
        real: Store,
        incarnation: int,
        tracker: Tracker,
        crash_after: int | None,
        mode: str = "before",
    ) -> None:
        self.incarnation = incarnation
        self._tracker = tracker
        self._crash_after = crash_after
        self._mode = mode
        self._appends = 0
        self._lock = threading.Lock()
        self.dead = threading.Event()
        self.worker_ready = threading.Event()
        self.worker: Any = None
        self.killer: threading.Thread | None = None
        self.store = FaultyStore(
            real, before={ANY: self._alive}, around={"append": self._append}, record=False
        )
        """What the App of this incarnation uses."""
        tracker.incarnations[self.store] = incarnation

    def _alive(self, call: Call) -> None:
        if self.dead.is_set():
            raise SimulatedCrash(f"incarnation {self.incarnation} is dead")

    def _append(
        self, call: Call, append: Callable[[list[AppendRequest]], list[AppendResult]]
    ) -> list[AppendResult]:
        reqs = list(call.arg(0, "requests"))
        with self._lock:
            if self.dead.is_set():
                raise SimulatedCrash(f"incarnation {self.incarnation} is dead")
            crash = self._crash_after is not None and self._appends >= self._crash_after
            if not crash:
                results = append(reqs)
                if all(r.error is None for r in results):
                    self._appends += 1
                self._tracker.committed(self.incarnation, reqs, results)
                return results
            if self._mode == "after":
                results = append(reqs)
                self._tracker.committed(self.incarnation, reqs, results)
            self._die()
        raise SimulatedCrash(f"incarnation {self.incarnation} crashed in append")

    def _die(self) -> None:
        self._tracker.crashed.add(self.incarnation)

        def kill() -> None:
            self.worker_ready.wait(30)
            self.worker.kill()

        self.killer = threading.Thread(target=kill, name="test-killer", daemon=True)
        self.killer.start()
        self.dead.set()


# ---------------------------------------------------------------------------- building


@dataclass
class Built:
    app: durable.App
    workflow: Callable[..., Any]
    real: Store


def build(ops: tuple[Op, ...], is_async: bool, db_url: str, tracker: Tracker) -> Built:
    app = durable.App("hypo", database=db_url, poll_interval=0.05, lease_timeout=30.0)
    steps: dict[int, Any] = {}

    def make_step(op: Op) -> Any:
        k = op.k if op.kind == "flaky" else 0
        if op.kind == "flaky":
            retry: durable.Retry | None = durable.Retry(
                attempts=k + 1 + op.extra, initial_delay=op.delay, jitter=False
            )
        elif op.kind == "fail" and op.mode == "permanent":
            retry = durable.Retry(attempts=3, initial_delay=0.001, jitter=False)
        else:
            retry = None

        def logic(x: int) -> int:
            info = durable.info()
            assert info.step_position is not None and info.step_attempt is not None
            assert info.step_key == f"{info.id}:{info.step_position}"
            tracker.body(info.id, info.step_position, info.step_attempt)
            if op.kind == "fail":
                if op.mode == "value":
                    raise ValueError(f"boom {op.uid}")
                raise durable.PermanentError(f"boom {op.uid}")
            if info.step_attempt <= k:
                raise RuntimeError(f"flaky {op.uid} try {info.step_attempt}")
            return mix(op.uid, x)

        if op.async_body:

            async def body(x: int) -> int:
                await asyncio.sleep(0)
                return logic(x)

        else:

            def body(x: int) -> int:
                return logic(x)

        return app.step(name=f"s{op.uid}", retry=retry)(body)

    children: dict[int, Any] = {}

    def make_child(op: Op) -> Any:
        inner = app.step(name=f"c{op.uid}")(_child_step(op.uid, tracker))

        def child(x: int) -> int:
            return mix(op.uid, inner(x))

        return app.workflow(name=f"child{op.uid}")(child)

    def define(ops: tuple[Op, ...]) -> None:
        for op in ops:
            if op.kind in ("step", "flaky", "fail"):
                steps[op.uid] = make_step(op)
            elif op.kind == "child":
                children[op.uid] = make_child(op)
            define(op.children)

    define(ops)

    def run_sync(ops: tuple[Op, ...], acc: int, out: list[Any]) -> int:
        for op in ops:
            if op.kind in ("step", "flaky"):
                acc = steps[op.uid](acc)
                out.append(acc)
            elif op.kind == "fail":
                try:
                    steps[op.uid](acc)
                    out.append("did not fail")
                except (ValueError, durable.PermanentError) as e:
                    out.append(f"caught:{type(e).__name__}:{e}")
                    acc = mix(op.uid, acc ^ 0xDEAD)
            elif op.kind == "sleep":
                durable.sleep(op.delay)
                acc = mix(op.uid, acc)
                out.append(acc)
            elif op.kind == "value":
                v = {"now": durable.now, "random": durable.random, "uuid4": durable.uuid4}[
                    op.vkind
                ]()
                acc = mix(op.uid, acc ^ value_to_int(op.vkind, v))
                out.append(acc)
            elif op.kind == "patch":
                patched = durable.patched(f"p{op.uid}")
                acc = mix(op.uid, acc ^ int(patched))
                out.append(patched)
            elif op.kind == "stage":
                with durable.stage(f"st{op.uid}"):
                    acc = run_sync(op.children, acc, out)
            elif op.kind == "child":
                acc = children[op.uid](acc)
                out.append(acc)
            else:  # pragma: no cover
                raise AssertionError(op)
        return acc

    async def run_async(ops: tuple[Op, ...], acc: int, out: list[Any]) -> int:
        for op in ops:
            if op.kind in ("step", "flaky"):
                acc = await steps[op.uid](acc)
                out.append(acc)
            elif op.kind == "fail":
                try:
                    await steps[op.uid](acc)
                    out.append("did not fail")
                except (ValueError, durable.PermanentError) as e:
                    out.append(f"caught:{type(e).__name__}:{e}")
                    acc = mix(op.uid, acc ^ 0xDEAD)
            elif op.kind == "sleep":
                durable.sleep(op.delay)
                acc = mix(op.uid, acc)
                out.append(acc)
            elif op.kind == "value":
                v = {"now": durable.now, "random": durable.random, "uuid4": durable.uuid4}[
                    op.vkind
                ]()
                acc = mix(op.uid, acc ^ value_to_int(op.vkind, v))
                out.append(acc)
            elif op.kind == "patch":
                patched = durable.patched(f"p{op.uid}")
                acc = mix(op.uid, acc ^ int(patched))
                out.append(patched)
            elif op.kind == "stage":
                with durable.stage(f"st{op.uid}"):
                    acc = await run_async(op.children, acc, out)
            elif op.kind == "child":
                acc = await children[op.uid](acc)
                out.append(acc)
            elif op.kind == "par":
                rs = list(await asyncio.gather(*(steps[c.uid](acc) for c in op.children)))
                out.append(rs)
                acc = mix(op.uid, sum(rs) % M)
            else:  # pragma: no cover
                raise AssertionError(op)
        return acc

    if is_async:

        async def wf(x: int) -> list[Any]:
            out: list[Any] = []
            out.append(await run_async(ops, x, out))
            return out

    else:

        def wf(x: int) -> list[Any]:
            out: list[Any] = []
            out.append(run_sync(ops, x, out))
            return out

    workflow = app.workflow(name="shape")(wf)
    return Built(app, workflow, app.store)


def _child_step(uid: int, tracker: Tracker) -> Callable[[int], int]:
    def body(x: int) -> int:
        info = durable.info()
        assert info.step_position is not None and info.step_attempt is not None
        tracker.body(info.id, info.step_position, info.step_attempt)
        return mix(uid + 100_000, x)

    return body


# ---------------------------------------------------------------------------- running


@contextlib.contextmanager
def fresh_db() -> Iterator[str]:
    d = tempfile.mkdtemp(prefix="durable-hypo-")
    try:
        yield f"sqlite:///{d}/log.db"
    finally:
        shutil.rmtree(d, ignore_errors=True)


def _wait(real: Store, run_id: str, crashed: threading.Event | None, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    while True:
        row = real.get_run(run_id)
        assert row is not None
        if row.status in TERMINAL:
            return row.status
        if crashed is not None and crashed.is_set():
            return "crashed"
        if time.monotonic() > deadline:
            raise AssertionError(f"run {run_id} still {row.status} after {timeout}s")
        if crashed is not None:
            crashed.wait(0.005)
        else:
            time.sleep(0.005)


def run_crash_free(b: Built, tracker: Tracker, x: int) -> str:
    client = b.app.client()
    with use_store(b.app, CrashingStore(b.real, 0, tracker, None).store):
        h = client.start(b.workflow, x)
        with b.app.worker(worker_id="w1", concurrency=4):
            status = _wait(b.real, h.id, None, RUN_TIMEOUT)
        assert status == "completed", (status, b.real.get_run(h.id))
        return h.id


def run_with_crashes(b: Built, tracker: Tracker, x: int, crashes: list[tuple[int, str]]) -> str:
    client = b.app.client()  # on the real store: the test's own view is never "crashed"
    h = client.start(b.workflow, x)
    plan: list[tuple[int | None, str]] = [*crashes, (None, "before")]
    for inc, (after, mode) in enumerate(plan, start=1):
        store = CrashingStore(b.real, inc, tracker, after, mode)
        with use_store(b.app, store.store):
            cm = b.app.worker(worker_id="w1", concurrency=4)
            w = cm.__enter__()
            store.worker = w._engine  # the engine's worker: kill() is for tests only
            store.worker_ready.set()
            try:
                status = _wait(b.real, h.id, store.dead, RUN_TIMEOUT)
            finally:
                try:
                    if store.dead.is_set():
                        assert store.killer is not None
                        store.killer.join(30)
                        assert not store.killer.is_alive(), "worker.kill() did not return"
                finally:
                    cm.__exit__(None, None, None)
        if status != "crashed":
            assert status == "completed", (status, b.real.get_run(h.id))
            return h.id
        note(f"incarnation {inc} crashed after {after} appends ({mode})")
    # The final incarnation never crashes, so the loop always returns.
    raise AssertionError("unreachable")  # pragma: no cover


# ---------------------------------------------------------------------------- checking


def journal_checks(real: Store, run_id: str) -> list[JournalRow]:
    rows = real.read_journal(run_id)
    where = "\n".join(
        f"  {r.seq} e{r.epoch} {r.type} pos={r.position} {r.name} att={r.attempt}" for r in rows
    )
    assert [r.seq for r in rows] == list(range(1, len(rows) + 1)), f"seq has gaps:\n{where}"
    assert rows[0].type == "run_started"
    assert rows[-1].type == "run_completed", f"not completed:\n{where}"
    assert sum(r.type == "run_completed" for r in rows) == 1
    epochs = [r.epoch for r in rows]
    assert epochs == sorted(epochs), f"an epoch goes back:\n{where}"
    outcomes: Counter[tuple[int | None, str]] = Counter()
    for r in rows:
        group = {
            "step_completed": "step",
            "sleep_fired": "sleep",
            "value_recorded": "value",
            "child_started": "child_started",
            "child_completed": "child_end",
            "child_failed": "child_end",
            "patch_marked": "patch",
        }.get(r.type)
        if r.type == "step_failed" and not decode_data(r.type, r.data).retryable:
            group = "step"
        if group is not None:
            assert r.position is not None, where
            outcomes[(r.position, group)] += 1
    dup = [k for k, n in outcomes.items() if n > 1]
    assert not dup, f"positions with two outcomes {dup}:\n{where}"
    keys = Counter(decode_data(r.type, r.data).key for r in rows if r.type in KEYED_TYPES)
    twice = [k for k, n in keys.items() if n > 1]
    assert not twice, f"keyed events recorded twice {twice}:\n{where}"
    return rows


def outcome_events(rows: list[JournalRow]) -> list[tuple[Any, ...]]:
    out = []
    for r in rows:
        if r.type not in OUTCOME_TYPES:
            continue
        retryable = decode_data(r.type, r.data).retryable if r.type == "step_failed" else None
        out.append((r.type, r.position, r.name, retryable))
    return out


def recorded_values(rows: list[JournalRow]) -> dict[int, int]:
    vals = {}
    for r in rows:
        if r.type == "value_recorded":
            assert r.position is not None and r.name is not None
            raw = bytes(decode_data(r.type, r.data).result)
            vals[r.position] = value_to_int(r.name, Codec.decode(raw, VALUE_TYPES[r.name]))
    return vals


def check_run(
    b: Built, run_id: str, ops: tuple[Op, ...], x: int, has_par: bool
) -> tuple[list[Any], list[tuple[Any, ...]], set[str]]:
    rows = journal_checks(b.real, run_id)
    exp = model(ops, x, recorded_values(rows))
    row = b.real.get_run(run_id)
    assert row is not None and row.output is not None
    result = Codec.decode(row.output)
    assert result == exp.result
    events = outcome_events(rows)
    by_pos = sorted(events, key=lambda e: e[1])  # stable: tries of one position keep order
    assert by_pos == exp.events, "\n".join(map(str, events))
    if not has_par:
        assert events == exp.events
    for r in rows:
        if r.type == "step_completed":
            assert r.position is not None
            raw = bytes(decode_data(r.type, r.data).result)
            assert Codec.decode(raw) == exp.step_results[r.position], r
    # Child runs: each completed, with a sound journal, and its step recorded once.
    for r in rows:
        if r.type == "child_started":
            child_id = decode_data(r.type, r.data).child_id
            assert child_id == f"{run_id}:{r.position}"
            crows = journal_checks(b.real, child_id)
            assert [e[0] for e in outcome_events(crows)] == ["step_completed"]
    keys = {decode_data(r.type, r.data).key or "" for r in rows if r.type in KEYED_TYPES}
    return result, events, keys


def check_executions(tracker: Tracker, b: Built, run_ids: list[str]) -> None:
    """G5: every committed try ran once; a body ran without a committed try only in an
    incarnation that crashed, at most once per position there; no body started after the
    step's completion was committed."""
    time.sleep(0.02)  # let a body still running in a dead incarnation's thread record itself
    with tracker.lock:
        execs = list(tracker.execs)
        commits = list(tracker.commits)
    completed_at = {
        (run, pos): tick for inc, run, pos, _, typ, tick in commits if typ == "step_completed"
    }
    for inc, run, pos, attempt, tick in execs:
        done = completed_at.get((run, pos))
        assert done is None or tick < done, (
            f"run {run} position {pos}: body (attempt {attempt}, incarnation {inc}) started "
            f"after the step's completion was committed"
        )
    ran = Counter((inc, run, pos) for inc, run, pos, _, _ in execs)
    recorded = Counter((inc, run, pos) for inc, run, pos, _, _, _ in commits)
    for key in set(ran) | set(recorded):
        inc = key[0]
        lost = ran[key] - recorded[key]
        assert lost >= 0, f"{key}: {recorded[key]} tries committed but {ran[key]} ran"
        limit = 1 if inc in tracker.crashed else 0
        assert lost <= limit, (
            f"{key}: the body ran {ran[key]} times, {recorded[key]} committed, in an "
            f"incarnation that {'crashed' if limit else 'did not crash'}"
        )
    # The journal agrees with what was committed: each try once, attempts 1..n.
    for run_id in {r for _, r, _, _, _, _ in commits}:
        rows = b.real.read_journal(run_id)
        tries: dict[int, list[int]] = {}
        for r in rows:
            if r.type in ("step_completed", "step_failed"):
                assert r.position is not None and r.attempt is not None
                tries.setdefault(r.position, []).append(r.attempt)
        for pos, atts in tries.items():
            assert atts == list(range(1, len(atts) + 1)), (run_id, pos, atts)
            total = sum(n for (_, rr, p), n in ran.items() if rr == run_id and p == pos)
            assert total <= len(atts) + len(tracker.crashed), (run_id, pos, total, atts)


def _has_par(ops: tuple[Op, ...]) -> bool:
    return any(op.kind == "par" or _has_par(op.children) for op in ops)


crash_plans = st.lists(
    st.tuples(st.integers(0, 14), st.sampled_from(["before", "before", "after"])),
    min_size=1,
    max_size=4,
)


def _scenario(ops: tuple[Op, ...], is_async: bool, x: int, crashes: list[Any]) -> None:
    note(describe(ops))
    has_par = _has_par(ops)
    ref_tracker = Tracker()
    with fresh_db() as url:
        ref = build(ops, is_async, url, ref_tracker)
        try:
            rid = run_crash_free(ref, ref_tracker, x)
            ref_result, ref_events, ref_keys = check_run(ref, rid, ops, x, has_par)
            check_executions(ref_tracker, ref, [rid])
            # Crash-free: every body ran exactly as often as the journal records tries.
            assert not ref_tracker.crashed
        finally:
            ref.app.close()

    tracker = Tracker()
    with fresh_db() as url:
        b = build(ops, is_async, url, tracker)
        try:
            run_id = run_with_crashes(b, tracker, x, crashes)
            result, events, keys = check_run(b, run_id, ops, x, has_par)
            check_executions(tracker, b, [run_id])
            assert sorted(events, key=lambda e: e[1]) == sorted(ref_events, key=lambda e: e[1])
            if not has_par:
                assert events == ref_events
            assert keys == ref_keys
            assert len(result) == len(ref_result)
            # Replaying the crashed run's journal with today's code executes nothing.
            before = len(tracker.execs)
            assert b.app.client().replay(run_id) == result
            assert len(tracker.execs) == before
        finally:
            b.app.close()


COMMON = settings(
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    print_blob=True,
)


@settings(COMMON, max_examples=45)
@given(ops=shapes(is_async=False), x=st.integers(0, 1000), crashes=crash_plans)
def test_sync_workflow_survives_crashes(ops: tuple[Op, ...], x: int, crashes: list[Any]) -> None:
    _scenario(ops, False, x, crashes)


@settings(COMMON, max_examples=45)
@given(ops=shapes(is_async=True), x=st.integers(0, 1000), crashes=crash_plans)
def test_async_workflow_survives_crashes(ops: tuple[Op, ...], x: int, crashes: list[Any]) -> None:
    _scenario(ops, True, x, crashes)
