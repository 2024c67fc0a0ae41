"""A download job that is watched from one process and cancelled half-way from another.

Run the whole story in one command::

    python examples/download.py demo

It starts three more processes on one log (SQLite ``download.db`` in the current folder, or
``--database URL``): a **worker** that executes the job, a **watcher** that prints the job's
events as they are appended (``client.watch``), and, once half of the pages are fetched, a
**canceller** that calls ``client.cancel``. The worker learns of the cancel by push; the step
that is fetching sees ``durable.cancelled()`` turn true, records what it has and stops; the run
ends ``CANCELLED``, and every page fetched so far is kept: its file in the download folder and
its output in the journal. ``python examples/download.py resume ID`` finishes the job later,
fetching only the pages that are missing.

Or play each part yourself, in four terminals::

    python examples/download.py worker
    python examples/download.py start --pages 40      # prints the run's id
    python examples/download.py watch RUN_ID
    python examples/download.py cancel RUN_ID

"Fetching" a page is simulated without any network: it takes ``--page-seconds`` and writes a
small deterministic file, so that fetching a page again writes the same bytes.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import durable
from durable import App

DEFAULT_DATABASE = "sqlite:///download.db"
BATCH = 5
"""Pages per step: a cancel stops the batch being fetched; a resume fetches it again."""

# tests/test_examples.py runs every example that defines TEST_ARGS, with a temporary
# database passed as --database URL, and expects exit status 0.
TEST_ARGS = ["demo", "--pages", "40", "--page-seconds", "0.1"]


def _database_from_argv() -> str:
    """``--database URL``, else ``$DURABLE_DATABASE_URL``, else ``download.db`` here (the App
    is made at import time, before the whole command line is parsed)."""
    pre = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    pre.add_argument("--database")
    known, _ = pre.parse_known_args()
    return known.database or os.environ.get("DURABLE_DATABASE_URL") or DEFAULT_DATABASE


app = App("download", database=_database_from_argv(), cancel_grace=5.0)


def page_content(page: int) -> bytes:
    """What the simulated server answers for ``page``: the same bytes every time."""
    return (f"<html><h1>page {page}</h1>" + "lorem ipsum " * (50 + page) + "</html>").encode()


@app.step(name="fetch_batch")
def fetch_batch(folder: str, first: int, count: int, page_seconds: float) -> list[int]:
    """Fetch pages ``first .. first + count - 1`` into ``folder``, one output and one
    progress checkpoint per page. Told to stop (a cancel), it records where it stopped and
    leaves the batch unfinished, so that a resume fetches it again."""
    done: list[int] = []
    for page in range(first, first + count):
        deadline = time.monotonic() + page_seconds
        while time.monotonic() < deadline:  # the "download", in slices
            if durable.cancelled():
                durable.message(f"cancelled: stopped before page {page}", fetched=len(done))
                durable.check_cancelled()
            time.sleep(min(0.01, page_seconds))
        data = page_content(page)
        path = Path(folder) / f"page-{page:03}.html"
        path.write_bytes(data)
        durable.output(f"page-{page:03}", {"bytes": len(data), "file": path.name})
        durable.progress((page - first + 1) / count)
        done.append(page)
    return done


@app.workflow(name="download")
def download(folder: str, pages: int, page_seconds: float = 0.2) -> dict[str, int]:
    """Fetch ``pages`` pages into ``folder``, ``BATCH`` per step."""
    fetched = 0
    with durable.stage("fetch"):
        for first in range(0, pages, BATCH):
            fetched += len(fetch_batch(folder, first, min(BATCH, pages - first), page_seconds))
            durable.progress(fetched / pages)
    return {"pages": fetched}


# ---------------------------------------------------------------- the parts


def run_worker() -> int:
    """Execute download jobs until SIGTERM or Ctrl-C (then drain)."""
    print(f"[worker {os.getpid()}] ready", flush=True)
    app.run_worker(concurrency=4)
    print(f"[worker {os.getpid()}] stopped", flush=True)
    return 0


def start(folder: str, pages: int, page_seconds: float, run_id: str | None) -> str:
    """Start a download job; return its id."""
    Path(folder).mkdir(parents=True, exist_ok=True)
    h = app.client().start(download, str(Path(folder).resolve()), pages, page_seconds, id=run_id)
    return h.id


def watch(run_id: str) -> int:
    """Print the job's events as they are appended, until it ends (``client.watch``)."""
    client = app.client()
    for ev in client.watch(run_id):
        if ev.type == "output":
            print(f"[watch] fetched {ev.name}", flush=True)
        elif ev.type == "progress":
            print(f"[watch] progress {ev.data.get('value', 0.0):.0%} ({ev.name})", flush=True)
        elif ev.type in ("message", "run_cancelled", "run_completed", "run_failed"):
            print(f"[watch] {ev.type} {ev.data.get('text') or ''}".rstrip(), flush=True)
    print(f"[watch] run {run_id} ended: {client.get(run_id).status().value}", flush=True)
    return 0


