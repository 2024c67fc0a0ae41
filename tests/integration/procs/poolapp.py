"""The workflows of ``test_process_steps.py``, and the worker process that runs them.

    python tests/integration/procs/poolapp.py DB_URL CANCEL_GRACE PROCESSES CONCURRENCY LEASE DRAIN

runs ``app.run_worker(processes=PROCESSES, concurrency=CONCURRENCY)`` (SIGTERM drains, for
``DRAIN`` seconds) and exits by itself if
its parent goes away. The step bodies are module-level functions (the pool's processes find
them by name) registered with ``executor="process"`` in :func:`make_app`. Each takes a
directory first, where it leaves marker files that the test waits for.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

import durable

LIMIT = 60.0
"""Seconds after which a body that waits for something gives up (a forgotten process ends)."""


def mark(directory: str, name: str, text: str = "") -> None:
    """Create the marker file ``name`` in ``directory``, whole (written aside, then renamed:
    a reader that sees it exist never reads it empty)."""
    tmp = Path(directory) / f".{name}.{os.getpid()}.tmp"
    tmp.write_text(text or str(os.getpid()))
    os.replace(tmp, Path(directory) / name)


def until(check: Any) -> bool:
    """Wait (at most LIMIT) until ``check()``; whether it came true."""
    end = time.monotonic() + LIMIT
    while time.monotonic() < end:
        if check():
            return True
        time.sleep(0.02)
    return False


# -------------------------------------------------------------- bodies run in the pool


def meet(directory: str, name: str, other: str) -> dict[str, Any]:
    """Say this body is here, and wait for the other one: both only meet if they run at
    the same time."""
    mark(directory, f"meet-{name}")
    met = until((Path(directory) / f"meet-{other}").exists)
    return {"pid": os.getpid(), "met": met}


def report(directory: str) -> dict[str, Any]:
    """Progress, a message and an output from the pool; its own step info."""
    durable.progress(0.25)
    durable.message("halfway", n=2)
    durable.output("answer", 42)
    durable.progress(1.0)
    info = durable.info()
    return {
        "pid": os.getpid(),
        "run": info.id,
        "step": info.step_name,
        "attempt": info.step_attempt,
        "in_run": durable.in_run(),
    }


def until_cancelled(directory: str) -> int:
    """Work until told to stop; then say so and return what was done."""
    mark(directory, "started")
    done = 0
    while not durable.cancelled() and done < LIMIT / 0.02:
        done += 1
        time.sleep(0.02)
    mark(directory, "saw-cancel")
    durable.output("stopped", True)
    return done


def ignores(directory: str) -> int:
    """Work on whatever it is told."""
    mark(directory, "started")
    time.sleep(LIMIT)
    mark(directory, "late-done")
    return 0


def after(directory: str) -> None:
    """The step after: it must not run once the run was cancelled."""
    mark(directory, "after-ran")


def victim(directory: str) -> int:
    """Try 1: once the bystander runs, SIGKILL this pool process. Try 2: return."""
    attempt = durable.info().step_attempt
    if attempt == 1:
        until((Path(directory) / "bystander").exists)
        mark(directory, "victim-1")
        os.kill(os.getpid(), signal.SIGKILL)
    mark(directory, f"victim-{attempt}")
    return os.getpid()


def bystander(directory: str) -> dict[str, Any]:
    """Run beside the victim in another pool process, and outlive its death."""
    mark(directory, "bystander")
    until((Path(directory) / "victim-1").exists)
    pid = int((Path(directory) / "victim-1").read_text())
    return {"pid": os.getpid(), "victim": pid, "victim_gone": until(lambda: _gone(pid))}


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def exits(directory: str) -> None:
    """End the pool process, as a crash would."""
    os._exit(7)


def bad_result(directory: str) -> Any:
    """A result that cannot be encoded."""
    return object()


def echo(value: Any) -> Any:
    """Return what it is given."""
    return value


def renamed(directory: str) -> int:
    """A body whose name was changed: the pool finds nothing under it."""
    return 0


renamed.__qualname__ = "no_such_function"


def asks_resource(directory: str) -> Any:
    """Ask for a resource of the worker's stage: out of reach in the pool."""
    return durable.resource("db")


