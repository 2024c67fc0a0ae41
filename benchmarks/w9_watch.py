"""W9 watching runs from another process (``client.watch``), pushed by the log.

- ``w9-latency``: commit to watcher. One watcher process follows one run; the benchmark
  process appends ``settings.w9_events`` ``message`` events to it, one per transaction,
  ``settings.w9_gap`` seconds apart (so the watcher is idle before each, as a watcher
  mostly is), through the log's own append under a lease (what a worker's committer
  calls). Per event: from just before the append call to the event's arrival in the watcher
  process, so the commit itself (its flush) is included: an upper bound of commit to
  watcher. Mean in the table, p50/p99 below (the target: p50 under 5 ms, p99 under 20 ms);
  also ``after_return_p50_us``, from the call's return instead (a lower bound: on SQLite
  the wake-up is written before the call returns, so it can be negative), and
  ``append_call_p50_us``, the append call itself.
- ``w9-fanout``: ``settings.w9_watchers`` watches (threads of one watcher process, one
  client) on as many runs of the ten no-op steps, drained by an embedded worker of
  ``concurrency=16`` in the benchmark process. The figure is the watcher process's CPU per
  event it received; below the table ``reads_per_event`` (journal reads, one statement
  each, over the events; each watch also reads its run's row once when it starts) and the
  delays from each event's ``at`` to its arrival.

DBOS Transact has no equivalent to compare with: it pushes no workflow progress to other
processes (``DBOS.get_event`` and its streams are read by polling the system database), so
these workloads have no ``dbos`` cell.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from typing import Any

from benchmarks.bench_app import FIRST_STEP, build
from benchmarks.logs import fresh_log
from benchmarks.model import Measurement, Settings
from benchmarks.procs import ROOT
from benchmarks.timing import percentiles_us


def _watcher(url: str, ids: list[str], err: Any) -> subprocess.Popen[bytes]:
    fd, path = tempfile.mkstemp(prefix="durable-bench-ids-", suffix=".txt")
    with os.fdopen(fd, "w") as f:
        f.write("\n".join(ids) + "\n")
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (ROOT, env.get("PYTHONPATH")) if p)
    proc = subprocess.Popen(
        [sys.executable, "-m", "benchmarks._watcher", url, path],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=err,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    os.unlink(path)
    if line.strip() != b"ready":
        proc.kill()
        proc.wait()
        err.seek(0)
        raise RuntimeError(f"the watcher process did not start:\n{err.read().decode()[-3000:]}")
    return proc


def _finish(watcher: subprocess.Popen[bytes], err: Any) -> dict[str, Any]:
    try:
        out, _ = watcher.communicate(timeout=120)
    finally:
        if watcher.poll() is None:
            watcher.kill()
            watcher.wait()
    if watcher.returncode != 0:
        err.seek(0)
        raise RuntimeError(f"the watcher process failed:\n{err.read().decode()[-3000:]}")
    got: dict[str, Any] = json.loads(out.decode().strip().splitlines()[-1])
    return got


def _common(got: dict[str, Any]) -> dict[str, float]:
    events = max(int(got["events"]), 1)
    from_at = [int((recv - at) * 1e9) for rows in got["arrivals"].values() for _, recv, at in rows]
    return {
        **percentiles_us(from_at, "from_at"),
        "reads_per_event": got["reads"] / events,
        "watcher_cpu_us_per_event": got["cpu_s"] * 1e6 / events,
        "events": float(got["events"]),
        "pushed": float(bool(got["pushed"])),
    }


def durable_w9_latency(settings: Settings, backend: str) -> Measurement:
    """Commit-to-watcher delay of ``settings.w9_events`` appends, the watcher in another
    process."""
    from durable.events import CancelData, EventType, MessageData, NewEvent
    from durable.log.store import AppendRequest

    with fresh_log(settings, backend, "w9l") as url, tempfile.TemporaryFile() as err:
        bench = build(url)
        app = bench.app
        try:
            store = app.store
            run_id = app.client().start(bench.first_step).id
            (lease,) = store.lease("bench-w9", 600.0, [FIRST_STEP], None, 1)
            watcher = _watcher(url, [run_id], err)
            calls: dict[int, tuple[float, float]] = {}
            for i in range(settings.w9_events):
                time.sleep(settings.w9_gap)
                ev = NewEvent(EventType.MESSAGE, MessageData(text=f"m{i}"))
                before = time.time()
                (res,) = store.append([AppendRequest(run_id, lease.epoch, [ev])])
                calls[res.last_seq] = (before, time.time())
                assert res.ok, res
            # Ends the run (and the watch) under the lease, as its worker would.
            done = NewEvent(EventType.RUN_CANCELLED, CancelData(text="the benchmark is done"))
            (end,) = store.append([AppendRequest(run_id, lease.epoch, [done])])
            assert end.ok, end
            got = _finish(watcher, err)
        finally:
            app.close()
    rows = [(seq, recv) for seq, recv, _ in got["arrivals"][run_id] if seq in calls]
    delays = [int((recv - calls[seq][0]) * 1e9) for seq, recv in rows]
    after_return = [int((recv - calls[seq][1]) * 1e9) for seq, recv in rows]
    append = [int((b - a) * 1e9) for a, b in calls.values()]
    return Measurement(
        ops=len(delays),
        seconds=sum(delays) / 1e9,
        extra={
            **percentiles_us(delays, "delay"),
            **percentiles_us(after_return, "after_return"),
            **percentiles_us(append, "append_call"),
            **_common(got),
        },
    )


def durable_w9_fanout(settings: Settings, backend: str) -> Measurement:
    """``settings.w9_watchers`` watches on as many ten-step runs: the watcher process's CPU
    per event, and its reads per event."""
    with fresh_log(settings, backend, "w9f") as url, tempfile.TemporaryFile() as err:
        bench = build(url)
        app = bench.app
        client = app.client()
        try:
            handles = [client.start(bench.ten_steps) for _ in range(settings.w9_watchers)]
            watcher = _watcher(url, [h.id for h in handles], err)
            with app.worker(concurrency=settings.worker_concurrency):
                for h in handles:
                    h.result(timeout=120)
            got = _finish(watcher, err)
        finally:
            app.close()
    events = max(int(got["events"]), 1)
    return Measurement(ops=events, seconds=float(got["cpu_s"]), extra=_common(got))
