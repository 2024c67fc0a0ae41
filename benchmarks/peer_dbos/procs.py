"""DBOS worker processes (``benchmarks.peer_dbos.worker``), started and stopped like
durable's (:mod:`benchmarks.procs`: ``ready`` on stdout, SIGTERM to stop, CPU from
``/proc``)."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import IO

from benchmarks.peer_dbos.store import SystemDb
from benchmarks.procs import READY_TIMEOUT, ROOT, WorkerProcess


class DbosWorkerProcess(WorkerProcess):
    """One ``python -m benchmarks.peer_dbos.worker`` process."""

    def __init__(
        self, db: SystemDb, executor_id: str, stderr: IO[bytes], env: dict[str, str] | None = None
    ) -> None:
        full_env = dict(os.environ)
        full_env["PYTHONPATH"] = os.pathsep.join(p for p in (ROOT, full_env.get("PYTHONPATH")) if p)
        full_env.update(env or {})
        self.executor_id = executor_id
        self.stderr = stderr
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "benchmarks.peer_dbos.worker",
                db.url,
                db.schema or "-",
                executor_id,
            ],
            cwd=ROOT,
            env=full_env,
            stdout=subprocess.PIPE,
            stderr=stderr,
        )


@contextmanager
def dbos_workers(
    db: SystemDb, count: int, prefix: str = "bench-w", env: dict[str, str] | None = None
) -> Iterator[list[WorkerProcess]]:
    """``count`` DBOS worker processes on ``db`` (executor ids ``{prefix}0``, ...), each up
    and polling when this yields; on exit each is sent SIGTERM and must exit 0."""
    with ExitStack() as stack:
        workers: list[WorkerProcess] = []
        ok = False
        try:
            for i in range(count):
                err = stack.enter_context(tempfile.TemporaryFile())
                workers.append(DbosWorkerProcess(db, f"{prefix}{i}", err, env))
            deadline = time.monotonic() + READY_TIMEOUT
            for w in workers:
                w.wait_ready(deadline)
            yield workers
            ok = True
        finally:
            codes = [w.stop() for w in workers]
        if ok and any(codes):
            bad = next(w for w, c in zip(workers, codes, strict=True) if c)
            raise RuntimeError(f"a DBOS worker process exited {codes}:\n{bad.tail()}")
