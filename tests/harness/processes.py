"""Child processes of the tests: one way to start, watch, signal and reap them.

A test asks for the ``processes`` fixture (``tests/conftest.py``) and starts children with
``processes.python(script, *args)`` or ``processes.start(argv)``. Each is a :class:`Proc`
whose output (stdout and stderr, interleaved, unless asked to keep stderr apart) goes to a
log file. Every child still running when the test ends is killed and reaped, also when the
test failed, and a failed test's report carries the tail of every child's output.

A command that runs to its end and is only read afterwards goes through :func:`run`.

Signals: :meth:`Proc.kill` (SIGKILL, then reaped), :meth:`Proc.stop` / :meth:`Proc.cont`
(SIGSTOP / SIGCONT), :meth:`Proc.terminate` (SIGTERM, then SIGKILL if it does not exit in
time). A child started with ``new_session=True`` gets its own process group, and every signal
goes to the whole group (a script that starts children of its own).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Protocol

ROOT = Path(__file__).resolve().parents[2]
"""The repository: the working directory of a child by default, and on its ``PYTHONPATH``."""
TESTS = ROOT / "tests"
"""The test suite's folder: put it on a child's path to import ``harness`` there."""
POLL = 0.05
"""Seconds between two looks at a condition that is waited for."""
TAIL = 4000
"""Characters of a child's output shown in a failure message."""
STRIPPED_ENV = ("DURABLE_WORKER_ID", "DURABLE_DATABASE_URL")
"""Variables of this process's environment that a child never inherits (pass them in ``env``)."""
REAP_TIMEOUT = 10.0


def child_env(
    *, path: Iterable[str | Path] = (), env: Mapping[str, str | None] | None = None
) -> dict[str, str]:
    """The environment of a child: this process's, with ``path`` then :data:`ROOT` in front of
    ``PYTHONPATH``, ``PYTHONUNBUFFERED=1``, without :data:`STRIPPED_ENV`; then ``env`` on top
    (a ``None`` value removes the variable)."""
    out = dict(os.environ)
    for name in STRIPPED_ENV:
        out.pop(name, None)
    out["PYTHONUNBUFFERED"] = "1"
    entries = [*(str(p) for p in path), str(ROOT), out.get("PYTHONPATH", "")]
    out["PYTHONPATH"] = os.pathsep.join(e for e in entries if e)
    for name, value in (env or {}).items():
        if value is None:
            out.pop(name, None)
        else:
            out[name] = value
    return out


@dataclass(frozen=True)
class Finished:
    """A command that ran to its end: its exit code and what it printed."""

    argv: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str

    def describe(self) -> str:
        """The command, its exit code and the tails of its output, for failure messages."""
        return (
            f"--- {' '.join(self.argv)} rc={self.returncode}\n"
            f"stdout:\n{self.stdout[-TAIL:]}\nstderr:\n{self.stderr[-TAIL:]}"
        )


