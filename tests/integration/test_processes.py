"""Real worker processes, really killed, on a real SQLite file.

Each test starts workers as child processes (``procs/worker.py``, which runs the App of
``procs/wfapp.py``) through the ``processes`` fixture, kills or stops them with real signals,
and checks from outside: the side-effect files that the step bodies write (one line per
execution), the run's result, and its journal through the public ``durable.Client``. After
each test the invariants of GUARANTEES.md are checked on every run (``invariants.py``).

- SIGKILL in the middle of a step: the run resumes in a new process, at once under the same
  worker id (G8 reclaim), after the lease under another id; completed steps ran once, the
  in-flight one at most twice, with the same ``step_key`` (G5).
- SIGSTOP past the lease: another process takes the run over and completes it; after SIGCONT
  the stalled process appends nothing, although its step body finishes (G7 fencing).
- SIGKILL while a run sleeps: another process wakes it on time (durable sleep).
- Two processes draining 40 runs never run one run at once, each step is recorded once.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from harness.processes import Proc, Processes, wait_for
from invariants import assert_journal_invariants, assert_no_stranded_runs
from procs.wfapp import make_app, read_lines

pytestmark = [
    pytest.mark.timeout(90),
    pytest.mark.skipif(sys.platform == "win32", reason="needs POSIX signals"),
]

HERE = Path(__file__).resolve().parent
WORKER = HERE / "procs" / "worker.py"
TERMINAL = frozenset({"completed", "failed", "cancelled"})


# ---------------------------------------------------------------- worker processes


class Workers:
    """The worker processes of one test (``procs/worker.py``), among its ``processes``."""

    def __init__(self, processes: Processes, db_url: str) -> None:
        self.processes = processes
        self.db_url = db_url

    def start(self, worker_id: str, *, lease_timeout: float, concurrency: int = 4) -> Proc:
        """Start a worker under ``worker_id``; its output goes to a log file."""
        args = [self.db_url, worker_id, lease_timeout, concurrency]
        return self.processes.python(WORKER, *args, name=f"worker-{worker_id}")

    def describe(self) -> str:
        """Every worker's exit code and the tail of its output."""
        return self.processes.describe()


@pytest.fixture
def workers(db_url: str, processes: Processes) -> Workers:
    return Workers(processes, db_url)


@pytest.fixture
def starter(db_url: str) -> Iterator[Callable[[float], Any]]:
    """``starter(lease_timeout)``: the client of an App that registers the test workflows."""
    apps: list[Any] = []

    def make(lease_timeout: float) -> Any:
        app = make_app(db_url, lease_timeout=lease_timeout)
        apps.append(app)
        return app.client()

    yield make
    for app in apps:
        close = getattr(app, "close", None)
        if callable(close):
            close()


# ---------------------------------------------------------------- polling


def _value(status: Any) -> str:
    return str(getattr(status, "value", status))


def status_of(client: Any, run_id: str) -> str:
    """The run's status as its lower-case value."""
    return _value(client.get(run_id).status())


def wait_terminal(client: Any, run_id: str, timeout: float, workers: Workers, why: str = "") -> str:
    """Wait until the run has ended; return its status value."""
    seen: list[str] = []

    def ended() -> bool:
        seen.append(status_of(client, run_id))
        return seen[-1] in TERMINAL

    wait_for(ended, timeout, lambda: f"run {run_id} to end (last status {seen[-1:]}){why}", workers)
    return seen[-1]


def pids(lines: list[dict[str, Any]]) -> list[int]:
    return [line["pid"] for line in lines]


def marker_pids(fx: Path) -> list[int]:
    return sorted(int(p.name.rsplit(".", 1)[1]) for p in fx.glob("b.marker.*"))


def first(events: list[Any], type_: str, name: str | None = None) -> Any:
    for event in events:
        if event.type == type_ and (name is None or event.name == name):
            return event
    raise AssertionError(f"no {type_} {name or ''} event in the journal")


# ---------------------------------------------------------------- 1. SIGKILL mid-step


