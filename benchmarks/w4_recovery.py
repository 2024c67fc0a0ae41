"""W4 recovery: ``settings.w4_runs`` runs of 10 steps that each sleep ``settings.w4_step_sleep``
(10 ms), drained by one worker **process**, killed with SIGKILL half-way; then either

- ``w4-same``: a worker process restarted under the **same identity** (``DURABLE_WORKER_ID``,
  which durable's worker reclaims at start without waiting for the leases to expire), or
- ``w4-other``: a worker process of **another identity**, started at once, which may take the
  killed worker's runs over only when their leases expire (the App's ``lease_timeout`` is
  ``settings.w4_lease_timeout``, 5 s by default)

finishes the rest. Both worker processes run ``app.run_worker(concurrency=16)``.

Every step body first appends ``"run step time"`` to a file of its process
(``bodies-PID.txt``), then sleeps. From those files and the log:

- *in flight at the kill*: bodies the killed process began minus ``step_completed`` events in
  the log just after the kill (it alone wrote them): bodies begun and not journaled;
- *ran twice*: ``(run, step)`` pairs with more than one body line over both processes (the
  target: at most as many as were in flight);
- *first resumed / taken-over step*: the earliest body line of the second process on a run the
  killed worker held (``status = 'running'`` under its identity just after the kill).

The table's figure (one op = one recovery) is, for ``w4-same``, the time from the restart
(just before the new process is spawned: interpreter start and imports included) to the first
resumed step (target: under 1 s); for ``w4-other``, the time from the kill to the first step
taken over (target: within ``lease_timeout`` + 1 s). ``all_done_s`` is the time from the same
origin until the last run's ``finished_at``.
"""

from __future__ import annotations

import collections
import os
import tempfile
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any

from benchmarks.logs import fresh_log
from benchmarks.logsql import log_engine, poll, rows, scalar
from benchmarks.model import Measurement, Settings
from benchmarks.procs import READY_TIMEOUT, WorkerProcess
from benchmarks.timing import temp_dir

WORKFLOW = "bench_w4_sleepy_steps"
BUILDER = "benchmarks.w4_recovery:build"
KILLED_ID = "bench-w4-first"
"""The identity of the worker that is killed (not of the ``host/pid`` form, which durable
would recognise as dead at once on this host and reclaim without waiting)."""
OTHER_ID = "bench-w4-other"
DRAIN_TIMEOUT = 600.0

_fds: dict[str, int] = {}


def _record(folder: str, k: int, i: int) -> None:
    """Append one body execution to this process's file (one ``write`` with ``O_APPEND``)."""
    fd = _fds.get(folder)
    if fd is None:
        path = os.path.join(folder, f"bodies-{os.getpid()}.txt")
        fd = _fds[folder] = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    os.write(fd, f"{k} {i} {time.time():.6f}\n".encode())


@dataclass(frozen=True, slots=True)
class W4App:
    app: Any
    """The ``durable.App`` (``lease_timeout`` as configured)."""
    sleepy: Callable[[int], dict[str, int]]
    """The workflow: run number ``k``, ``steps`` steps that record their body and sleep."""


def build(
    url: str, *, lease_timeout: float, bodies_dir: str, steps: int = 10, step_sleep: float = 0.01
) -> W4App:
    """The W4 App on ``url``, in the benchmark process and in the worker processes alike."""
    import durable

    app = durable.App("bench-w4", database=url, lease_timeout=lease_timeout)

    def sleepy_step_body(k: int, i: int) -> dict[str, int]:
        _record(bodies_dir, k, i)
        time.sleep(step_sleep)
        return {"k": k, "i": i}

    step: Callable[[int, int], dict[str, int]] = app.step(name="bench_w4_sleepy")(sleepy_step_body)

    def sleepy_body(k: int) -> dict[str, int]:
        last: dict[str, int] = {}
        for i in range(steps):
            last = step(k, i)
        return last

    return W4App(app=app, sleepy=app.workflow(name=WORKFLOW)(sleepy_body))


def durable_w4_same(settings: Settings, backend: str) -> Measurement:
    """Kill the worker half-way; a worker of the same identity restarts and finishes."""
    return _recovery(settings, backend, same=True)


def durable_w4_other(settings: Settings, backend: str) -> Measurement:
    """Kill the worker half-way; a worker of another identity takes over and finishes."""
    return _recovery(settings, backend, same=False)


def _run_id(k: int) -> str:
    return f"bench-w4-{k:06d}"


def _bodies(folder: str, pid: int) -> list[tuple[int, int, float]]:
    """``(run, step, time)`` of every body the process ``pid`` began."""
    path = os.path.join(folder, f"bodies-{pid}.txt")
    if not os.path.exists(path):
        return []
    out = []
    with open(path, encoding="ascii") as f:
        for line in f:
            parts = line.split()
            if len(parts) == 3:  # a line cut short by the kill is no body begun
                out.append((int(parts[0]), int(parts[1]), float(parts[2])))
    return out


