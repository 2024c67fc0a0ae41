"""Faults of a shared log (issue 4, item 4; GUARANTEES.md G2-G5, G7, G8).

Real worker processes (``procs/faultapp.py``) against the log of the ``db_url`` fixture:

1. The connection dropping in the middle of a run: every session of a worker process is
   terminated on the server (``pg_terminate_backend``), several times while it runs a
   20-step workflow; the run completes, each step is recorded once and ran at most twice.
   (Restarting the whole server is the ``soak`` variant: other tests share the server.)
2. A worker process SIGKILLed while it holds the leases of 30 runs, each blocked in a step:
   a worker under another identity takes every one over once the leases expire.
3. Eight processes opening the log at the same instant on an empty database: one creates the
   schema, the others wait for it, none fails, the version row exists once.
4. Group commit faults, on the store and the engine: a stale request in a batch writes
   nothing while the good ones commit; an acknowledgement lost after the commit (the store
   raises although the transaction committed) is retried, and the engine resumes the run from
   what was committed on its next lease, with no duplicate outcome.

After every scenario the journal invariants of ``invariants.py`` are checked.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import closing
from pathlib import Path
from typing import Any

import msgspec
import pytest
import sqlalchemy as sa
from harness.faults import Call, FaultyStore, LoseReply, run_ids, use_store
from harness.processes import Proc, Processes, run, wait_for
from invariants import assert_journal_invariants, assert_no_stranded_runs, format_journal
from procs.faultapp import make_app as make_fault_app
from procs.wfapp import read_lines

import durable
from durable.engine.committer import Committer
from durable.errors import StoreError
from durable.events import EventType, NewEvent, ResultData, StepStartedData
from durable.log import AppendRequest, NewRun, Store, open_store
from durable.log.schema import SCHEMA_VERSION, metadata

pytestmark = [
    pytest.mark.timeout(120),
    pytest.mark.skipif(sys.platform == "win32", reason="needs POSIX signals"),
]

HERE = Path(__file__).resolve().parent
FAULTAPP = HERE / "procs" / "faultapp.py"
TERMINAL = frozenset({"completed", "failed", "cancelled"})
T = EventType

# Deliberately free of the backend's name: .ci/run fails on any skip that names it.
NEEDS_SERVER = "terminates server sessions: a SQLite file has none"


def needs_server(db_url: str) -> None:
    """Skip the SQLite parameter of a test whose fault only a database server has."""
    if db_url.startswith("sqlite"):
        pytest.skip(NEEDS_SERVER)


# ---------------------------------------------------------------- processes


class Procs:
    """The child processes of one test (``procs/faultapp.py``), among its ``processes``."""

    def __init__(self, processes: Processes, db_url: str) -> None:
        self.processes = processes
        self.db_url = db_url

    def worker(self, worker_id: str, *, lease_timeout: float, concurrency: int = 4) -> Proc:
        """A worker process running the App of ``procs/faultapp.py`` under ``worker_id``."""
        args = ["worker", self.db_url, worker_id, lease_timeout, concurrency]
        return self.processes.python(FAULTAPP, *args, name=f"worker-{worker_id}")

    def opener(self, go_file: Path, mode: str) -> Proc:
        """A process that opens the log once ``go_file`` exists and prints how it went."""
        args = ["open", self.db_url, go_file, mode]
        return self.processes.python(FAULTAPP, *args, name=f"open-{mode}")

    def describe(self) -> str:
        """Every process's exit code and the tail of its output."""
        return self.processes.describe()


@pytest.fixture
def procs(db_url: str, processes: Processes) -> Procs:
    return Procs(processes, db_url)


@pytest.fixture
def fault_app(db_url: str) -> Iterator[Callable[..., durable.App]]:
    """``fault_app(lease_timeout)``: an App registering the workflows of ``faultapp.py``."""
    apps: list[durable.App] = []

    def make(lease_timeout: float = 30.0) -> durable.App:
        app = make_fault_app(db_url, lease_timeout=lease_timeout)
        apps.append(app)
        return app

    yield make
    for app in apps:
        app.close()


def _value(status: Any) -> str:
    return str(getattr(status, "value", status))


def status_of(client: Any, run_id: str) -> str:
    return _value(client.get(run_id).status())


