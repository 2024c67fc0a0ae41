"""DBOS worker processes (``benchmarks.peer_dbos.worker``), started and stopped like
durable's (:mod:`benchmarks.procs`: ``ready`` on stdout, SIGTERM to stop, CPU from
``/proc``)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO

from benchmarks.peer_dbos.store import SystemDb
from benchmarks.procs import ROOT, WorkerProcess, started


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
    with started(
        lambda i, err: DbosWorkerProcess(db, f"{prefix}{i}", err, env), count, "DBOS worker"
    ) as workers:
        yield workers
