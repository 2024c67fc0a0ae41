"""A worker process whose App declares a per-second schedule, for the schedule process tests.

    python tests/integration/procs/schedworker.py DB_URL FX_DIR

The App ``sched`` declares ``every-second`` (``* * * * * *``, ``catch_up="all"``) of the
workflow ``tick``, whose one step appends a JSON line ``{"run", "tick", "pid"}`` to
``FX_DIR/ticks.log`` per execution of its body. The process runs ``app.run_worker`` until
SIGTERM or SIGINT, and exits by itself if its parent goes away.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import sys
import threading
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent.parent
for entry in (str(HERE), str(ROOT)):
    if entry not in sys.path:
        sys.path.insert(0, entry)

from wfapp import append_line  # noqa: E402
from worker import _exit_with_parent  # noqa: E402

import durable  # noqa: E402


def make_app(database: str, fx: Path) -> durable.App:
    """The App of the schedule process tests."""
    app = durable.App("sched", database=database, poll_interval=0.2, lease_timeout=3.0)

    @app.step(name="record")
    def record(tick: str) -> str:
        info = durable.info()
        append_line(fx / "ticks.log", {"run": info.id, "tick": tick, "pid": os.getpid()})
        return tick

    @app.workflow(name="tick")
    def tick(at: dt.datetime) -> str:
        return record(at.isoformat())

    app.schedule(tick, "* * * * * *", name="every-second", catch_up="all")
    return app


def main(argv: list[str]) -> int:
    database, fx = argv[1], Path(argv[2])
    logging.basicConfig(
        level=logging.INFO,
        format=f"%(asctime)s [{os.getpid()}] %(name)s %(levelname)s %(message)s",
    )
    threading.Thread(target=_exit_with_parent, name="exit-with-parent", daemon=True).start()
    app = make_app(database, fx)
    print(f"schedule worker pid={os.getpid()}", flush=True)
    app.run_worker(concurrency=4)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