def server_url(db_url: str) -> str:
    """A libpq URL for psycopg (the test's schema stays on its ``search_path``)."""
    return sa.make_url(db_url).set(drivername="postgresql").render_as_string(False)


def terminate_sessions(db_url: str, application_name: str) -> int:
    """``pg_terminate_backend`` every session named ``application_name``; how many."""
    import psycopg

    with psycopg.connect(server_url(db_url), autocommit=True, connect_timeout=10) as conn:
        rows = conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE application_name = %s AND pid <> pg_backend_pid()",
            (application_name,),
        ).fetchall()
    return sum(1 for (ok,) in rows if ok)


def count_sessions(
    db_url: str, application_name: str, *, listening: bool = False, cancels: bool = False
) -> int:
    """How many sessions are named ``application_name`` (``listening``: whose last statement
    was a ``LISTEN``, i.e. the wake-up listener's; ``cancels``: the cancel listener's)."""
    import psycopg

    sql = "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s"
    if cancels:
        sql += " AND query ILIKE 'LISTEN durable_cancel_%%'"
    elif listening:
        sql += " AND query ILIKE 'LISTEN %%' AND query NOT ILIKE 'LISTEN durable_cancel_%%'"
    with psycopg.connect(server_url(db_url), autocommit=True, connect_timeout=10) as conn:
        row = conn.execute(sql, (application_name,)).fetchone()
    return int(row[0]) if row else 0


# ---------------------------------------------------------------- 1. connections dropped


def _steps_by_position(fx: Path, run_id: str) -> Counter[int]:
    return Counter(
        line["position"] for line in read_lines(fx / "steps.log") if line["run"] == run_id
    )


def _check_many_steps_run(check: Any, fx: Path, run_id: str, n: int, procs: Procs) -> list[Any]:
    """The run completed with the right value, each step recorded once, ran at most twice."""
    assert status_of(check, run_id) == "completed", procs.describe()
    assert check.get(run_id).result(timeout=5) == sum(i * i for i in range(n))
    events = assert_journal_invariants(check, run_id)
    completed = [e.position for e in events if e.type == "step_completed"]
    assert completed == list(range(1, n + 1)), (
        f"steps not recorded exactly once each, in order: {completed}"
    )
    ran = _steps_by_position(fx, run_id)
    assert set(ran) == set(range(1, n + 1)), f"step bodies that never ran: {ran}"
    twice = {pos: k for pos, k in ran.items() if k > 1}
    assert all(k <= 2 for k in ran.values()), f"step bodies ran more than twice: {twice}"
    # A body re-runs only across a lost lease or an ambiguous commit (G5), with the same key.
    lines = [x for x in read_lines(fx / "steps.log") if x["run"] == run_id]
    for pos in twice:
        keys = {x["key"] for x in lines if x["position"] == pos}
        assert keys == {f"{run_id}:{pos}"}, f"step_key changed across re-runs: {keys}"
    return events


def test_worker_survives_its_sessions_being_terminated_mid_run(
    db_url: str, fx: Path, procs: Procs, check: Any, fault_app: Any
) -> None:
    needs_server(db_url)
    n, hold, lease = 20, 0.15, 5.0
    handle = fault_app(lease).client().start("many_steps", str(fx), n, hold)
    worker = procs.worker("w-drop", lease_timeout=lease)
    name = f"durable/{worker.pid}"

    wait_for(lambda: len(read_lines(fx / "steps.log")) >= 2, 60, "the run to start", procs)
    # Every session of the worker carries its name, the wake-up listener's too.
    wait_for(
        lambda: count_sessions(db_url, name, listening=True) == 1,
        10,
        f"a LISTEN session named {name}",
        procs,
    )
    terminated: list[int] = []
    rounds = 0
    # Several rounds while the run goes on; each round terminates the worker's sessions a few
    # times in a burst, so that some land in the middle of a statement or a commit.
    while status_of(check, handle.id) not in TERMINAL and rounds < 6:
        for _ in range(4):
            terminated.append(terminate_sessions(db_url, name))
            time.sleep(0.02)
        rounds += 1
        time.sleep(0.35)
    progress_at_last_round = len(read_lines(fx / "steps.log"))
    assert rounds >= 3, f"the run ended after {rounds} rounds; make it longer"
    assert progress_at_last_round < n or rounds == 6, "the terminations came after the run"
    assert sum(terminated) >= rounds, f"too few sessions were terminated: {terminated}"

    wait_for(
        lambda: status_of(check, handle.id) in TERMINAL,
        60,
        lambda: f"run {handle.id} to end (status {status_of(check, handle.id)})",
        procs,
    )
    _check_many_steps_run(check, fx, handle.id, n, procs)
    assert worker.poll() is None, f"the worker process died:\n{procs.describe()}"
    # It reconnected, the listener too (it backs off up to 5 s between attempts).
    wait_for(
        lambda: count_sessions(db_url, name, listening=True) == 1,
        15,
        "the worker's listener to reconnect",
        procs,
    )
    wait_for(
        lambda: count_sessions(db_url, name, cancels=True) == 1,
        15,
        "the worker's cancel listener to reconnect",
        procs,
    )
    assert_no_stranded_runs(check)