def cancel(run_id: str, after_pages: int = 0, folder: str | None = None) -> int:
    """Cancel the job (once ``after_pages`` pages are in ``folder``, if given); say what
    that did."""
    while folder is not None and len(list(Path(folder).glob("page-*.html"))) < after_pages:
        time.sleep(0.02)
    if after_pages:
        print(f"[cancel] {after_pages} pages fetched: cancelling {run_id}", flush=True)
    outcome = app.client().cancel(run_id)
    print(f"[cancel] {run_id}: {outcome.value}", flush=True)
    return 0


def resume(run_id: str) -> int:
    """Continue a cancelled job with an embedded worker: only missing pages are fetched."""
    client = app.client()
    with app.worker():
        result = client.resume(run_id).result(timeout=600)
    print(f"resumed {run_id}: {result}")
    return 0


# ---------------------------------------------------------------- the demo


def _spawn_args() -> list[str]:
    """This script again, on the same log."""
    return [sys.executable, os.path.abspath(__file__), "--database", app.database]


def _spawn(*args: str) -> subprocess.Popen[bytes]:
    """This script again, in a process of its own, on the same log."""
    return subprocess.Popen([*_spawn_args(), *args])


def demo(folder: str, pages: int, page_seconds: float) -> int:
    """Worker, watcher and canceller in processes of their own; this one waits and checks."""
    client = app.client()
    worker = _spawn("worker")
    watcher: subprocess.Popen[bytes] | None = None
    try:
        deadline = time.monotonic() + 60
        while not client.workers() and time.monotonic() < deadline:
            time.sleep(0.1)  # the worker records itself in the log once it is up
        run_id = start(folder, pages, page_seconds, None)
        print(f"started download job {run_id}: {pages} pages into {folder}", flush=True)
        watcher = _spawn("watch", run_id)
        canceller = _spawn("cancel", run_id, "--after-pages", str(pages // 2), "--folder", folder)
        h = client.get(run_id)
        with contextlib.suppress(durable.RunCancelledError):
            h.result(timeout=120)
        if canceller.wait(60):
            raise SystemExit("the canceller failed")
        return _report(h, folder, pages)
    finally:
        worker.terminate()
        worker.wait(60)
        if watcher is not None:
            watcher.wait(60)


def _report(h: durable.RunHandle, folder: str, pages: int) -> int:
    status = h.status()
    # Each call of the batch step is a node of the stage, holding the pages it fetched.
    calls = h.outputs().get("fetch", {}).values()
    kept = sorted(k for call in calls if isinstance(call, durable.StepOutputs) for k in call)
    kept = [k for k in kept if k.startswith("page-")]
    files = sorted(p.stem for p in Path(folder).glob("page-*.html"))
    print(f"run {h.id} is {status.value}")
    print(f"pages kept in the journal: {len(kept)}; files in {folder}: {len(files)}")
    print(f"resume it with: python examples/download.py resume {h.id}")
    ok = status is durable.Status.CANCELLED and kept == files and 0 < len(kept) < pages
    return 0 if ok else 1


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--database", help=f"the log's URL (default {DEFAULT_DATABASE})")
    sub = p.add_subparsers(dest="command", required=True)
    for name in ("demo", "start"):
        s = sub.add_parser(name, help=f"{name} a download job")
        s.add_argument("--pages", type=int, default=40)
        s.add_argument("--page-seconds", type=float, default=0.2)
        s.add_argument("--folder", default="downloads")
        if name == "start":
            s.add_argument("--id", default=None)
    sub.add_parser("worker", help="execute download jobs until Ctrl-C")
    for name in ("watch", "resume"):
        sub.add_parser(name, help=f"{name} a job").add_argument("run_id")
    c = sub.add_parser("cancel", help="cancel a job")
    c.add_argument("run_id")
    c.add_argument("--after-pages", type=int, default=0, help="once this many are fetched")
    c.add_argument("--folder", default=None, help="the job's download folder")
    a = p.parse_args(argv)
    try:
        if a.command == "worker":
            return run_worker()
        if a.command == "start":
            print(start(a.folder, a.pages, a.page_seconds, a.id))
            return 0
        if a.command == "demo":
            folder = Path(a.folder) / f"job-{time.strftime('%H%M%S')}-{os.getpid()}"
            return demo(str(folder), a.pages, a.page_seconds)
        if a.command == "cancel":
            return cancel(a.run_id, a.after_pages, a.folder)
        fn: Any = {"watch": watch, "resume": resume}[a.command]
        return int(fn(a.run_id))
    finally:
        app.close()


if __name__ == "__main__":
    sys.exit(main())
