"""The workflows and the process entry points of ``test_pg_faults.py``.

    python tests/integration/procs/faultapp.py worker DB_URL WORKER_ID LEASE_TIMEOUT CONCURRENCY
    python tests/integration/procs/faultapp.py open DB_URL GO_FILE MODE

``worker`` runs ``app.run_worker`` on the App of :func:`make_app` until SIGTERM (or until its
parent goes away). ``open`` waits until ``GO_FILE`` exists (a barrier shared by many
processes), then opens the log (``MODE`` ``store``: ``durable.log.open_store(url)``; ``client``:
``App(...).client()``) and prints one JSON line: ``{"pid", "ok", "error", "t"}``.

Side effects of the step bodies, one JSON line per execution (``append_line``):

- ``{dir}/steps.log``: ``many_steps``' ``tick``: ``pid``, ``run``, ``position``, ``key``;
- ``{dir}/hold.log``: ``blocked``'s ``hold``, written before it blocks: ``pid``, ``run``, ``tag``;
- ``{dir}/finish.log``: ``blocked``'s ``finish``: ``pid``, ``run``, ``tag``.

``hold`` blocks while ``{dir}/block`` exists (at most ``BLOCK_LIMIT`` seconds).
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent.parent
for entry in (str(HERE), str(ROOT)):
    if entry not in sys.path:
        sys.path.insert(0, entry)

from wfapp import append_line  # noqa: E402

import durable  # noqa: E402

BLOCK_LIMIT = 60.0


def make_app(database: str, lease_timeout: float = 30.0, poll_interval: float = 0.2) -> durable.App:
    """An App on ``database`` that registers the workflows of the fault tests."""
    app = durable.App(
        "pgfaults", database=database, lease_timeout=lease_timeout, poll_interval=poll_interval
    )

    @app.step(name="tick")
    def tick(directory: str, i: int, hold: float) -> int:
        info = durable.info()
        append_line(
            Path(directory) / "steps.log",
            {
                "pid": os.getpid(),
                "run": info.id,
                "position": info.step_position,
                "key": info.step_key,
                "i": i,
            },
        )
        time.sleep(hold)
        return i * i

    @app.workflow(name="many_steps")
    def many_steps(directory: str, n: int, hold: float) -> int:
        """``n`` steps in a row, each holding ``hold`` seconds; returns the sum of squares."""
        return sum(tick(directory, i, hold) for i in range(n))

    @app.step(name="hold")
    def hold(directory: str, tag: int) -> int:
        append_line(
            Path(directory) / "hold.log",
            {"pid": os.getpid(), "run": durable.info().id, "tag": tag, "t": time.time()},
        )
        deadline = time.monotonic() + BLOCK_LIMIT
        while (Path(directory) / "block").exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        return tag

    @app.step(name="finish")
    def finish(directory: str, tag: int) -> int:
        append_line(
            Path(directory) / "finish.log",
            {"pid": os.getpid(), "run": durable.info().id, "tag": tag, "t": time.time()},
        )
        return tag + 1000

    @app.workflow(name="blocked")
    def blocked(directory: str, tag: int) -> int:
        """``hold`` (blocks while ``block`` exists), then ``finish``."""
        return hold(directory, tag) + finish(directory, tag)

    return app


def _exit_with_parent() -> None:
    parent = os.getppid()
    while True:
        time.sleep(0.5)
        if os.getppid() != parent:
            os._exit(3)


def _worker(argv: list[str]) -> int:
    import logging
    import threading

    database, worker_id, lease_timeout, concurrency = argv
    logging.basicConfig(
        level=logging.INFO,
        format=f"%(asctime)s [{os.getpid()}] %(name)s %(levelname)s %(message)s",
    )
    threading.Thread(target=_exit_with_parent, name="exit-with-parent", daemon=True).start()
    app = make_app(database, lease_timeout=float(lease_timeout))
    print(f"worker {worker_id} pid={os.getpid()} lease_timeout={lease_timeout}", flush=True)
    app.run_worker(worker_id=worker_id, concurrency=int(concurrency))
    print(f"worker {worker_id} pid={os.getpid()} stopped", flush=True)
    return 0


def _open(argv: list[str]) -> int:
    database, go_file, mode = argv
    Path(f"{go_file}.ready.{os.getpid()}").touch()
    deadline = time.monotonic() + 120
    while not os.path.exists(go_file):
        if time.monotonic() > deadline:
            print(json.dumps({"pid": os.getpid(), "ok": False, "error": "no go"}), flush=True)
            return 1
        time.sleep(0.001)
    t0 = time.monotonic()
    try:
        if mode == "store":
            from durable.log import open_store
            from durable.log.store import RunFilter

            store = open_store(database)
            store.list_runs(RunFilter(limit=1))
            store.close()
        else:
            app = make_app(database)
            app.client().list_runs(limit=1)
            app.close()
    except Exception as exc:
        err = f"{type(exc).__name__}: {exc}"
        print(json.dumps({"pid": os.getpid(), "ok": False, "error": err}), flush=True)
        return 1
    t = time.monotonic() - t0
    print(json.dumps({"pid": os.getpid(), "ok": True, "error": None, "t": t}), flush=True)
    return 0


if __name__ == "__main__":
    cmd, rest = sys.argv[1], sys.argv[2:]
    sys.exit(_worker(rest) if cmd == "worker" else _open(rest))