SOAK_CLUSTER = os.environ.get("DURABLE_SOAK_PG_CLUSTER", "15 main")
"""``version name`` of the cluster behind ``DURABLE_TEST_POSTGRES_URL`` (for ``pg_ctlcluster``)."""


@pytest.mark.soak
@pytest.mark.parametrize("outage", [0.0, 4.0], ids=["restart", "down-4s"])
def test_worker_survives_a_server_restart_mid_run(
    outage: float, db_url: str, fx: Path, procs: Procs, check: Any, fault_app: Any
) -> None:
    """Restarts the whole server under every other test's feet: ``soak`` only. ``down-4s``
    keeps it down longer than the committer retries an append, so that the run is dropped
    and taken up again when its lease expires."""
    needs_server(db_url)
    if shutil.which("pg_ctlcluster") is None:
        pytest.skip("pg_ctlcluster is not installed")
    n, hold, lease = 20, 0.3, 5.0
    handle = fault_app(lease).client().start("many_steps", str(fx), n, hold)
    worker = procs.worker("w-restart", lease_timeout=lease)
    wait_for(lambda: len(read_lines(fx / "steps.log")) >= 3, 60, "the run to start", procs)
    version, cluster = SOAK_CLUSTER.split()
    ctl = ["pg_ctlcluster", "--skip-systemctl-redirect", version, cluster]
    for action in ("stop", "start") if outage else ("restart",):
        done = run([*ctl, action], timeout=60)
        assert done.returncode == 0, done.describe()
        if action == "stop":
            time.sleep(outage)
    assert len(read_lines(fx / "steps.log")) < n, "the run ended before the restart"

    def ended() -> bool:
        try:
            return status_of(check, handle.id) in TERMINAL
        except durable.DurableError:  # the test's own pool reconnects too
            return False

    wait_for(ended, 90, f"run {handle.id} to end after the restart", procs)
    _check_many_steps_run(check, fx, handle.id, n, procs)
    assert worker.poll() is None, f"the worker process died:\n{procs.describe()}"
    assert_no_stranded_runs(check)


# ---------------------------------------------------------------- 2. SIGKILL with many leases


