"""W3 fan-out: one workflow starts ``settings.w3_children`` child workflows at once and
gathers their results.

The parent is an ``async`` workflow: ``await asyncio.gather(*(child(i) for i in range(n)))``,
each call of the ``child`` workflow inside it starting a child run (``durable/engine/
children.py``: journaled at the parent's position, the parent suspended until they end).
Each child is an ``async`` workflow of one no-op step returning a small dict. Everything
runs on one **embedded** worker (``with app.worker(concurrency=settings.worker_concurrency)``)
in the benchmark process, which also holds the client: no worker process.

The figure is the wall time from just before ``client.start(parent, n)`` to its result, per
child (``µs/child run``), and the same in seconds in ``extra["total_s"]``. After the clock
stops, the journal is read: ``parent_leases`` (how often the parent was leased: once, then
once per wake-up by children that ended) and ``extra_child_leases`` (child leases beyond one
each: a child leased again after a lease was lost or handed back). A small fan-out (two
children) is awaited first, untimed, as a warm-up.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from benchmarks.logs import fresh_log
from benchmarks.logsql import log_engine, scalar
from benchmarks.model import Measurement, Settings
from benchmarks.timing import Timer

PARENT = "bench_w3_parent"
CHILD = "bench_w3_child"


def _register(app: Any) -> Callable[[int], Awaitable[int]]:
    """The W3 workflows on ``app``; returns the parent."""

    async def noop_body(i: int) -> dict[str, int]:
        return {"i": i, "ok": 1}

    noop: Callable[[int], Awaitable[dict[str, int]]] = app.step(name="bench_w3_noop")(noop_body)

    async def child_body(i: int) -> dict[str, int]:
        return await noop(i)

    child: Callable[[int], Awaitable[dict[str, int]]] = app.workflow(name=CHILD)(child_body)

    async def parent_body(n: int) -> int:
        results = await asyncio.gather(*(child(i) for i in range(n)))
        return sum(r["i"] for r in results)

    parent: Callable[[int], Awaitable[int]] = app.workflow(name=PARENT)(parent_body)
    return parent


def durable_w3(settings: Settings, backend: str) -> Measurement:
    """One fan-out of ``settings.w3_children`` children on a fresh log, embedded worker."""
    import durable

    n = settings.w3_children
    with fresh_log(settings, backend, "w3") as url:
        app = durable.App("bench-w3", database=url)
        parent = _register(app)
        client = app.client()
        try:
            with app.worker(concurrency=settings.worker_concurrency):
                _check(client.start(parent, 2).result(timeout=60), 2)
                with Timer() as timer:
                    handle = client.start(parent, n)
                    result = handle.result(timeout=600)
            _check(result, n)
            parent_events = len(handle.events())
        finally:
            client.close()
            app.close()
        with log_engine(url) as engine:
            done = scalar(
                engine,
                "SELECT count(*) FROM durable_runs WHERE parent_id = :p AND status = 'completed'",
                p=handle.id,
            )
            # each child should be leased once (more: a lease lost or handed back mid-run)
            child_leases = scalar(
                engine,
                "SELECT count(*) FROM durable_events e JOIN durable_runs r ON r.id = e.run_id"
                " WHERE r.parent_id = :p AND e.type = 'lease_taken'",
                p=handle.id,
            )
            parent_leases = scalar(
                engine,
                "SELECT count(*) FROM durable_events WHERE run_id = :p AND type = 'lease_taken'",
                p=handle.id,
            )
    if done != n:
        raise AssertionError(f"W3: {done} of {n} children completed")
    return Measurement(
        ops=n,
        seconds=timer.seconds,
        cpu_seconds=timer.cpu_seconds,
        extra={
            "total_s": timer.seconds,
            "parent_events": float(parent_events),
            "parent_leases": float(parent_leases),
            "extra_child_leases": float(child_leases - n),
        },
    )


def _check(result: object, n: int) -> None:
    expected = n * (n - 1) // 2
    if result != expected:
        raise AssertionError(f"W3 parent of {n} children returned {result!r}, not {expected}")
