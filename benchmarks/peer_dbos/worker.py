"""``python -m benchmarks.peer_dbos.worker URL SCHEMA EXECUTOR_ID``: a DBOS worker process.

Launches DBOS on the system database (``SCHEMA`` is ``-`` on SQLite) with its own
``executor_id``, and lets DBOS's queue thread dequeue :data:`~.store.QUEUE` (declared by
the benchmark process before this starts) until SIGTERM; then ``DBOS.destroy()``. It
prints ``ready`` once the queue's worker thread is running, so that the benchmark process
starts its clock against an idle, polling worker.
"""

from __future__ import annotations

import signal
import sys
import threading
import time

from benchmarks.peer_dbos.store import QUEUE, SystemDb, config


def queue_thread_up(timeout: float = 60.0) -> bool:
    """Wait until this process's DBOS runs the worker thread of :data:`~.store.QUEUE`
    (DBOS looks for newly declared queues once a second); whether it does."""
    wanted = f"queue-worker-{QUEUE}"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(t.name == wanted for t in threading.enumerate()):
            return True
        time.sleep(0.01)
    return False


def main(argv: list[str]) -> int:
    """Run one worker until SIGTERM; 0 on a clean stop."""
    url, schema, executor_id = argv
    from dbos import DBOS

    import benchmarks.peer_dbos.workflows  # noqa: F401 - registers the workflows

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    DBOS(config=config(SystemDb(url, None if schema == "-" else schema), executor_id))
    DBOS.launch()
    try:
        if not queue_thread_up():
            print(f"queue thread for {QUEUE} never started", file=sys.stderr)
            return 1
        sys.stdout.write("ready\n")
        sys.stdout.flush()
        stop.wait()
    finally:
        DBOS.destroy(workflow_completion_timeout_sec=5)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
