"""A worker process for the process tests.

    python tests/integration/procs/worker.py DB_URL WORKER_ID LEASE_TIMEOUT [CONCURRENCY]

Builds the App of ``wfapp.py`` on ``DB_URL`` and runs ``app.run_worker`` until SIGTERM or
SIGINT; SIGUSR1 prints every thread's stack to its output. ``WORKER_ID`` ``-`` means the
default identity. The process exits by itself if its parent goes away, so that a crashed
test run leaves no worker behind.
"""

from __future__ import annotations

import faulthandler
import logging
import os
import signal
import sys
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent.parent
for entry in (str(HERE), str(ROOT)):
    if entry not in sys.path:
        sys.path.insert(0, entry)

from wfapp import make_app  # noqa: E402


def _exit_with_parent() -> None:
    parent = os.getppid()
    while True:
        time.sleep(0.5)
        if os.getppid() != parent:
            os._exit(3)


def main(argv: list[str]) -> int:
    if len(argv) not in (4, 5):
        print(__doc__, file=sys.stderr)
        return 2
    database, worker_id, lease_timeout = argv[1], argv[2], float(argv[3])
    concurrency = int(argv[4]) if len(argv) == 5 else 4
    logging.basicConfig(
        level=logging.INFO,
        format=f"%(asctime)s [{os.getpid()}] %(name)s %(levelname)s %(message)s",
    )
    # ``kill -USR1 PID`` prints every thread's stack to the log, to diagnose a stuck worker.
    faulthandler.register(signal.SIGUSR1, all_threads=True)
    threading.Thread(target=_exit_with_parent, name="exit-with-parent", daemon=True).start()
    app = make_app(database, lease_timeout=lease_timeout)
    print(f"worker {worker_id} pid={os.getpid()} lease_timeout={lease_timeout}", flush=True)
    app.run_worker(worker_id=None if worker_id == "-" else worker_id, concurrency=concurrency)
    print(f"worker {worker_id} pid={os.getpid()} stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