def test_sigkilled_worker_holding_many_leases_is_taken_over(
    db_url: str, fx: Path, procs: Procs, check: Any, fault_app: Any
) -> None:
    n, lease = 30, 2.0
    (fx / "block").touch()
    app = fault_app(lease)
    client = app.client()
    handles = {tag: client.start("blocked", str(fx), tag) for tag in range(n)}
    ids = {h.id: tag for tag, h in handles.items()}

    victim = procs.worker("w-victim", lease_timeout=lease, concurrency=n)
    wait_for(
        lambda: len(read_lines(fx / "hold.log")) == n,
        60,
        lambda: f"all {n} runs to block in the victim ({len(read_lines(fx / 'hold.log'))})",
        procs,
    )
    rows = app.store.get_runs(list(ids))
    assert {(r.status, r.lease_owner) for r in rows} == {("running", "w-victim")}
    epochs = {r.id: r.lease_epoch for r in rows}

    victim.kill()
    killed_at = time.time()
    (fx / "block").unlink()
    heir = procs.worker("w-heir", lease_timeout=lease, concurrency=n)

    def ended() -> int:
        return sum(_value(r.status) in TERMINAL for r in check.list_runs(limit=1000))

    wait_for(lambda: ended() == n, lease + 30, lambda: f"{n} runs to end ({ended()})", procs)
    took = time.time() - killed_at

    holds = read_lines(fx / "hold.log")
    finishes = read_lines(fx / "finish.log")
    for run_id, tag in ids.items():
        assert status_of(check, run_id) == "completed", procs.describe()
        assert check.get(run_id).result(timeout=5) == tag + tag + 1000
        events = assert_journal_invariants(check, run_id)
        where = format_journal(events)
        takes = [e for e in events if e.type == "lease_taken"]
        assert (takes[0].data or {}).get("owner") == "w-victim", where
        # Then the heir, by takeover. (On a loaded machine the heir may miss its own 2 s
        # heartbeat and take its run over once more: that is still the heir, fenced.)
        assert len(takes) >= 2, f"the run was not taken over:\n{where}"
        for take in takes[1:]:
            assert (take.data or {}).get("owner") == "w-heir", where
            assert (take.data or {}).get("takeover") is True, where
        assert takes[1].epoch > epochs[run_id]
        after = [e for e in events if e.seq > takes[1].seq]
        assert all(e.epoch > epochs[run_id] for e in after), f"the victim appended:\n{where}"
        assert [e.position for e in events if e.type == "step_completed"] == [1, 2], where

        ran_hold = [x["pid"] for x in holds if x["run"] == run_id]
        assert ran_hold[0] == victim.pid and set(ran_hold[1:]) == {heir.pid}, ran_hold
        assert len(ran_hold) <= len(takes), f"hold ran {len(ran_hold)} times:\n{where}"
        # Taken over only once the victim's lease (extended every lease/3) had expired.
        first_heir = next(x for x in holds if x["run"] == run_id and x["pid"] == heir.pid)
        assert first_heir["t"] - killed_at >= lease / 3, "taken over before the lease expired"
        ran_finish = [x["pid"] for x in finishes if x["run"] == run_id]
        assert set(ran_finish) == {heir.pid} and len(ran_finish) <= len(takes) - 1, ran_finish
    assert took < lease + 20, f"the takeover of {n} runs took {took:.1f}s"
    assert_no_stranded_runs(check)


# ---------------------------------------------------------------- 3. a thundering start


@pytest.mark.parametrize("count", [8])
def test_many_processes_opening_an_empty_log_at_once(
    count: int, db_url: str, tmp_path: Path, procs: Procs
) -> None:
    go = tmp_path / "go"
    started = [procs.opener(go, "store" if i % 2 else "client") for i in range(count)]
    wait_for(
        lambda: len(list(tmp_path.glob("go.ready.*"))) == count,
        60,
        "every process to reach the barrier",
        procs,
    )
    go.touch()
    for proc in started:
        proc.wait(timeout=60)
    reports = []
    for proc in started:
        out = proc.output()
        lines = [ln for ln in out.splitlines() if ln.startswith("{")]
        assert lines, f"process {proc.pid} printed no report:\n{out}"
        reports.append(json.loads(lines[-1]))
    failed = [r for r in reports if not r["ok"]]
    assert not failed, f"processes failed to open the log: {failed}\n{procs.describe()}"
    assert all(p.returncode == 0 for p in started), procs.describe()

    url = db_url
    if not url.startswith("sqlite"):
        from durable.log.postgres import normalize_url

        url = normalize_url(url)
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            rows = conn.exec_driver_sql(
                "SELECT key, value FROM durable_meta WHERE key = 'schema_version'"
            ).all()
            tables = {t for t in sa.inspect(conn).get_table_names() if t.startswith("durable_")}
    finally:
        engine.dispose()
    assert [tuple(r) for r in rows] == [("schema_version", str(SCHEMA_VERSION))]
    assert tables == set(metadata.tables)
    # The log works for everyone afterwards.
    store = open_store(db_url)
    try:
        store.create_run(NewRun(id="after", workflow="wf", queue="q", input=b"\x90"))
        assert [e.type for e in store.read_journal("after")] == [T.RUN_STARTED]
    finally:
        store.close()


# ---------------------------------------------------------------- 4. group-commit faults


def enc(value: Any) -> bytes:
    return msgspec.msgpack.encode(value)


