"""Consumer classes on a SQLite queue, with worker events: the habit of a Node.js SQLite job
queue with ``@Processor`` classes and ``@OnWorkerEvent`` handlers, in ``durable``.

Each queue has a consumer class: ``@app.consumer("thumbnails")`` registers it as the
workflow ``thumbnails`` on the queue ``thumbnails``. ``setup()`` runs once per worker
process (here: it "loads" an image library), ``process(job)`` is the job's code, its steps
journaled to the SQLite file so that a crashed worker resumes a job where it stopped, and
``on_event`` hears the worker events of its own queue's jobs only (``processing``,
``done``, ``error``, ``failed``, ``completed``...).

Run the whole story in one process (an embedded worker; SQLite ``sqlite_queue.db`` here,
or ``--database URL``)::

    python examples/sqlite_queue.py demo

Or as a queue user would, a worker in one terminal and producers in another::

    python examples/sqlite_queue.py worker           # durable worker examples.sqlite_queue:app
    python examples/sqlite_queue.py add cat.png 3    # a thumbnails job and an emails job
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
from typing import Any

import durable

TEST_ARGS = ["demo", "--jobs", "3"]

DEFAULT_DATABASE = "sqlite:///sqlite_queue.db"


def _database_from_argv() -> str:
    """``--database URL``, else ``$DURABLE_DATABASE_URL``, else ``sqlite_queue.db``."""
    pre = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    pre.add_argument("--database")
    known, _ = pre.parse_known_args()
    return known.database or os.environ.get("DURABLE_DATABASE_URL") or DEFAULT_DATABASE


app = durable.App("sqlite-queue", database=_database_from_argv(), poll_interval=0.2)
print_lock = threading.Lock()


def say(text: str) -> None:
    with print_lock:
        print(text, flush=True)


@app.step
def resize(image: str, size: int) -> str:
    """One thumbnail (a step: journaled, never made twice for a job)."""
    return f"{image.rsplit('.', 1)[0]}-{size}px.png"


@app.step(retry=durable.Retry(attempts=3, initial_delay=0.05))
def send_mail(to: str, subject: str, attempt_to_fail: int) -> str:
    """Send one mail; the first ``attempt_to_fail`` tries of it fail (a flaky SMTP)."""
    info = durable.info()
    if (info.step_attempt or 1) <= attempt_to_fail:
        raise ConnectionError("SMTP server busy")
    return f"sent {subject!r} to {to}"


@app.consumer("thumbnails", retry=durable.Retry(attempts=2, initial_delay=0.05))
class Thumbnails(durable.Consumer):
    """``@Processor('thumbnails')``: makes three sizes of an image."""

    def setup(self) -> None:
        self.sizes = (64, 128, 256)  # "load the image library": once per worker process
        say("thumbnails: image library loaded")

    def process(self, job: dict[str, str]) -> list[str]:
        with durable.stage("resize"):
            return [resize(job["image"], size) for size in self.sizes]

    def on_event(self, event: durable.WorkerEventInfo) -> None:
        say(f"thumbnails: {event.event.value} {event.run_id[-6:]}")


@app.consumer("emails")
class Emails(durable.Consumer):
    """``@Processor('emails')``: a mail whose step is retried when the server is busy."""

    def process(self, job: dict[str, Any]) -> str:
        return send_mail(job["to"], job["subject"], job.get("fail", 0))

    def on_event(self, event: durable.WorkerEventInfo) -> None:
        detail = f" ({event.error})" if event.error is not None else ""
        say(f"emails: {event.event.value} {event.run_id[-6:]}{detail}")


@app.on_worker_start
def started(worker: durable.EmbeddedWorker) -> None:
    say(f"worker {worker.worker_id} started")


@app.on_worker_stop
def stopped(worker: durable.EmbeddedWorker) -> None:
    say(f"worker {worker.worker_id} stopped")


def add(client: durable.Client, image: str, n: int) -> list[durable.RunHandle]:
    """Enqueue ``n`` thumbnail jobs and ``n`` mails (the second mail's server is busy once)."""
    handles = []
    for i in range(n):
        handles.append(client.start(Thumbnails, {"image": f"{i}-{image}"}))
        handles.append(
            client.start(Emails, {"to": f"user{i}@example.com", "subject": "hi", "fail": i % 2})
        )
    return handles


def demo(jobs: int) -> int:
    client = app.client()
    with app.worker(concurrency=4):
        handles = add(client, "cat.png", jobs)
        results = [h.result(timeout=60) for h in handles]
    for h, r in zip(handles, results, strict=True):
        say(f"{h.info().workflow} {h.id[-6:]}: {r}")
    thumbs = [r for r in results if isinstance(r, list)]
    assert len(thumbs) == jobs and all(len(t) == 3 for t in thumbs)
    return 0


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database", help="the log's URL (default: sqlite_queue.db here)")
    sub = parser.add_subparsers(dest="command", required=True)
    d = sub.add_parser("demo", help="an embedded worker and a few jobs, in one process")
    d.add_argument("--jobs", type=int, default=5)
    sub.add_parser("worker", help="a worker until SIGTERM or Ctrl-C")
    a = sub.add_parser("add", help="enqueue jobs and wait for them")
    a.add_argument("image")
    a.add_argument("count", type=int, nargs="?", default=1)
    args = parser.parse_args(argv)
    if args.command == "demo":
        return demo(args.jobs)
    if args.command == "worker":
        app.run_worker(concurrency=4)
        return 0
    for h in add(app.client(), args.image, args.count):
        say(f"{h.id}: {h.result(timeout=600)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
