"""The workflows of ``test_stage_resources.py`` run in a worker process, and that worker.

    python tests/integration/procs/stagesapp.py DB_URL

runs ``app.run_worker`` with a short lease (a killed worker's run is taken over soon) and
exits by itself if its parent goes away. Each workflow takes a directory first: the stage's
resource appends a line to ``opened`` when it opens and to ``closed`` when it closes, and each
step body appends its name to ``ran``; a body waits for a file ``go-NAME`` when told to.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import durable

LIMIT = 60.0
LEASE = 1.5


def append(directory: str, name: str, line: str) -> None:
    """Append ``line`` to the file ``name`` of ``directory``."""
    with open(Path(directory) / name, "a") as f:
        f.write(line + "\n")


def make_app(database: str) -> durable.App:
    """The App of the resource tests that cross processes."""
    app = durable.App("stages", database=database, lease_timeout=LEASE, poll_interval=0.2)

    def connection(directory: str) -> contextlib.AbstractContextManager[dict[str, int]]:
        @contextlib.contextmanager
        def open_it() -> Iterator[dict[str, int]]:
            append(directory, "opened", str(os.getpid()))
            try:
                yield {"pid": os.getpid()}
            finally:
                append(directory, "closed", str(os.getpid()))

        return open_it()

    @app.step(name="load")
    def load(directory: str, part: int, wait: bool) -> int:
        conn = durable.resource("conn")
        append(directory, "ran", f"load-{part}")
        deadline = time.monotonic() + LIMIT
        while wait and not (Path(directory) / f"go-{part}").exists():
            if time.monotonic() > deadline:
                raise TimeoutError("nobody said go")
            time.sleep(0.02)
        return int(conn["pid"])

    @app.workflow(name="three_parts")
    def three_parts(directory: str) -> list[int]:
        pids = []
        with durable.stage("load", resources={"conn": lambda: connection(directory)}):
            for part in range(3):
                pids.append(load(directory, part, part == 1))
        return pids

    return app


def _exit_with_parent() -> None:
    parent = os.getppid()
    while True:
        time.sleep(0.5)
        if os.getppid() != parent:
            os._exit(3)


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    threading.Thread(target=_exit_with_parent, daemon=True).start()
    app = make_app(argv[1])
    print(f"worker pid={os.getpid()} ready", flush=True)
    app.run_worker(concurrency=2, drain_timeout=5.0)
    app.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
