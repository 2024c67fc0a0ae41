"""BullMQ-style jobs on durable: progress, cancel, retries, retention, priority, rate limit,
a bounded queue and metrics, in one process.

Run it::

    python examples/bullmq_jobs.py demo            # SQLite bullmq_jobs.db in this folder
    python examples/bullmq_jobs.py demo --fast     # small delays (what the tests run)

What a BullMQ user writes, and what it is here:

- ``new Queue("images")`` with a ``limiter`` and a worker ``concurrency``:
  ``app.queue("images", concurrency=2, rate_limit=(10, 1.0), max_pending=8)``; the
  ``max_pending`` bound makes ``client.start`` raise ``durable.QueueFullError`` (nothing
  written) once 8 jobs wait, so a producer backs off instead of growing the backlog.
- ``queue.add(name, data, {priority, attempts: 3, backoff: {type: "exponential", delay:
  2000}, removeOnComplete: 10, removeOnFail: 5})``: ``client.start(job, data, priority=...)``;
  the retries are the step's ``Retry(attempts=3, initial_delay=2, backoff=2, jitter=False)``;
  the retention is the App's ``Retention(keep_completed=10, keep_failed=5)``. BullMQ's
  priority 1 is its highest; durable's higher numbers run first.
- ``job.updateProgress(n)``: ``durable.progress(n / 100)``, read with ``handle.info().progress``.
- cancelling a job: ``handle.cancel()``; the step sees ``durable.cancelled()`` turn true.
- ``queue.getJobCounts()`` / metrics: ``client.stats()`` (and the OpenTelemetry metrics).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from typing import Any

import durable
from durable import App, Retention, Retry

DEFAULT_DATABASE = "sqlite:///bullmq_jobs.db"
MAX_PENDING = 8

# tests/test_examples.py runs every example that defines TEST_ARGS, with a temporary
# database passed as --database URL, and expects exit status 0.
TEST_ARGS = ["demo", "--fast"]


def _pre_args() -> argparse.Namespace:
    """``--database`` and ``--fast``, read before the App is made (at import time)."""
    pre = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    pre.add_argument("--database")
    pre.add_argument("--fast", action="store_true")
    known, _ = pre.parse_known_args()
    return known


_PRE = _pre_args()
SCALE = 0.05 if _PRE.fast else 1.0
"""Every delay of the demo is multiplied by this (``--fast``: twenty times shorter)."""
RETENTION = Retention(keep_completed=10, keep_failed=5)  # removeOnComplete 10, removeOnFail 5

app = App(
    "bullmq-jobs",
    database=_PRE.database or os.environ.get("DURABLE_DATABASE_URL") or DEFAULT_DATABASE,
    retention=RETENTION,  # every worker of the App deletes what it lets go, now and then
    cancel_grace=5.0,
)
app.queue("images", concurrency=2, rate_limit=(10, 1.0), max_pending=MAX_PENDING)

_tries: dict[str, int] = {}
"""How often each job's resize was tried in this process (to fail the flaky one once)."""


# attempts: 3, backoff {type: "exponential", delay: 2000}: tries 2 s then 4 s apart (jitter
# off, as BullMQ's exponential backoff has none; durable's default spreads each delay).
@app.step(retry=Retry(attempts=3, initial_delay=2 * SCALE, backoff=2, jitter=False))
def resize(name: str, kind: str) -> dict[str, Any]:
    """The job's work: ten slices, reporting progress; flaky jobs fail their first try,
    broken ones every try, long ones run until cancelled."""
    _tries[name] = _tries.get(name, 0) + 1
    if kind == "broken" or (kind == "flaky" and _tries[name] == 1):
        raise ConnectionError(f"{name}: the image store did not answer (try {_tries[name]})")
    slices = 1000 if kind == "long" else 10
    for i in range(slices):
        if durable.cancelled():
            durable.output("stopped_at", i)
            return {"name": name, "slices": i}
        time.sleep(0.2 * SCALE)
        durable.progress((i + 1) / slices)  # job.updateProgress
    return {"name": name, "slices": slices, "tries": _tries[name]}


@app.workflow(queue="images")
def image_job(name: str, kind: str = "normal") -> dict[str, Any]:
    """One BullMQ job: its data are the arguments, its return value is the result."""
    # One write per line: the jobs run on several threads at once. Workflow code runs again
    # when a run resumes (after a step's retry backoff), so a retried job prints twice.
    print(f"  processing {name} ({kind})\n", end="", flush=True)
    return resize(name, kind)


