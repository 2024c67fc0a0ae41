"""A worker process for the queue-limit tests: ``queued.py DB_URL WORKER_ID DIR``.

Its App declares queue ``limited`` with ``concurrency=2`` and queue ``rated`` with at most 3
starts per 2 seconds; every step body records its (start, end) to DIR.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import durable
from durable import App

CONCURRENCY = 2
RATE = (3, 2.0)


def make_app(url: str, directory: str) -> App:
    """The App every process of the test runs."""
    app = App("queued", database=url, lease_timeout=5.0, poll_interval=0.2)
    app.queue("limited", concurrency=CONCURRENCY)
    app.queue("rated", rate_limit=RATE)

    @app.step(name="hold")
    def hold(seconds: float) -> str:
        start = time.time()
        time.sleep(seconds)
        record = {"run": durable.info().id, "pid": os.getpid(), "start": start, "end": time.time()}
        with open(Path(directory) / f"{os.getpid()}.jsonl", "a") as f:
            f.write(json.dumps(record) + "\n")
        return "ok"

    @app.workflow(name="limited", queue="limited")
    def limited(seconds: float) -> str:
        return hold(seconds)

    @app.workflow(name="rated", queue="rated")
    def rated(seconds: float) -> str:
        return hold(seconds)

    return app


if __name__ == "__main__":
    url, worker_id, directory = sys.argv[1:4]
    make_app(url, directory).run_worker(concurrency=1, worker_id=worker_id)
