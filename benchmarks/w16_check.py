"""W16 ``durable check``: unfinished runs replayed against the code, per second.

A fresh log holds ``Settings.w16_runs`` (default 10,000; ``--quick`` 200) unfinished runs of a
workflow of 10 no-op steps that sleeps 30 days after them. One real run is run by an
embedded worker until it sleeps (its row and its 24 events: ``run_started``,
``lease_taken``, 10 steps started and completed, ``sleep_started``, ``run_suspended``); the
others are clones of it made with W7's ``INSERT ... SELECT`` fill (``w7_log_scale._fill``:
same journal and input, ids ``w16f-00000001`` and on, every index in place), which takes a
second where running them all would take a minute per backend.

Then, in each repetition, three checks of every run, each through ``client.check`` (what
``durable check`` calls), in the benchmark process:

- against the same code, in ``os.cpu_count()`` forked processes (``durable check``'s
  default ``--jobs``): the table's figure, runs checked per second;
- against the same code in this process alone (``jobs=1``): ``one_process_runs_per_s`` and
  ``speedup`` (forked over alone, same repetition);
- against code that adds a step before the sleep, so that every run would block at
  position 11 after 10 replayed steps, forked: ``blocking_runs_per_s``.

Each report is checked: every run looked at, every verdict as expected, as many processes
as asked. Also printed: ``jobs``; the CPU seconds of the check alone (``alone_cpu_s``) and
of the forked one, in the benchmark process (``parent_cpu_s``: the listing, the forks, the
verdicts received) and in the forked processes together (``children_cpu_s``), which on a
loaded machine say more than the wall times; ``fill_s`` (the clones' insert).
"""

from __future__ import annotations

import os
import resource
import time
from collections.abc import Callable
from typing import Any

from benchmarks.logs import fresh_log
from benchmarks.model import Measurement, Settings
from benchmarks.w7_log_scale import _fill

WORKFLOW = "bench_w16_ten_steps"
PREFIX = "w16f-"
STEPS = 10


def _app(url: str, *, changed: bool = False) -> tuple[Any, Callable[[], Any]]:
    """The benchmark's App on ``url``; ``changed``: a step added before the sleep."""
    import durable

    app = durable.App("bench-w16", database=url)

    def noop_body(i: int) -> dict[str, int]:
        return {"i": i, "ok": 1}

    noop: Callable[[int], dict[str, int]] = app.step(name="bench_w16_noop")(noop_body)

    def ten_steps_body() -> int:
        total = 0
        for i in range(STEPS):
            total += noop(i)["i"]
        if changed:
            noop(STEPS)
        durable.sleep(30 * 86400)
        return total

    wf: Callable[[], Any] = app.workflow(name=WORKFLOW)(ten_steps_body)
    return app, wf


def _template(url: str) -> str:
    """Run one run until it sleeps; its id."""
    import durable

    app, wf = _app(url)
    client = app.client()
    try:
        with app.worker():
            handle = client.start(wf)
            deadline = time.monotonic() + 60
            while handle.status() is not durable.Status.SLEEPING:
                if time.monotonic() > deadline:
                    raise AssertionError("W16: the template run never slept")
                time.sleep(0.01)
    finally:
        client.close()
        app.close()
    return str(handle.id)


def _cpu() -> tuple[float, float]:
    """CPU seconds so far of this process and of its children that have been waited for."""
    me, children = (resource.getrusage(w) for w in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))
    return me.ru_utime + me.ru_stime, children.ru_utime + children.ru_stime


def _timed(url: str, n: int, jobs: int, *, changed: bool = False) -> tuple[float, float, float]:
    """Wall seconds of one ``client.check(jobs=jobs)`` of the ``n`` runs (checked), and the
    CPU seconds of this process and of the forked ones over it."""
    app, _ = _app(url, changed=changed)
    client = app.client()
    try:
        cpu0 = _cpu()
        t0 = time.perf_counter()
        report = client.check(jobs=jobs)
        seconds = time.perf_counter() - t0
        cpu1 = _cpu()
    finally:
        client.close()
        app.close()
    outcomes = {r.outcome for r in report.runs}
    want = "blocks" if changed else "replays"
    if len(report.runs) != n or outcomes != {want} or report.jobs != jobs:
        raise AssertionError(
            f"W16: {len(report.runs)} runs checked of {n}, outcomes {outcomes}, "
            f"{report.jobs} processes of {jobs}"
        )
    if changed and {r.position for r in report.runs} != {STEPS + 1}:
        raise AssertionError("W16: the changed code did not block at the added step")
    return seconds, cpu1[0] - cpu0[0], cpu1[1] - cpu0[1]


def durable_w16(settings: Settings, backend: str) -> Measurement:
    """Fill a log with ``settings.w16_runs`` sleeping 10-step runs; time three checks."""
    from durable.checking import MIN_SHARE

    n = settings.w16_runs
    jobs = max(1, min(os.cpu_count() or 1, n // MIN_SHARE))  # as many as check_runs forks
    with fresh_log(settings, backend, "w16") as url:
        template = _template(url)
        t0 = time.perf_counter()
        _fill(url, backend, template, n - 1, prefix=PREFIX)
        fill_s = time.perf_counter() - t0
        forked, parent_cpu, children_cpu = _timed(url, n, jobs)
        alone, alone_cpu, _ = _timed(url, n, 1)
        blocking, _, _ = _timed(url, n, jobs, changed=True)
    return Measurement(
        ops=n,
        seconds=forked,
        cpu_seconds=parent_cpu + children_cpu,
        extra={
            "jobs": float(jobs),
            "one_process_runs_per_s": n / alone,
            "speedup": alone / forked,
            "blocking_runs_per_s": n / blocking,
            "alone_cpu_s": alone_cpu,
            "parent_cpu_s": parent_cpu,
            "children_cpu_s": children_cpu,
            "fill_s": fill_s,
        },
    )