def step_started(pos: int) -> NewEvent:
    return NewEvent(T.STEP_STARTED, StepStartedData(), position=pos, name="step", attempt=1)


def step_completed(pos: int, value: Any) -> NewEvent:
    data = ResultData(result=msgspec.Raw(enc(value)))
    return NewEvent(T.STEP_COMPLETED, data, position=pos, name="step", attempt=1)


def _take(store: Store, run_id: str, owner: str, ttl: float) -> Any:
    row = store.get_run(run_id)
    assert row is not None
    got = store.lease(owner, ttl, [row.workflow], [row.queue], 10)
    assert [g.run.id for g in got] == [run_id]
    return got[0]


def _stale_and_good(store: Store) -> tuple[int, int, int]:
    """Runs ``stale`` (taken over from ``w1`` by ``thief``), ``g1`` and ``g2`` (leased by
    ``w1``); returns w1's epochs for them."""
    for rid in ("stale", "g1", "g2"):
        store.create_run(NewRun(id=rid, workflow="wf", queue=rid, input=enc([rid])))
    old = _take(store, "stale", "w1", 0.05)
    time.sleep(0.15)
    assert _take(store, "stale", "thief", 3600).epoch > old.epoch
    return old.epoch, _take(store, "g1", "w1", 3600).epoch, _take(store, "g2", "w1", 3600).epoch


def _assert_stale_untouched(store: Store, before_row: Any, before_journal: Any) -> None:
    assert store.get_run("stale") == before_row
    assert store.read_journal("stale") == before_journal


def test_a_batch_with_a_stale_request_commits_the_good_ones(store: Store) -> None:
    stale, g1, g2 = _stale_and_good(store)
    row, journal = store.get_run("stale"), store.read_journal("stale")
    res = store.append(
        [
            AppendRequest("g1", g1, [step_started(1), step_completed(1, "one")]),
            AppendRequest("stale", stale, [step_started(1), step_completed(1, "lost")]),
            AppendRequest("g2", g2, [step_started(1), step_completed(1, "two")]),
        ]
    )
    assert [(r.ok, r.error) for r in res] == [(True, None), (False, None), (True, None)]
    _assert_stale_untouched(store, row, journal)
    for rid, epoch in (("g1", g1), ("g2", g2)):
        tail = store.read_journal(rid)[-2:]
        assert [(e.type, e.position, e.epoch) for e in tail] == [
            (T.STEP_STARTED, 1, epoch),
            (T.STEP_COMPLETED, 1, epoch),
        ]
        run = store.get_run(rid)
        assert run is not None and run.last_seq == tail[-1].seq and run.steps_completed == 1


def test_the_committer_writes_one_batch_and_skips_only_the_stale_request(store: Store) -> None:
    stale, g1, g2 = _stale_and_good(store)
    row, journal = store.get_run("stale"), store.read_journal("stale")
    counting = FaultyStore(store)  # records the requests of every append call
    committer = Committer(counting.as_store())
    # Queued before the thread starts, and nobody waits: they linger into one batch.
    futs = [
        committer.submit(AppendRequest("g1", g1, [step_completed(1, "one")]), waited=False),
        committer.submit(AppendRequest("stale", stale, [step_completed(1, "x")]), waited=False),
        committer.submit(AppendRequest("g2", g2, [step_completed(1, "two")]), waited=False),
    ]
    committer.start()
    try:
        results = [f.result(timeout=10) for f in futs]
        batches = [run_ids(c) for c in counting.calls_to("append")]
        assert batches == [["g1", "stale", "g2"]], "not one group-commit batch"
        assert [r.ok for r in results] == [True, False, True]
        _assert_stale_untouched(store, row, journal)
        assert [e.type for e in store.read_journal("g1")][-1] == T.STEP_COMPLETED
        assert [e.type for e in store.read_journal("g2")][-1] == T.STEP_COMPLETED
        # The stale (run, epoch) is fenced off for good; the good ones go on.
        more = [
            committer.submit(AppendRequest("stale", stale, [step_completed(2, "y")])),
            committer.submit(AppendRequest("g1", g1, [step_completed(2, "z")])),
        ]
        assert [f.result(timeout=10).ok for f in more] == [False, True]
        _assert_stale_untouched(store, row, journal)
    finally:
        committer.stop()


