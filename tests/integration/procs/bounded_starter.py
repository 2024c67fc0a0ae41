"""A starter process for the bounded-queue tests: ``bounded_starter.py DB_URL GO_FILE MODE N``.

Its App declares queue ``bounded`` with ``max_pending=LIMIT``. It waits for GO_FILE to exist
(so that every starter begins at once), then tries N starts (MODE ``one``: ``client.start``;
``many``: ``client.start_many`` of 3 runs each), and prints one JSON line: how many runs it
started and how many attempts were refused with ``QueueFullError``.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import durable
from durable import App

LIMIT = 7
BATCH = 3


def make_app(url: str | None = None) -> App:
    """The App every starter runs (no worker: the runs stay pending)."""
    app = App("bounded", database=url)
    app.queue("bounded", max_pending=LIMIT)

    @app.workflow(name="job", queue="bounded")
    def job(n: int) -> int:
        return n

    return app


app = make_app()
"""For ``durable --database URL start job 1 --app bounded_starter:app``."""

if __name__ == "__main__":
    url, go, mode, n = sys.argv[1], Path(sys.argv[2]), sys.argv[3], int(sys.argv[4])
    app = make_app(url)
    client = app.client()
    print("ready", flush=True)
    while not go.exists():
        time.sleep(0.005)
    started = refused = 0
    for i in range(n):
        try:
            if mode == "one":
                client.start("job", i)
                started += 1
            else:
                started += len(client.start_many("job", [i] * BATCH))
        except durable.QueueFullError:
            refused += 1
    print(json.dumps({"started": started, "refused": refused}), flush=True)
    client.close()
    app.close()