def _recovery(settings: Settings, backend: str, same: bool) -> Measurement:
    runs, steps = settings.w4_runs, settings.steps
    lease_timeout = settings.w4_lease_timeout
    label = "w4s" if same else "w4o"
    with ExitStack() as stack:
        url = stack.enter_context(fresh_log(settings, backend, label))
        bodies = stack.enter_context(temp_dir(settings.tmpdir, f"{label}-bodies"))
        engine = stack.enter_context(log_engine(url))
        options: dict[str, Any] = {
            "lease_timeout": lease_timeout,
            "bodies_dir": bodies,
            "steps": steps,
            "step_sleep": settings.w4_step_sleep,
        }
        bench = build(url, **options)
        app = bench.app
        stack.callback(app.close)
        client = app.client()
        stack.callback(client.close)
        app.store  # noqa: B018 - create the log before the workers open it

        def spawn(worker_id: str) -> WorkerProcess:
            err = stack.enter_context(tempfile.TemporaryFile())
            proc = WorkerProcess(
                url,
                settings.worker_concurrency,
                err,
                builder=BUILDER,
                options=options,
                worker_id=worker_id,
            )
            stack.callback(proc.stop)
            return proc

        first = spawn(KILLED_ID)
        first.wait_ready(time.monotonic() + READY_TIMEOUT)
        for k in range(runs):
            client.start(bench.sleepy, k, id=_run_id(k))
        half = runs * steps // 2
        poll(
            lambda: int(
                scalar(engine, "SELECT coalesce(sum(steps_completed), 0) FROM durable_runs")
            ),
            lambda n: n >= half,
            DRAIN_TIMEOUT,
            "W4: steps completed before the kill",
        )
        t_kill = time.time()
        first.kill()

        # What the killed worker left: every figure here is read before anyone resumes.
        journaled = int(
            scalar(engine, "SELECT count(*) FROM durable_events WHERE type = 'step_completed'")
        )
        begun = _bodies(bodies, first.proc.pid)
        held_rows = rows(
            engine,
            "SELECT id, lease_expires_at FROM durable_runs"
            " WHERE status = 'running' AND lease_owner = :owner",
            owner=KILLED_ID,
        )
        held = {int(r[0].rsplit("-", 1)[1]) for r in held_rows}
        expiry = min((float(r[1]) for r in held_rows), default=t_kill)
        pending = int(scalar(engine, "SELECT count(*) FROM durable_runs WHERE status = 'pending'"))

        t_restart = time.time()
        second = spawn(KILLED_ID if same else OTHER_ID)
        second.wait_ready(time.monotonic() + READY_TIMEOUT)
        t_ready = time.time()
        poll(
            lambda: int(
                scalar(engine, "SELECT count(*) FROM durable_runs WHERE status = 'completed'")
            ),
            lambda n: n >= runs,
            DRAIN_TIMEOUT,
            "W4: runs completed after the recovery",
            every=0.05,
        )
        t_done = float(scalar(engine, "SELECT max(finished_at) FROM durable_runs"))
        code = second.stop()
        if code != 0:
            raise RuntimeError(f"W4: the second worker exited {code}:\n{second.tail()}")
        after = _bodies(bodies, second.proc.pid)
        total_completed = int(
            scalar(engine, "SELECT count(*) FROM durable_events WHERE type = 'step_completed'")
        )
        bad = int(scalar(engine, "SELECT count(*) FROM durable_runs WHERE status <> 'completed'"))

    if bad or total_completed != runs * steps:
        raise AssertionError(
            f"W4: {bad} runs not completed, {total_completed} step_completed of {runs * steps}"
        )
    counts = collections.Counter((k, i) for k, i, _ in begun + after)
    if len(counts) != runs * steps:
        raise AssertionError(f"W4: {len(counts)} distinct step bodies ran, not {runs * steps}")
    ran_twice = sum(n - 1 for n in counts.values() if n > 1)
    resumed = [t for k, _, t in after if k in held]
    if not held or not resumed:
        raise AssertionError(f"W4: the killed worker held {len(held)} runs; none resumed")
    first_resumed = min(resumed)
    origin = t_restart if same else t_kill
    extra = {
        "lease_timeout_s": lease_timeout,
        "held_at_kill": float(len(held)),
        "pending_at_kill": float(pending),
        "journaled_at_kill": float(journaled),
        "in_flight": float(len(begun) - journaled),
        "ran_twice": float(ran_twice),
        "ready_s": t_ready - t_restart,
        "all_done_s": t_done - origin,
    }
    if same:
        extra["first_step_s"] = first_resumed - t_restart
        extra["first_any_step_s"] = min(t for _, _, t in after) - t_restart
    else:
        extra["takeover_s"] = first_resumed - t_kill
        extra["lease_expiry_s"] = expiry - t_kill  # the first of the held leases to expire
    return Measurement(ops=1, seconds=first_resumed - origin, extra=extra)
