"""The workflows of ``test_children_kill.py``, and the worker process that runs them.

    python tests/integration/procs/childrenapp.py DB_URL WORKER_ID LEASE_TIMEOUT QUEUE...

runs ``app.run_worker`` on the given queues under ``WORKER_ID``. The parent (queue
``default``) starts a child (queue ``kids``) with ``durable.start_child``, then holds in a
step until the file ``go`` exists in its directory, then waits for the child's result. The
child's step body appends one line per execution to ``kid.log``: a child started twice, or
run twice, shows there.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import durable

LIMIT = 60.0
"""Seconds after which a step that waits for its file gives up (a forgotten process ends)."""


def make_app(database: str, lease_timeout: float = 30.0) -> durable.App:
    """The App of the parent and its child."""
    app = durable.App("children", database=database, lease_timeout=lease_timeout)

    @app.step(name="kid_step")
    def kid_step(directory: str, x: int) -> int:
        with open(Path(directory) / "kid.log", "a") as f:
            f.write(f"{os.getpid()} {durable.info().id}\n")
        return x * 2

    @app.workflow(name="kid", queue="kids")
    def kid(directory: str, x: int) -> int:
        return kid_step(directory, x)  # type: ignore[no-any-return]

    @app.step(name="hold")
    def hold(directory: str) -> str:
        (Path(directory) / f"holding.{os.getpid()}").write_text("")
        deadline = time.monotonic() + LIMIT
        while not (Path(directory) / "go").exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        return "held"

    @app.workflow(name="parent")
    def parent(directory: str, x: int) -> list[object]:
        child = durable.start_child(kid, directory, x)
        held = hold(directory)
        return [child.id, held, child.result()]

    return app


if __name__ == "__main__":
    url, worker_id, lease = sys.argv[1], sys.argv[2], float(sys.argv[3])
    app = make_app(url, lease_timeout=lease)
    print(f"READY {worker_id} pid={os.getpid()}", flush=True)
    app.run_worker(worker_id=worker_id, queues=sys.argv[4:], concurrency=4)