@pytest.mark.parametrize("same_id", [True, False], ids=["same-worker-id", "other-worker-id"])
def test_sigkill_mid_step_resumes_in_a_new_process(
    same_id: bool, db_url: str, fx: Path, workers: Workers, check: Any, starter: Any
) -> None:
    lease = 30.0 if same_id else 2.0
    (fx / "block").touch()
    handle = starter(lease).start("three_steps", str(fx))

    spawned_first = time.time()
    victim = workers.start("w-one", lease_timeout=lease)
    wait_for(lambda: marker_pids(fx), 15, "step_b to start in the first worker", workers)
    assert marker_pids(fx) == [victim.pid]
    victim.kill()
    (fx / "block").unlink()

    killed = time.monotonic()
    heir = workers.start("w-one" if same_id else "w-two", lease_timeout=lease)
    why = "; a same-id restart must reclaim at once, not after the 30 s lease" if same_id else ""
    status = wait_terminal(check, handle.id, 18, workers, why)
    elapsed = time.monotonic() - killed
    assert status == "completed", workers.describe()
    if same_id:
        # Reclaim under the same identity is immediate, not after the 30 s lease (G8).
        assert elapsed < 15, f"same-id restart took {elapsed:.1f}s to complete the run"

    a, b, c = (read_lines(fx / f"{s}.log") for s in "abc")
    assert pids(a) == [victim.pid], "a completed step ran again after the restart"
    assert pids(b) == [victim.pid, heir.pid], "the in-flight step ran other than twice"
    assert b[0]["key"] == b[1]["key"] == f"{handle.id}:2", "step_key changed across processes"
    assert pids(c) == [heir.pid]
    assert pids(read_lines(fx / "b.done")) == [heir.pid]
    if not same_id:
        # Under another identity the run waits for the lease, taken after the first spawn.
        assert b[1]["t"] - spawned_first >= lease, "the run was taken over before its lease expired"

    expected = f"a:{victim.pid}|b:{heir.pid}|c:{heir.pid}"
    assert check.get(handle.id).result(timeout=5) == expected

    events = assert_journal_invariants(check, handle.id)
    done_a = first(events, "step_completed", "step_a")
    done_b = first(events, "step_completed", "step_b")
    assert done_b.epoch > done_a.epoch, "the new process appended under the dead one's epoch"
    assert [e.position for e in events if e.type == "step_completed"] == [1, 2, 3]
    assert_no_stranded_runs(check)


# ---------------------------------------------------------------- 2. SIGSTOP past the lease


@pytest.mark.parametrize("release", ["after-sigcont", "before-sigcont"])
def test_sigstopped_worker_is_fenced_off_after_takeover(
    release: str, db_url: str, fx: Path, workers: Workers, check: Any, starter: Any
) -> None:
    """``after-sigcont``: the stalled worker runs (heartbeat, self-fencing) before its body
    finishes, then both bodies finish at once. ``before-sigcont``: the stalled body finishes
    the moment the process continues, so its outcome races the lease-loss detection and is
    stopped by the epoch fence of the append itself."""
    lease = 1.5
    (fx / "block").touch()
    handle = starter(lease).start("three_steps", str(fx))

    stalled = workers.start("w-stalled", lease_timeout=lease)
    wait_for(lambda: marker_pids(fx), 15, "step_b to start in the first worker", workers)
    # Stop it while the body runs, not while it writes: a process stopped inside a SQLite
    # write transaction holds the file's write lock and stops every writer until it goes on
    # or dies (on Postgres the server ends such a session after a third of a lease).
    wait_for(
        lambda: any(
            e.type == "step_started" and e.position == 2 for e in check.get(handle.id).events()
        ),
        15,
        "step_b's start to be journaled",
        workers,
    )
    stalled.stop()

    # The second worker takes the run over once the lease expires and blocks in step_b too
    # (on its own block file, so that the shared one can be lifted for the stalled body only).
    rescuer = workers.start("w-rescuer", lease_timeout=lease)
    (fx / f"block.{rescuer.pid}").touch()
    wait_for(lambda: rescuer.pid in marker_pids(fx), 15, "the second worker to take over", workers)
    assert status_of(check, handle.id) == "running"

    # Wake the stalled worker while the run is live in the other one.
    if release == "after-sigcont":
        stalled.cont()
        time.sleep(0.5)
        (fx / "block").unlink()
    else:
        (fx / "block").unlink()
        stalled.cont()
    # The stalled body finishes and its worker tries (and must fail) to record it, while the
    # rescuer still holds the run.
    wait_for(
        lambda: stalled.pid in pids(read_lines(fx / "b.done")) or stalled.poll() is not None,
        5,
        "the stalled worker's step_b body to finish",
        workers,
    )
    time.sleep(0.5)
    assert status_of(check, handle.id) == "running"
    (fx / f"block.{rescuer.pid}").unlink()

    status = wait_terminal(check, handle.id, 15, workers)
    assert status == "completed", workers.describe()
    time.sleep(0.5)

    a, b, c = (read_lines(fx / f"{s}.log") for s in "abc")
    assert pids(a) == [stalled.pid]
    assert pids(b) == [stalled.pid, rescuer.pid]
    assert b[0]["key"] == b[1]["key"]
    assert pids(c) == [rescuer.pid], "the fenced-off worker went on to the next step"
    # The stalled body finished but its outcome is not the recorded one.
    expected = f"a:{stalled.pid}|b:{rescuer.pid}|c:{rescuer.pid}"
    assert check.get(handle.id).result(timeout=5) == expected

    events = assert_journal_invariants(check, handle.id)
    old_epoch = first(events, "step_completed", "step_a").epoch
    takeover = next(e.seq for e in events if e.epoch > old_epoch)
    stale = [e for e in events if e.seq > takeover and e.epoch <= old_epoch]
    assert not stale, f"the stalled worker appended after the takeover: {stale}"
    assert [e.type for e in events].count("run_completed") == 1
    b_outcomes = [e for e in events if e.type == "step_completed" and e.name == "step_b"]
    assert len(b_outcomes) == 1 and b_outcomes[0].epoch > old_epoch
    assert_no_stranded_runs(check)


