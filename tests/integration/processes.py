"""Child processes of one test (worker scripts under ``procs/``): started with their output in
a log file, killed at teardown, described in failure messages."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO, Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
POLL = 0.05


class ProcessGroup:
    """The child processes of one test; every one still running is killed at teardown."""

    def __init__(self, db_url: str, log_dir: Path) -> None:
        self.db_url = db_url
        self.log_dir = log_dir
        self.procs: list[tuple[subprocess.Popen[bytes], Path, IO[bytes]]] = []

    def spawn(self, name: str, script: Path, args: Sequence[str]) -> subprocess.Popen[bytes]:
        """Run ``script args`` with the repository on its path; output goes to a log file."""
        log_path = self.log_dir / f"{len(self.procs)}-{name}.log"
        log = log_path.open("wb")
        env = dict(os.environ)
        env["PYTHONUNBUFFERED"] = "1"
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
        env.pop("DURABLE_WORKER_ID", None)
        proc = subprocess.Popen(
            [sys.executable, str(script), *args],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=ROOT,
            env=env,
        )
        self.procs.append((proc, log_path, log))
        return proc

    def output(self, proc: subprocess.Popen[bytes]) -> str:
        """Everything ``proc`` has printed so far."""
        for p, log_path, log in self.procs:
            if p is proc:
                log.flush()
                return log_path.read_bytes().decode(errors="replace")
        raise KeyError(proc.pid)

    def kill(self, proc: subprocess.Popen[bytes]) -> None:
        """SIGKILL ``proc`` and reap it."""
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)

    def describe(self) -> str:
        """Exit codes and the tail of every process's output, for failure messages."""
        parts = []
        for proc, log_path, log in self.procs:
            log.flush()
            tail = log_path.read_bytes()[-4000:].decode(errors="replace")
            parts.append(f"--- {log_path.name} pid={proc.pid} rc={proc.poll()}\n{tail}")
        return "\n".join(parts)

    def close(self) -> None:
        """Kill (continuing stopped ones first) and reap every process still running."""
        for proc, _, _ in self.procs:
            if proc.poll() is None:
                try:
                    proc.send_signal(signal.SIGCONT)
                    proc.send_signal(signal.SIGKILL)
                except ProcessLookupError:
                    pass
        for proc, _, log in self.procs:
            try:
                proc.wait(timeout=10)
            finally:
                log.close()


def wait_for(
    predicate: Callable[[], Any],
    timeout: float,
    what: str | Callable[[], str],
    procs: ProcessGroup | None = None,
    interval: float = POLL,
) -> Any:
    """Poll ``predicate`` until truthy; fail with the processes' output after ``timeout`` s.

    ``what`` names the awaited condition (a callable is evaluated only on failure).
    """
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            details = f"\n{procs.describe()}" if procs is not None else ""
            name = what() if callable(what) else what
            raise AssertionError(f"timed out after {timeout}s waiting for {name}{details}")
        time.sleep(interval)
