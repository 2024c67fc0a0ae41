"""W7 scale of the log: start, lease and complete cost with ``settings.w7_finished`` finished
runs (1,000,000) in the log, against an empty log, in the same repetition.

The big log is filled fast, outside the durable API: one real one-step run of the benchmark
workflow is run first (its row and its 5 events: ``run_started``, ``lease_taken``,
``step_started``, ``step_completed``, ``run_completed``), then cloned N times with one
``INSERT ... SELECT`` per table over a generated series (a recursive CTE on SQLite,
``generate_series`` on Postgres), run ids ``w7f-00000001`` and on, instants spread over the
N milliseconds before the template's, through the schema of ``durable.log.schema`` (every
index in place). SQLite commits the fill with ``synchronous=OFF``, checkpoints the WAL and
``sync``s after it; Postgres runs ``ANALYZE`` after it (as autovacuum would on a log that grew over
time; durable never runs ``ANALYZE`` on SQLite, so neither does this). The fill's seconds
are ``extra["fill_s"]``.

Then, on a fresh empty log and on the big one, one after the other: an embedded worker
(``with app.worker()``), ``settings.w7_warmup`` untimed runs, and ``settings.w7_runs`` one-step
runs started and awaited one at a time (``client.start(wf).result()``, as in W1). The table's
figure is the big log's mean wall time per run; under it ``ratio`` (big over empty, mean per
run; the target is at most 1.5x), ``ratio_p50`` (of the medians) and the same ratio for each
phase, from the client and the journal's
instants (medians over the timed runs):

- ``start``: the ``client.start`` call (the run's row and its first event);
- ``pickup``: ``run_started`` to ``lease_taken`` (the worker's wake-up and lease);
- ``execute``: ``lease_taken`` to ``run_completed`` (the step and the completion).
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable
from contextlib import ExitStack
from typing import Any

from benchmarks.logs import fresh_log, libpq_url
from benchmarks.model import Measurement, Settings

WORKFLOW = "bench_w7_one_step"
PREFIX = "w7f-"


def _register(app: Any) -> Callable[[], dict[str, int]]:
    def noop_body(i: int) -> dict[str, int]:
        return {"i": i, "ok": 1}

    noop: Callable[[int], dict[str, int]] = app.step(name="bench_w7_noop")(noop_body)

    def one_step_body() -> dict[str, int]:
        return noop(1)

    wf: Callable[[], dict[str, int]] = app.workflow(name=WORKFLOW)(one_step_body)
    return wf


def durable_w7(settings: Settings, backend: str) -> Measurement:
    """Fill a log with ``settings.w7_finished`` finished runs; time one-step runs on it and on
    an empty log, alternately."""
    with fresh_log(settings, backend, "w7big") as big_url:
        template = _one_run(big_url)
        t0 = time.perf_counter()
        _fill(big_url, backend, template, settings.w7_finished)
        fill_s = time.perf_counter() - t0
        with fresh_log(settings, backend, "w7empty") as empty_url:
            big, empty = _timed([big_url, empty_url], settings)
    n = settings.w7_runs
    extra: dict[str, float] = {
        "ratio": big["run"] / empty["run"],
        "ratio_p50": big["run_p50"] / empty["run_p50"],
        "fill_s": fill_s,
        "finished_runs": float(settings.w7_finished),
        "empty_us_per_run": empty["run"] * 1e6,
    }
    for phase in ("start", "pickup", "execute"):
        extra[f"{phase}_ratio"] = big[phase] / empty[phase] if empty[phase] > 0 else 0.0
        extra[f"{phase}_p50_us"] = big[phase] * 1e6
        extra[f"empty_{phase}_p50_us"] = empty[phase] * 1e6
    return Measurement(ops=n, seconds=big["run"] * n, cpu_seconds=big["cpu"] * n, extra=extra)


def _one_run(url: str) -> str:
    """Run one one-step run on ``url`` (creating the log); its id."""
    import durable

    app = durable.App("bench-w7", database=url)
    wf = _register(app)
    client = app.client()
    try:
        with app.worker():
            handle = client.start(wf)
            handle.result(timeout=60)
    finally:
        client.close()
        app.close()
    return str(handle.id)


def _timed(urls: list[str], settings: Settings) -> list[dict[str, float]]:
    """For each log of ``urls``: seconds per run (wall, CPU) and the medians of each phase,
    over ``settings.w7_runs`` one-step runs, the logs taking turns run by run (each with its
    own App and embedded worker, all open at once) so that drift affects them alike."""
    import durable

    with ExitStack() as stack:
        sides = []
        for url in urls:
            app = durable.App("bench-w7", database=url)
            stack.callback(app.close)
            wf = _register(app)
            client = app.client()
            stack.callback(client.close)
            stack.enter_context(app.worker())
            sides.append((client, wf))
        for client, wf in sides:
            for _ in range(settings.w7_warmup):
                client.start(wf).result(timeout=60)
        walls: list[list[float]] = [[] for _ in urls]
        cpus: list[list[float]] = [[] for _ in urls]
        starts: list[list[float]] = [[] for _ in urls]
        handles: list[list[Any]] = [[] for _ in urls]
        for _ in range(settings.w7_runs):
            for side, (client, wf) in enumerate(sides):
                c0 = time.process_time()
                t0 = time.perf_counter()
                handle = client.start(wf)
                t1 = time.perf_counter()
                handle.result(timeout=60)
                walls[side].append(time.perf_counter() - t0)
                cpus[side].append(time.process_time() - c0)
                starts[side].append(t1 - t0)
                handles[side].append(handle)
        out = []
        for side in range(len(urls)):
            pickups, executes = [], []
            for h in handles[side]:
                at = {str(e.type): e.at.timestamp() for e in h.events()}
                pickups.append(at["lease_taken"] - at["run_started"])
                executes.append(at["run_completed"] - at["lease_taken"])
            out.append(
                {
                    "run": statistics.fmean(walls[side]),
                    "run_p50": statistics.median(walls[side]),
                    "cpu": statistics.fmean(cpus[side]),
                    "start": statistics.median(starts[side]),
                    "pickup": statistics.median(pickups),
                    "execute": statistics.median(executes),
                }
            )
    return out


def _columns(table: Any) -> list[str]:
    return [c.name for c in table.columns]


def _select(cols: list[str], key: str, times: tuple[str, ...], run_id: str, alias: str) -> str:
    """The SELECT list that clones the template row ``alias`` as number ``s.x``."""
    out = []
    for c in cols:
        if c == key:
            out.append(run_id)
        elif c in times:
            out.append(f"{alias}.{c} - (:n - s.x + 1) * 0.001")
        else:
            out.append(f"{alias}.{c}")
    return ", ".join(out)


RUN_TIMES = ("created_at", "updated_at", "finished_at", "started_at")


def _fill(url: str, backend: str, template: str, n: int, prefix: str = PREFIX) -> None:
    """Clone the run ``template`` (its row and its events) ``n`` times, as runs ``prefix``
    followed by 8 digits (from 1)."""
    from durable.log.schema import events, runs

    rcols, ecols = _columns(runs), _columns(events)
    if backend == "sqlite":
        rid = f"'{prefix}' || printf('%08d', s.x)"
        series = "WITH RECURSIVE s(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM s WHERE x < :n) "
    else:
        rid = f"'{prefix}' || lpad(s.x::text, 8, '0')"
        series = "WITH s(x) AS (SELECT generate_series(1, :n)) "
    insert_runs = (
        f"{series}INSERT INTO durable_runs ({', '.join(rcols)}) "
        f"SELECT {_select(rcols, 'id', RUN_TIMES, rid, 't')} "
        "FROM s CROSS JOIN durable_runs t WHERE t.id = :template"
    )
    insert_events = (
        f"{series}INSERT INTO durable_events ({', '.join(ecols)}) "
        f"SELECT {_select(ecols, 'run_id', ('at',), rid, 'e')} "
        "FROM s CROSS JOIN durable_events e WHERE e.run_id = :template ORDER BY s.x, e.seq"
    )
    params: dict[str, Any] = {"n": n, "template": template}
    if backend == "sqlite":
        _fill_sqlite(url, [insert_runs, insert_events], params)
    else:
        _fill_postgres(url, [insert_runs, insert_events], params)


def _fill_sqlite(url: str, statements: list[str], params: dict[str, Any]) -> None:
    """Run ``statements`` in one transaction with ``synchronous=OFF``; checkpoint; sync."""
    import sqlite3

    from durable.log.sqlite import sqlite_path

    path = sqlite_path(url)
    assert path is not None
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA synchronous = OFF")
        conn.execute("BEGIN IMMEDIATE")
        for sql in statements:
            conn.execute(sql, params)
        conn.execute("COMMIT")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()
    # Write the fill's pages out now, or the kernel's writeback of them competes with the
    # timed runs' fsyncs (seconds of it for a million runs).
    os.sync()


def _fill_postgres(url: str, statements: list[str], params: dict[str, Any]) -> None:
    """Run ``statements`` in one transaction, then ``ANALYZE`` the two tables."""
    import psycopg

    with psycopg.connect(libpq_url(url)) as conn:
        for sql in statements:
            pg = sql.replace(":n", "%(n)s").replace(":template", "%(template)s")
            conn.execute(pg.encode(), params)
        conn.commit()
        conn.autocommit = True
        conn.execute(b"ANALYZE durable_runs")
        conn.execute(b"ANALYZE durable_events")