# ---------------------------------------------------------------- 3. durable sleep


def test_durable_sleep_survives_a_worker_killed_while_sleeping(
    db_url: str, fx: Path, workers: Workers, check: Any, starter: Any
) -> None:
    lease = 30.0
    began = time.monotonic()
    handle = starter(lease).start("sleepy", str(fx), 3.0)
    sleeper = workers.start("w-sleeper", lease_timeout=lease)
    wait_for(lambda: status_of(check, handle.id) == "sleeping", 10, "the run to sleep", workers)
    sleeper.kill()

    # Another identity: a sleeping run holds no lease, so nothing waits for the 30 s one.
    waker = workers.start("w-waker", lease_timeout=lease)
    status = wait_terminal(check, handle.id, 15, workers)
    elapsed = time.monotonic() - began
    assert status == "completed", workers.describe()
    assert elapsed >= 3.0, f"the run completed {elapsed:.2f}s after start, before its sleep"

    a, c = read_lines(fx / "a.log"), read_lines(fx / "c.log")
    assert pids(a) == [sleeper.pid], "the step before the sleep ran again"
    assert pids(c) == [waker.pid]
    assert c[0]["t"] - a[0]["t"] >= 3.0, "the step after the sleep ran before 3 s had passed"
    assert check.get(handle.id).result(timeout=5) == f"a:{sleeper.pid}|c:{waker.pid}"

    events = assert_journal_invariants(check, handle.id)
    types = [e.type for e in events]
    assert types.count("sleep_started") == 1
    assert types.count("sleep_fired") == 1
    assert types.count("step_completed") == 2
    assert_no_stranded_runs(check)


# ---------------------------------------------------------------- 4. two workers, one file


def test_two_worker_processes_never_run_one_run_twice_at_once(
    db_url: str, fx: Path, workers: Workers, check: Any, starter: Any
) -> None:
    runs, steps, hold = 40, 3, 0.05
    client = starter(30.0)
    handles = {tag: client.start("spans", str(fx), tag, steps, hold) for tag in range(runs)}
    left = workers.start("w-left", lease_timeout=30.0, concurrency=4)
    right = workers.start("w-right", lease_timeout=30.0, concurrency=4)

    def all_ended() -> bool:
        statuses = [_value(i.status) for i in check.list_runs(limit=1000)]
        return sum(s in TERMINAL for s in statuses) == runs

    wait_for(all_ended, 20, f"{runs} runs to end", workers)

    seen_pids: set[int] = set()
    for tag, handle in handles.items():
        assert status_of(check, handle.id) == "completed", workers.describe()
        assert check.get(handle.id).result(timeout=5) == sum(range(steps))
        spans = sorted(read_lines(fx / f"spans-{tag}.jsonl"), key=lambda s: s["start"])
        seen_pids.update(s["pid"] for s in spans)
        assert all(s["run"] == handle.id for s in spans)
        for i, earlier in enumerate(spans):
            for later in spans[i + 1 :]:
                assert later["start"] >= earlier["end"], (
                    f"run {handle.id}: step {earlier['step']} in pid {earlier['pid']} and "
                    f"step {later['step']} in pid {later['pid']} overlap: {spans}"
                )
        assert sorted(s["step"] for s in spans) == list(range(steps)), (
            f"run {handle.id}: a step body ran other than once: {spans}"
        )

        events = assert_journal_invariants(check, handle.id)
        completed = [e for e in events if e.type == "step_completed"]
        assert [e.position for e in completed] == list(range(1, steps + 1)), (
            f"run {handle.id}: steps not completed exactly once each: {completed}"
        )
        assert {e.name for e in completed} == {"span"}

    assert seen_pids == {left.pid, right.pid}, (
        f"expected both worker processes to run steps, saw pids {seen_pids}"
    )
    assert_no_stranded_runs(check)
