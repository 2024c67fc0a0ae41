"""W15 a workflow under ``durable.testing``: wall time to its result on the virtual clock.

The workflow sleeps 30 days (``durable.sleep``), waits a week for a signal that never comes
(``durable.wait_signal(timeout=...)``, which returns ``None``), then calls a step that fails
three times and retries each time an hour later (``Retry(initial_delay=3600)``): 37 days
and 3 hours of virtual time, four leases, eleven journaled positions. One ``env(app)`` per
repetition; ``Settings.w15_runs`` runs (default 20; ``--quick`` 3) started and awaited one
at a time after one untimed run, ``client.start(wf).result()`` timed around each. The
figure is the mean wall time per run (target: under 100 ms); below the table ``p50_ms``,
``max_ms``, ``env_ms`` (entering and leaving the env: the temporary log created, the
worker started, drained and the folder removed) and ``virtual_days`` per run.
SQLite only: the env's log is a temporary SQLite file whatever the backend.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

from benchmarks.model import Measurement, Settings

DAY = 86400.0
HOUR = 3600.0


def _app() -> Any:
    import durable

    app = durable.App("bench-testing", database="sqlite:///never-opened-w15.db")

    @app.step(retry=durable.Retry(attempts=4, initial_delay=HOUR, max_delay=HOUR, jitter=False))
    def charge() -> str:
        if (durable.info().step_attempt or 1) < 4:
            raise ConnectionError("declined, try again in an hour")
        return "charged"

    @app.workflow(name="bench_subscription")
    def subscription() -> str:
        durable.sleep(30 * DAY)
        confirmed = durable.wait_signal("confirm", timeout=7 * DAY)
        return f"{confirmed} {charge()}"

    return app, subscription


def durable_w15(settings: Settings, backend: str) -> Measurement:
    """The 37-day workflow under ``durable.testing.env``, run after run."""
    from durable.testing import env

    app, subscription = _app()
    times: list[float] = []
    entered = time.perf_counter()
    t = env(app).start()
    env_s = time.perf_counter() - entered
    try:
        assert t.client.start(subscription).result(timeout=60) == "None charged"
        skipped = t.clock.skipped
        for _ in range(settings.w15_runs):
            s = time.perf_counter()
            t.client.start(subscription).result(timeout=60)
            times.append(time.perf_counter() - s)
        per_run_days = (t.clock.skipped - skipped) / settings.w15_runs / DAY
    finally:
        left = time.perf_counter()
        t.close()
        env_s += time.perf_counter() - left
    return Measurement(
        ops=len(times),
        seconds=sum(times),
        extra={
            "p50_ms": statistics.median(times) * 1e3,
            "max_ms": max(times) * 1e3,
            "env_ms": env_s * 1e3,
            "virtual_days": per_run_days,
        },
    )
