"""Worker subprocesses (``benchmarks._worker``) for the multi-process workloads."""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from typing import IO, Any

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
READY_TIMEOUT = 60.0
DRAIN_TIMEOUT = 40.0


class WorkerProcess:
    """One ``python -m benchmarks._worker URL CONCURRENCY [BUILDER [OPTIONS_JSON]]`` process.

    ``builder`` (``"module:function"``, default :func:`benchmarks.bench_app.build`) builds
    the App the worker runs, called with the URL and ``options`` as keyword arguments.
    ``worker_id`` sets ``DURABLE_WORKER_ID`` (default: none, the process's own
    ``hostname/pid`` identity).
    """

    def __init__(
        self,
        url: str,
        concurrency: int,
        stderr: IO[bytes],
        *,
        builder: str | None = None,
        options: dict[str, Any] | None = None,
        worker_id: str | None = None,
    ) -> None:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (ROOT, env.get("PYTHONPATH")) if p)
        env.pop("DURABLE_WORKER_ID", None)  # each process its own hostname/pid identity
        if worker_id is not None:
            env["DURABLE_WORKER_ID"] = worker_id
        args = [url, str(concurrency)]
        if builder is not None:
            args += [builder, json.dumps(options or {})]
        self.stderr = stderr
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "benchmarks._worker", *args],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=stderr,
        )

    def wait_ready(self, deadline: float) -> None:
        out = self.proc.stdout
        assert out is not None
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or self.proc.poll() is not None:
                raise RuntimeError(f"worker process did not start:\n{self.tail()}")
            ready, _, _ = select.select([out], [], [], min(left, 0.5))
            if ready:
                line = out.readline()
                if line.strip() == b"ready":
                    return
                if not line:
                    raise RuntimeError(f"worker process exited:\n{self.tail()}")

    def cpu_seconds(self) -> float | None:
        """User + system CPU of the process so far (Linux ``/proc``), if readable."""
        try:
            with open(f"/proc/{self.proc.pid}/stat", encoding="ascii") as f:
                fields = f.read().rpartition(")")[2].split()
        except OSError:
            return None
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def memory_kb(self) -> dict[str, int]:
        """``VmRSS`` and ``VmHWM`` (peak RSS) of the process, in kB (Linux ``/proc``)."""
        out: dict[str, int] = {}
        with open(f"/proc/{self.proc.pid}/status", encoding="ascii") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key in ("VmRSS", "VmHWM"):
                    out[key] = int(value.split()[0])
        return out

    def kill(self) -> None:
        """SIGKILL, as a crash would: nothing is drained, no lease handed back."""
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()

    def stop(self) -> int:
        """SIGTERM (the worker drains and hands its leases back), then wait."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(DRAIN_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            return -9

    def tail(self, n: int = 4000) -> str:
        self.stderr.flush()
        self.stderr.seek(0)
        return self.stderr.read().decode("utf-8", "replace")[-n:]


@contextmanager
def started(
    make: Callable[[int, IO[bytes]], WorkerProcess], count: int, what: str = "worker"
) -> Iterator[list[WorkerProcess]]:
    """``count`` processes made by ``make(i, stderr_file)``, each ready when this yields; on
    exit each is sent SIGTERM and must exit 0 (else ``RuntimeError`` with its stderr)."""
    with ExitStack() as stack:
        workers: list[WorkerProcess] = []
        ok = False
        try:
            for i in range(count):
                workers.append(make(i, stack.enter_context(tempfile.TemporaryFile())))
            deadline = time.monotonic() + READY_TIMEOUT
            for w in workers:
                w.wait_ready(deadline)
            yield workers
            ok = True
        finally:
            codes = [w.stop() for w in workers]
        if ok and any(codes):
            bad = next(w for w, c in zip(workers, codes, strict=True) if c)
            raise RuntimeError(f"a {what} process exited {codes}:\n{bad.tail()}")


@contextmanager
def worker_processes(url: str, count: int, concurrency: int) -> Iterator[list[WorkerProcess]]:
    """``count`` worker processes on ``url``, each up and idle when this yields; on exit
    each is sent SIGTERM and must drain and exit 0."""
    with started(lambda _i, err: WorkerProcess(url, concurrency, err), count) as workers:
        yield workers


def cpu_of(workers: list[WorkerProcess]) -> float | None:
    """Total CPU seconds of ``workers`` so far, if every one is readable."""
    values = [w.cpu_seconds() for w in workers]
    if any(v is None for v in values):
        return None
    return sum(v for v in values if v is not None)