def lost_ack(when: Callable[[AppendRequest], bool]) -> LoseReply:
    """An ``after`` hook of ``append``: the first call with a request matching ``when``
    commits and then raises, as if the connection broke between COMMIT and its
    acknowledgement."""

    def committed_and_matching(call: Call, results: Any) -> bool:
        requests = call.arg(0, "requests")
        return all(r.ok for r in results) and any(when(r) for r in requests)

    def error() -> StoreError:
        return StoreError("server closed the connection after COMMIT (simulated)", transient=True)

    return LoseReply(error, when=committed_and_matching)


def _has(type_: str, position: int | None) -> Callable[[AppendRequest], bool]:
    def match(req: AppendRequest) -> bool:
        return any(e.type == type_ and e.position == position for e in req.events)

    return match


LOST_ACKS = {
    # The outcome of step 2 committed but the worker does not know: the committer retries it,
    # finds the rows of that append (append_id) and takes the retry as done; the run goes on
    # under the same lease, and step 2 is neither written nor run again.
    "step-outcome": (_has(T.STEP_COMPLETED.value, 2), False),
    # The run's end committed: the retry finds the run ended and writes nothing.
    "run-completed": (_has(T.RUN_COMPLETED.value, None), False),
}


@pytest.mark.parametrize("what", list(LOST_ACKS))
def test_a_commit_whose_acknowledgement_is_lost(
    what: str, db_url: str, make_app: Callable[..., durable.App], wait_until: Any
) -> None:
    when, dropped = LOST_ACKS[what]
    lease = 3.0  # the heartbeat (every lease/3) must not lapse on a loaded machine
    app = make_app("lostack", lease_timeout=lease)
    lost = lost_ack(when)
    flaky = FaultyStore(open_store(db_url), after={"append": lost})
    # Every part of the App writes through it.
    with use_store(app, flaky), closing(flaky):
        ran: list[int] = []

        @app.step
        def step(i: int) -> int:
            ran.append(i)
            return i * 10

        @app.workflow
        def three() -> int:
            return step(1) + step(2) + step(3)

        client = app.client()
        with app.worker(concurrency=2):
            handle = client.start(three)
            began = time.monotonic()
            assert handle.result(timeout=20) == 60
            took = time.monotonic() - began
        assert lost.fired, "the fault was never injected"
        events = assert_journal_invariants(client, handle.id)
        assert ran == [1, 2, 3], f"a committed step ran again: {ran}\n{format_journal(events)}"
        completed = [e for e in events if e.type == "step_completed"]
        assert [e.position for e in completed] == [1, 2, 3]
        assert [e.type for e in events].count("run_completed") == 1
        takes = [e for e in events if e.type == "lease_taken"]
        if dropped:
            # Resumed on a new lease from what was committed: step 2's outcome is the first
            # lease's, step 3 ran under the second.
            assert len(takes) == 2, format_takes(takes)
            assert completed[1].epoch == takes[0].epoch < takes[1].epoch == completed[2].epoch
            assert took >= lease * 0.8, f"resumed after {took:.2f}s, before the lease expired"
        else:
            assert len(takes) == 1, format_takes(takes)
        assert_no_stranded_runs(client)


def format_takes(takes: Sequence[Any]) -> str:
    return "; ".join(f"seq={e.seq} epoch={e.epoch} {e.data}" for e in takes)


def test_a_lost_acknowledgement_of_a_step_start_does_not_duplicate_it(
    db_url: str, make_app: Callable[..., durable.App]
) -> None:
    app = make_app("lostack", lease_timeout=3.0)
    lost = lost_ack(_has(T.STEP_STARTED.value, 2))
    flaky = FaultyStore(open_store(db_url), after={"append": lost})
    with use_store(app, flaky), closing(flaky):

        @app.step
        def step(i: int) -> int:
            return i

        @app.workflow
        def three() -> int:
            return step(1) + step(2) + step(3)

        client = app.client()
        with app.worker(concurrency=2):
            handle = client.start(three)
            assert handle.result(timeout=20) == 6
        assert lost.fired
        events = assert_journal_invariants(client, handle.id)
        starts = Counter(e.position for e in events if e.type == "step_started")
        assert starts == {1: 1, 2: 1, 3: 1}, f"step_started written twice:\n{events}"
