"""The workflows of ``test_cancel.py``, and the worker process that runs them.

    python tests/integration/procs/cancelapp.py DB_URL CANCEL_GRACE [DRAIN_TIMEOUT]

runs ``app.run_worker`` (SIGTERM drains, for ``DRAIN_TIMEOUT`` seconds) and exits by itself
if its parent goes away. Every workflow takes a directory first, where its step bodies leave
marker files that the test (another process) waits for: ``started`` when a body begins,
``saw-cancel`` when it saw ``durable.cancelled()`` turn true, ``refused`` when a write after
the grace was refused, ``late-done`` when an abandoned body got to its end.
"""

from __future__ import annotations

import asyncio
import os
import sys
import threading
import time
from pathlib import Path

import durable

LIMIT = 60.0
"""Seconds after which a body that waits for a cancel gives up (a forgotten process ends)."""


def mark(directory: str, name: str, text: str = "") -> None:
    """Create the marker file ``name`` in ``directory``, whole (written aside, then renamed:
    a reader that sees it exist never reads it empty)."""
    tmp = Path(directory) / f".{name}.{os.getpid()}.tmp"
    tmp.write_text(text or str(os.getpid()))
    os.replace(tmp, Path(directory) / name)


def make_app(database: str, cancel_grace: float = 10.0) -> durable.App:
    """The App whose workflows the tests start and cancel."""
    app = durable.App("cancels", database=database, cancel_grace=cancel_grace, poll_interval=0.2)

    @app.step(name="pages")
    def pages(directory: str) -> int:
        """Fetch pages until cancelled: each page an output and a file; then say so."""
        mark(directory, "started")
        for i in range(10_000):
            durable.output(f"page-{i}", i)
            (Path(directory) / f"page-{i}").write_text(str(i))
            if durable.cancelled():
                mark(directory, "saw-cancel")
                durable.message("stopping", pages=i + 1)
                durable.progress(0.5)
                return i + 1
            time.sleep(0.02)
        return -1

    @app.step(name="pages_async")
    async def pages_async(directory: str) -> int:
        """An async body: the cancel arrives as CancelledError; it records, then re-raises."""
        mark(directory, "started")
        try:
            await asyncio.sleep(LIMIT)
        except asyncio.CancelledError:
            mark(directory, "saw-cancel")
            durable.output("cleaned-up", True)
            raise
        return -1

    @app.step(name="stubborn")
    def stubborn(directory: str) -> int:
        """Ignores the cancel past the grace, then tries to record something."""
        mark(directory, "started")
        deadline = time.monotonic() + LIMIT
        while not durable.cancelled() and time.monotonic() < deadline:
            time.sleep(0.02)
        mark(directory, "saw-cancel")
        while not (Path(directory) / "go-on").exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        try:
            durable.output("late", True)
        except durable.RunCancelledError:
            mark(directory, "refused")
        mark(directory, "late-done")
        return 1

    @app.step(name="after")
    def after(directory: str) -> None:
        """Must never run after a cancel."""
        mark(directory, "after-ran")

    @app.workflow(name="fetch")
    def fetch(directory: str) -> int:
        n = pages(directory)
        after(directory)
        return n

    @app.workflow(name="fetch_async")
    async def fetch_async(directory: str) -> int:
        n = await pages_async(directory)
        await after(directory)
        return n

    @app.workflow(name="ignores")
    def ignores(directory: str) -> int:
        n = stubborn(directory)
        after(directory)
        return n

    @app.step(name="slow", timeout=0.5)
    def slow(directory: str) -> int:
        """Times out: sees durable.cancelled() once its timeout passed."""
        mark(directory, "started")
        deadline = time.monotonic() + LIMIT
        while not durable.cancelled() and time.monotonic() < deadline:
            time.sleep(0.02)
        mark(directory, "saw-cancel")
        return 1

    @app.step(name="slow_async", timeout=0.5)
    async def slow_async(directory: str) -> int:
        """Times out: gets CancelledError, and durable.cancelled() is true."""
        try:
            await asyncio.sleep(LIMIT)
        except asyncio.CancelledError:
            mark(directory, "async-saw-cancel", str(durable.cancelled()))
            raise
        return 1

    @app.workflow(name="times_out")
    def times_out(directory: str) -> str:
        try:
            slow(directory)
        except TimeoutError:
            return "timed out"
        return "no timeout"

    @app.workflow(name="times_out_async")
    async def times_out_async(directory: str) -> str:
        try:
            await slow_async(directory)
        except TimeoutError:
            return "timed out"
        return "no timeout"

    @app.step(name="draining")
    def draining(directory: str) -> int:
        """Runs past the drain time: told by durable.cancelled() when it is up."""
        mark(directory, "started")
        deadline = time.monotonic() + LIMIT
        while not durable.cancelled() and time.monotonic() < deadline:
            time.sleep(0.02)
        mark(directory, "saw-cancel")
        return 1

    @app.workflow(name="drains")
    def drains(directory: str) -> int:
        return draining(directory)

    @app.workflow(name="loops")
    def loops(directory: str) -> int:
        """Workflow code that checks durable.cancelled() between its steps."""
        done = 0
        while not durable.cancelled() and done < 10_000:
            pages_once(directory, done)
            done += 1
        mark(directory, "workflow-saw-cancel", str(done))
        after(directory)  # a step call after the cancel: the code stops here
        return done

    @app.step(name="pages_once")
    def pages_once(directory: str, i: int) -> int:
        mark(directory, "started")
        time.sleep(0.02)
        return i

    return app


def _exit_with_parent() -> None:
    parent = os.getppid()
    while True:
        time.sleep(0.5)
        if os.getppid() != parent:
            os._exit(3)


def main(argv: list[str]) -> int:
    if len(argv) not in (3, 4):
        print(__doc__, file=sys.stderr)
        return 2
    import logging

    logging.basicConfig(level=logging.INFO, format=f"[{os.getpid()}] %(name)s %(message)s")
    threading.Thread(target=_exit_with_parent, daemon=True).start()
    app = make_app(argv[1], float(argv[2]))
    drain = float(argv[3]) if len(argv) == 4 else 10.0
    print(f"worker pid={os.getpid()} ready", flush=True)
    app.run_worker(concurrency=4, drain_timeout=drain)
    print(f"worker pid={os.getpid()} stopped", flush=True)
    app.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