def _add_until_full(client: durable.Client, names: list[tuple[str, str, int]]) -> list[Any]:
    """Add jobs; the bounded queue refuses the one past its limit, and nothing is written."""
    handles = []
    for name, kind, priority in names:
        try:
            handles.append(client.start(image_job, name, kind, id=name, priority=priority))
        except durable.QueueFullError as exc:
            print(f"refused {name}: {exc}")
    return handles


def _add_with_backoff(client: durable.Client, name: str) -> Any:
    """A producer that waits for room in the bounded queue instead of failing."""
    while True:
        try:
            return client.start(image_job, name, id=name)
        except durable.QueueFullError:
            time.sleep(0.5 * SCALE)


def _taken_at(client: durable.Client, run_id: str) -> float:
    """When a worker first took the run (its first ``lease_taken`` event)."""
    return next(e.at for e in client.events(run_id) if e.type == "lease_taken").timestamp()


def demo() -> int:
    """The whole story; returns the exit status."""
    # The first jobs are added before the worker starts: durable would warn that no live
    # worker serves them yet.
    logging.getLogger("durable.client").setLevel(logging.ERROR)
    client = app.client()
    first = [(f"img-{i}", "normal", 0) for i in range(5)]
    first += [("img-flaky", "flaky", 0), ("img-broken", "broken", 0), ("img-urgent", "normal", 10)]
    first.append(("img-one-too-many", "normal", 0))
    handles = _add_until_full(client, first)  # 8 wait: the 9th is refused
    print(f"{len(handles)} jobs waiting (max_pending={MAX_PENDING})")
    with app.worker(concurrency=4):
        for h in handles:
            try:
                h.result(timeout=120)
            except durable.RunFailedError as exc:
                print(f"{h.id} failed after its retries: {exc.error_type}: {exc.error_message}")
        long = client.start(image_job, "img-long", "long", id="img-long")
        while (long.info().progress or 0.0) < 0.01:  # it reported progress: it is running
            time.sleep(0.05)
        print(f"img-long at {long.info().progress:.0%}: cancel {long.cancel().value}")
        try:
            long.result(timeout=60)
        except durable.RunCancelledError:
            print(f"img-long is {long.status().value}, stopped at {long.outputs()}")
        more = [_add_with_backoff(client, f"img-more-{i}") for i in range(12)]
        for h in more:
            h.result(timeout=120)
    taken = {h.id: _taken_at(client, h.id) for h in handles}
    urgent_first = taken["img-urgent"] <= min(taken.values())
    print(f"img-urgent (priority 10) was in the worker's first take: {urgent_first}")
    print(f"img-flaky result: {client.get('img-flaky').result(timeout=5)}")
    for s in client.stats(window=None):  # queue.getJobCounts / metrics
        if s.workflow != "image_job":  # another App's workflows on the same log
            continue
        print(
            f"metrics {s.workflow} on {s.queue}: {s.completed} completed, {s.failed} failed, "
            f"{s.cancelled} cancelled, {s.pending} waiting, p50 {s.p50_seconds or 0:.2f} s"
        )
    deleted = client.prune(RETENTION)  # what a worker's retention pass also does
    kept = client.list_runs(workflow=image_job)
    by_status: dict[str, int] = {}
    for info in kept:
        by_status[info.status.value] = by_status.get(info.status.value, 0) + 1
    print(f"retention deleted {len(deleted)} runs; kept {dict(sorted(by_status.items()))}")
    client.close()
    ok = by_status.get("completed") == 10 and by_status.get("failed") == 1
    ok = ok and urgent_first and long.status() is durable.Status.CANCELLED
    return 0 if ok else 1


def main(argv: list[str]) -> int:
    """``demo [--fast] [--database URL]``."""
    parser = argparse.ArgumentParser(description=" ".join(__doc__.split("\n\n")[0].split()))
    parser.add_argument("command", choices=["demo"])
    parser.add_argument("--database", help="the log's URL (default: bullmq_jobs.db here)")
    parser.add_argument("--fast", action="store_true", help="small delays (for tests)")
    parser.parse_args(argv)
    try:
        return demo()
    finally:
        app.close()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