def run(
    argv: Sequence[str | Path],
    *,
    cwd: str | Path = ROOT,
    path: Iterable[str | Path] = (),
    env: Mapping[str, str | None] | None = None,
    timeout: float = 60.0,
) -> Finished:
    """Run a command to its end, its output captured (text); killed, and the test failed with
    what it printed, if it runs longer than ``timeout`` seconds. ``path`` and ``env`` as in
    :func:`child_env`; stdin is ``/dev/null``."""
    args = tuple(str(a) for a in argv)
    try:
        done = subprocess.run(
            args,
            cwd=cwd,
            env=child_env(path=path, env=env),
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        out, err = (_text(x) for x in (exc.stdout, exc.stderr))
        raise AssertionError(
            f"{' '.join(args)} did not finish within {timeout}s (killed)\n"
            f"stdout:\n{out[-TAIL:]}\nstderr:\n{err[-TAIL:]}"
        ) from None
    return Finished(args, done.returncode, done.stdout, done.stderr)


def _text(data: str | bytes | None) -> str:
    if data is None:
        return ""
    return data.decode(errors="replace") if isinstance(data, bytes) else data


class Proc:
    """One child process of a test, started by :class:`Processes` (which reaps it)."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        popen: subprocess.Popen[bytes],
        log_path: Path,
        err_path: Path | None,
        own_session: bool,
    ) -> None:
        self.name = name
        """What the test called it (also in its log file's name)."""
        self.argv = tuple(argv)
        self.pid = popen.pid
        self.log_path = log_path
        """The file its stdout (and stderr, unless kept apart) goes to."""
        self.err_path = err_path
        """The file its stderr goes to when kept apart, else None."""
        self._popen = popen
        self._own_session = own_session

    def __repr__(self) -> str:
        return f"Proc({self.name!r}, pid={self.pid}, rc={self.poll()})"

    # -- state and output ------------------------------------------------------------------

    def poll(self) -> int | None:
        """Its exit code if it has ended (``-N`` for signal N), else None."""
        return self._popen.poll()

    @property
    def returncode(self) -> int | None:
        """Its exit code if it has ended, else None."""
        return self.poll()

    @property
    def alive(self) -> bool:
        """Whether it is still running (a stopped process is running)."""
        return self.poll() is None

    def output(self) -> str:
        """Everything it has printed so far (stdout, with stderr unless kept apart)."""
        return self.log_path.read_bytes().decode(errors="replace")

    def errors(self) -> str:
        """What it has printed on stderr so far, when started with ``separate_stderr``."""
        if self.err_path is None:
            raise ValueError(f"{self.name}: stderr goes to its output; see output()")
        return self.err_path.read_bytes().decode(errors="replace")

    def describe(self) -> str:
        """Its name, pid, exit code and the tail of its output, for failure messages."""
        parts = [f"--- {self.log_path.name} pid={self.pid} rc={self.poll()}", self.output()[-TAIL:]]
        if self.err_path is not None:
            parts += ["stderr:", self.errors()[-TAIL:]]
        return "\n".join(parts)

    # -- waiting ---------------------------------------------------------------------------

    def wait_for(
        self, predicate: Callable[[], Any], timeout: float, what: str | Callable[[], str]
    ) -> Any:
        """Poll ``predicate`` until truthy and return its value; fail, with this process's
        output, after ``timeout`` seconds or as soon as the process has ended."""
        deadline = time.monotonic() + timeout
        while True:
            value = predicate()
            if value:
                return value
            ended = not self.alive
            if ended or time.monotonic() > deadline:
                name = what() if callable(what) else what
                why = f"{self.name} ended" if ended else f"timed out after {timeout}s"
                raise AssertionError(f"{why} while waiting for {name}\n{self.describe()}")
            time.sleep(POLL)

    def wait_for_output(self, text: str, timeout: float) -> str:
        """Wait until its output contains ``text``; return the output so far."""

        def seen() -> str:
            out = self.output()
            return out if text in out else ""

        return str(self.wait_for(seen, timeout, f"{text!r} in its output"))

    def wait(self, timeout: float) -> int:
        """Wait for it to end; return its exit code. If it does not end within ``timeout``
        seconds it is killed and the test fails with its output."""
        try:
            return self._popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(
                f"{self.name} did not end within {timeout}s (killed)\n{self.describe()}"
            ) from None

    def result(self, timeout: float) -> Finished:
        """Wait for it to end (as :meth:`wait`); its exit code and output."""
        code = self.wait(timeout)
        err = self.errors() if self.err_path is not None else ""
        return Finished(self.argv, code, self.output(), err)

    # -- signals ---------------------------------------------------------------------------

    def signal(self, sig: signal.Signals) -> None:
        """Send ``sig`` (to its whole group if it has its own session); nothing if it ended."""
        if self.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            if self._own_session:
                os.killpg(self.pid, sig)
            else:
                self._popen.send_signal(sig)

    def kill(self) -> int:
        """SIGKILL it and reap it; its exit code (``-9`` unless it had ended already)."""
        self.signal(signal.SIGKILL)
        return self._popen.wait(timeout=REAP_TIMEOUT)

    def stop(self) -> None:
        """SIGSTOP it: it stays alive but runs no more, until :meth:`cont`."""
        self.signal(signal.SIGSTOP)

    def cont(self) -> None:
        """SIGCONT it: a stopped process runs on."""
        self.signal(signal.SIGCONT)

    def terminate(self, timeout: float = 20.0) -> int:
        """SIGTERM it and wait for it to end; SIGKILL it if it takes more than ``timeout``
        seconds. Its exit code (``-9`` if it had to be killed)."""
        self.signal(signal.SIGTERM)
        try:
            return self._popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return self.kill()


class Describes(Protocol):
    """Anything that can describe its processes for a failure message."""

    def describe(self) -> str:
        """The processes' output, for a failure message."""
        ...


class Processes:
    """The child processes of one test; :meth:`close` kills and reaps every one still running.

    ``log_dir`` holds their output (one file each, ``N-NAME.log``); without one, a temporary
    folder removed at :meth:`close`. Also a context manager.
    """

    def __init__(self, log_dir: Path | None = None) -> None:
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        if log_dir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="durable-procs-")
            log_dir = Path(self._tmp.name)
        log_dir.mkdir(parents=True, exist_ok=True)
        self.log_dir = log_dir
        self.started: list[Proc] = []
        """Every process started so far, in order."""
        self._files: list[IO[bytes]] = []

    def __enter__(self) -> Processes:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(
        self,
        argv: Sequence[str | Path],
        *,
        name: str | None = None,
        cwd: str | Path = ROOT,
        path: Iterable[str | Path] = (),
        env: Mapping[str, str | None] | None = None,
        separate_stderr: bool = False,
        stdout: int | None = None,
        new_session: bool = False,
    ) -> Proc:
        """Start ``argv``. ``path`` and ``env`` as in :func:`child_env`; stdin is
        ``/dev/null``; stdout (and stderr, unless ``separate_stderr``) goes to its log file,
        or stdout to the file descriptor ``stdout`` if given (a pty, say). ``new_session``:
        its own session and process group, which every signal then goes to."""
        index = len(self.started)
        label = name or Path(str(argv[0])).stem
        log_path = self.log_dir / f"{index}-{label}.log"
        log = log_path.open("wb")
        self._files.append(log)
        err_path: Path | None = None
        err: IO[bytes] | int = subprocess.STDOUT
        if separate_stderr:
            err_path = self.log_dir / f"{index}-{label}.err"
            err_file = err_path.open("wb")
            self._files.append(err_file)
            err = err_file
        args = [str(a) for a in argv]
        popen = subprocess.Popen(
            args,
            stdout=log if stdout is None else stdout,
            stderr=err,
            stdin=subprocess.DEVNULL,
            cwd=cwd,
            env=child_env(path=path, env=env),
            start_new_session=new_session,
        )
        proc = Proc(label, args, popen, log_path, err_path, new_session)
        self.started.append(proc)
        return proc

    def python(
        self,
        script: str | Path,
        *args: str | Path | float,
        name: str | None = None,
        cwd: str | Path = ROOT,
        path: Iterable[str | Path] = (),
        env: Mapping[str, str | None] | None = None,
        separate_stderr: bool = False,
        new_session: bool = False,
    ) -> Proc:
        """Start ``python SCRIPT ARGS`` with this interpreter (see :meth:`start`)."""
        return self.start(
            [sys.executable, str(script), *(str(a) for a in args)],
            name=name or Path(script).stem,
            cwd=cwd,
            path=path,
            env=env,
            separate_stderr=separate_stderr,
            new_session=new_session,
        )

    def describe(self) -> str:
        """Exit codes and the tail of every process's output, for failure messages."""
        return "\n".join(p.describe() for p in self.started)

    def close(self) -> None:
        """Kill (continuing stopped ones first) and reap every process still running."""
        try:
            for proc in self.started:
                proc.cont()
                proc.signal(signal.SIGKILL)
            for proc in self.started:
                proc._popen.wait(timeout=REAP_TIMEOUT)
        finally:
            for f in self._files:
                f.close()
            if self._tmp is not None:
                self._tmp.cleanup()


def wait_for(
    predicate: Callable[[], Any],
    timeout: float,
    what: str | Callable[[], str],
    procs: Describes | None = None,
    interval: float = POLL,
) -> Any:
    """Poll ``predicate`` until truthy and return its value; fail after ``timeout`` seconds,
    with the output of ``procs`` (a :class:`Processes` or a :class:`Proc`) if given.

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
