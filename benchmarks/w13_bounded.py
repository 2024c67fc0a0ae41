"""W13 bounded queues: ``client.start`` per second into a queue near its ``max_pending``
limit, against the same starts into an unbounded queue, in the same run.

One fresh log, one App that declares queue ``bounded`` with ``max_pending`` and leaves queue
``open`` unbounded; no worker drains either. Both queues first get ``PREFILL`` runs not yet
started (one untimed ``start_many`` each), so that each bounded start counts a queue that
is nearly full: its limit is ``PREFILL + settings.w8_starts``, and the last timed start
fills it. The timed starts (``settings.w8_starts`` into each queue) alternate between the
two queues in chunks of ``CHUNK``, so that drift of the machine falls on both alike. Then
``REFUSED`` starts into the full bounded queue, each refused with ``QueueFullError``.

Primary figure: bounded starts per second; below the table ``unbounded_starts_per_s``,
``ratio`` (bounded over unbounded: 1.0 is free) and ``refused_per_s``. Checked against the
log afterwards (the bounded queue holds exactly its limit).
"""

from __future__ import annotations

import time

from benchmarks.logs import fresh_log
from benchmarks.model import Measurement, Settings

PREFILL = 1000
"""Runs not yet started put in each queue before the clock starts."""
CHUNK = 50
"""Timed starts into one queue before the other queue's turn."""
REFUSED = 200
"""Starts timed into the full bounded queue (each refused)."""
WARMUP = 10


def durable_w13(settings: Settings, backend: str) -> Measurement:
    """Time ``settings.w8_starts`` bounded and as many unbounded starts, interleaved."""
    import durable

    n = settings.w8_starts
    limit = PREFILL + WARMUP + n
    with fresh_log(settings, backend, "w13") as url:
        app = durable.App("bench-bounded", database=url)
        app.queue("bounded", max_pending=limit)

        def job_body(i: int) -> int:
            return i

        job = app.workflow(name="bench_bounded_job", queue="bounded")(job_body)
        client = app.client()
        try:
            for queue in ("bounded", "open"):
                client.start_many(job, list(range(PREFILL)), queue=queue)
                for i in range(WARMUP):
                    client.start(job, i, queue=queue)
            seconds = {"bounded": 0.0, "open": 0.0}
            done = 0
            while done < n:
                k = min(CHUNK, n - done)
                for queue in ("bounded", "open"):
                    t0 = time.perf_counter()
                    for i in range(k):
                        client.start(job, i, queue=queue)
                    seconds[queue] += time.perf_counter() - t0
                done += k
            t0 = time.perf_counter()
            for i in range(REFUSED):
                try:
                    client.start(job, i)
                except durable.QueueFullError:
                    continue
                raise AssertionError("W13: a start into the full queue was not refused")
            refused_s = time.perf_counter() - t0
            held = len(client.list_runs(status="pending", queue="bounded", limit=2 * limit))
            if held != limit:
                raise AssertionError(f"W13: the bounded queue holds {held}, not {limit}")
        finally:
            client.close()
            app.close()
    bounded_rate = n / seconds["bounded"]
    open_rate = n / seconds["open"]
    return Measurement(
        ops=n,
        seconds=seconds["bounded"],
        extra={
            "unbounded_starts_per_s": open_rate,
            "ratio": bounded_rate / open_rate,
            "refused_per_s": REFUSED / refused_s,
        },
    )
