"""A pipeline of stages of steps that share an environment, and outputs kept per step.

Run it::

    python examples/pipeline_stages.py [--pages 4] [--database URL]

The habit of pipeline modules (a pipeline is stages, a stage is steps, the steps of a stage
share an environment opened once for them) written with ``durable``:

- stage **crawl** declares a resource ``"browser"``: a stand-in for a headless browser, a
  temporary folder it "renders" pages into. Its steps get it with
  ``durable.resource("browser")``: the first step that runs opens it, the others reuse it.
  Half-way the stage pauses (``durable.sleep``, a polite crawl delay): the run suspends
  and holds no worker, so the browser is closed, and opened again for the next step after
  the pause. Steps replayed from the journal open nothing.
- stage **store** declares a resource ``"db"``: a ``sqlite3`` connection, shared by its
  steps, closed when the stage ends.
- every step writes outputs with ``durable.output`` in its body; each call keeps its own
  keys, even when the same step runs several times with the same key (``render``,
  ``render#2``...), beside the keys the workflow writes itself.

The worker is embedded (``app.worker()``), the log is SQLite ``pipeline.db`` in the current
folder unless ``--database URL`` (or ``DURABLE_DATABASE_URL``) names another.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import sqlite3
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import durable
from durable import App

DEFAULT_DATABASE = "sqlite:///pipeline.db"

# tests/test_examples.py runs every example that defines TEST_ARGS, with a temporary
# database passed as --database URL, and expects exit status 0.
TEST_ARGS = ["--pages", "4"]


def _database_from_argv() -> str:
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--database")
    known, _ = parser.parse_known_args()
    return known.database or os.environ.get("DURABLE_DATABASE_URL") or DEFAULT_DATABASE


app = App("pipeline", database=_database_from_argv())

OPENED: dict[str, int] = {"browser": 0, "db": 0}
"""How often each resource was opened in this process (the example checks it)."""
_lock = threading.Lock()


class Browser:
    """A stand-in for a headless browser: it "renders" a page into its own folder."""

    def __init__(self) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="durable-browser-"))
        self.pages = 0

    def render(self, url: str) -> Path:
        self.pages += 1
        path = self.folder / f"{self.pages}.html"
        path.write_text(f"<html><title>{url}</title>{'text ' * len(url)}</html>")
        return path


@contextlib.contextmanager
def open_browser() -> Iterator[Browser]:
    """The crawl stage's resource: opened once per live stage, closed at its end."""
    with _lock:
        OPENED["browser"] += 1
    browser = Browser()
    print(f"  [browser opened: {browser.folder.name}]")
    try:
        yield browser
    finally:
        shutil.rmtree(browser.folder, ignore_errors=True)
        print(f"  [browser closed after {browser.pages} pages]")


def db_opener(path: str) -> contextlib.AbstractContextManager[sqlite3.Connection]:
    """The store stage's resource: a sqlite3 connection (``closing``: ``with`` a bare
    connection only ends a transaction, it does not close it)."""
    with _lock:
        OPENED["db"] += 1
    conn = sqlite3.connect(path, check_same_thread=False)  # the steps may run in threads
    conn.execute("CREATE TABLE IF NOT EXISTS pages (url TEXT PRIMARY KEY, size INTEGER)")
    return contextlib.closing(conn)


@app.step(name="render")
def render(url: str) -> int:
    """Render one page in the stage's browser; its size is the step's result."""
    browser: Browser = durable.resource("browser")
    size = browser.render(url).stat().st_size
    durable.output("size", size)  # the same key on every call: each call keeps its own
    durable.output("url", url)
    return size


@app.step(name="save")
def save(url: str, size: int) -> str:
    """Store one page's size with the stage's connection."""
    conn: sqlite3.Connection = durable.resource("db")
    conn.execute("INSERT OR REPLACE INTO pages VALUES (?, ?)", (url, size))
    conn.commit()
    durable.output("saved", url)
    return url


@app.step(name="count")
def count() -> int:
    """Count the stored pages with the same connection."""
    conn: sqlite3.Connection = durable.resource("db")
    (n,) = conn.execute("SELECT count(*) FROM pages").fetchone()
    durable.output("rows", n)
    return int(n)


@app.workflow(name="site_audit")
def site_audit(site: str, pages: int, db_path: str) -> dict[str, int]:
    """Crawl ``pages`` pages of ``site``, then store what was found."""
    urls = [f"{site}/page/{i}" for i in range(pages)]
    sizes: list[int] = []
    with durable.stage("crawl", resources={"browser": open_browser}):
        for i, url in enumerate(urls):
            if i == pages // 2:
                durable.sleep(0.5)  # a crawl delay: the run suspends, the browser closes
            sizes.append(render(url))
        durable.output("pages", len(sizes))  # a key of the workflow itself
    with durable.stage("store", resources={"db": lambda: db_opener(db_path)}):
        for url, size in zip(urls, sizes, strict=True):
            save(url, size)
        stored = count()
    return {"pages": len(sizes), "bytes": sum(sizes), "stored": stored}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=4, help="pages to crawl (at least 2)")
    parser.add_argument("--database", help="the log's URL (default: sqlite:///pipeline.db)")
    args = parser.parse_args(argv)
    if args.pages < 2:
        parser.error("--pages must be at least 2")
    with tempfile.TemporaryDirectory() as tmp:
        db_path = str(Path(tmp) / "pages.db")
        with app.worker():
            h = app.client().start(site_audit, "https://example.org", args.pages, db_path)
            print(f"run {h.id} started")
            result = h.result(timeout=120)
        print(f"result: {result}")
        print("outputs:")
        for stage, values in h.outputs().items():
            for name, value in values.items():
                if isinstance(value, durable.StepOutputs):  # one call of a step
                    print(f"  {stage}.{name}: {dict(value)}")
                else:  # a key the workflow wrote
                    print(f"  {stage}.{name} = {value!r}")
        app.close()
    print(f"resources opened: {OPENED}")
    crawl = h.outputs()["crawl"]
    ok = (
        OPENED == {"browser": 2, "db": 1}  # the crawl's pause closed the browser once
        and result["stored"] == args.pages
        and [crawl["render" if i == 0 else f"render#{i + 1}"]["url"] for i in range(args.pages)]
        == [f"https://example.org/page/{i}" for i in range(args.pages)]
    )
    print("ok" if ok else "UNEXPECTED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