def waits(directory: str, i: int) -> int:
    """Say this run got a pool process, then wait for the test's go."""
    mark(directory, f"run-{i}")
    until((Path(directory) / "go").exists)
    return i


# -------------------------------------------------------------- the App


def make_app(database: str, cancel_grace: float = 10.0, lease_timeout: float = 30.0) -> durable.App:
    """The App whose workflows the tests start."""
    app = durable.App(
        "pooled",
        database=database,
        cancel_grace=cancel_grace,
        poll_interval=0.2,
        lease_timeout=lease_timeout,
    )
    process = app.step(executor="process")
    meet_ = process(meet)
    report_ = process(report)
    until_cancelled_ = process(until_cancelled)
    ignores_ = process(ignores)
    after_ = app.step(after)
    victim_ = app.step(executor="process", retry=durable.Retry(attempts=2, initial_delay=0))(victim)
    bystander_ = process(bystander)
    exits_ = process(exits)
    bad_result_ = process(bad_result)
    echo_ = process(echo)
    renamed_ = app.step(name="renamed", executor="process")(renamed)
    waits_ = process(waits)
    asks_resource_ = process(asks_resource)
    times_out_ = app.step(name="times_out", executor="process", timeout=1.0)(until_cancelled)

    @app.workflow(name="parallel")
    async def parallel(directory: str) -> dict[str, Any]:
        a, b = await asyncio.gather(meet_(directory, "a", "b"), meet_(directory, "b", "a"))
        return {"a": a, "b": b, "worker": os.getpid()}

    @app.workflow(name="reports")
    def reports(directory: str) -> dict[str, Any]:
        with durable.stage("crunch"):
            return report_(directory)  # type: ignore[no-any-return]

    @app.workflow(name="cancel_me")
    def cancel_me(directory: str) -> int:
        done = until_cancelled_(directory)
        after_(directory)
        return done  # type: ignore[no-any-return]

    @app.workflow(name="ignores")
    def ignoring(directory: str) -> int:
        done = ignores_(directory)
        after_(directory)
        return done  # type: ignore[no-any-return]

    @app.workflow(name="times_out")
    def timing_out(directory: str) -> int:
        return times_out_(directory)  # type: ignore[no-any-return]

    @app.workflow(name="crash")
    async def crash(directory: str) -> dict[str, Any]:
        v, b = await asyncio.gather(victim_(directory), bystander_(directory))
        return {"victim": v, "bystander": b}

    @app.workflow(name="exits")
    def exiting(directory: str) -> None:
        exits_(directory)

    @app.workflow(name="bad_result")
    def bad(directory: str) -> Any:
        return bad_result_(directory)

    @app.workflow(name="bad_argument")
    def bad_argument(directory: str) -> Any:
        return echo_(object())

    @app.workflow(name="echo")
    def echoing(value: Any) -> Any:
        return echo_(value)

    @app.workflow(name="renamed")
    def renaming(directory: str) -> int:
        return renamed_(directory)  # type: ignore[no-any-return]

    @app.workflow(name="resource")
    def resource(directory: str) -> Any:
        with durable.stage("s", resources={"db": lambda: contextlib.nullcontext(1)}):
            return asks_resource_(directory)

    @app.workflow(name="waits")
    def waiting(directory: str, i: int) -> int:
        return waits_(directory, i)  # type: ignore[no-any-return]

    return app


def _exit_with_parent() -> None:
    parent = os.getppid()
    while True:
        time.sleep(0.5)
        if os.getppid() != parent:
            os._exit(3)


def main(argv: list[str]) -> int:
    if len(argv) != 7:
        print(__doc__, file=sys.stderr)
        return 2
    import logging

    logging.basicConfig(level=logging.INFO, format=f"[{os.getpid()}] %(name)s %(message)s")
    threading.Thread(target=_exit_with_parent, daemon=True).start()
    app = make_app(argv[1], float(argv[2]), float(argv[5]))
    print(f"worker pid={os.getpid()} ready", flush=True)
    app.run_worker(processes=int(argv[3]), concurrency=int(argv[4]), drain_timeout=float(argv[6]))
    print(f"worker pid={os.getpid()} stopped", flush=True)
    app.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
