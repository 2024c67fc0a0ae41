"""The App of the consumer tests' worker processes: ``durable worker consumerapp:app``.

Its consumer, hooks and steps append one line each to the file named by
``CONSUMER_TRACE`` (``"setup PID"``, ``"process PID RUN"``...), so that the test reads what
happened in which process, and in which order.
"""

from __future__ import annotations

import os

import durable

app = durable.App("consumers", poll_interval=0.1)


def trace(*words: object) -> None:
    """Append one line to the trace file (one write: lines never interleave)."""
    with open(os.environ["CONSUMER_TRACE"], "a") as f:
        f.write(" ".join(str(w) for w in (*words, os.getpid())) + "\n")


@app.step
def shout(text: str) -> str:
    return text.upper()


@app.consumer("scraper", retry=durable.Retry(attempts=3, initial_delay=0.01))
class Scraper(durable.Consumer):
    """Opens its "browser" once per worker process, closes it at the worker's stop."""

    def setup(self) -> None:
        self.browser = "open"
        trace("setup")

    def teardown(self) -> None:
        trace("teardown", self.browser)

    def process(self, payload: dict[str, str]) -> str:
        trace("process", durable.info().id)
        return shout(payload["url"]) + " " + self.browser


@app.on_worker_start
def started(worker: durable.EmbeddedWorker) -> None:
    trace("start", worker.worker_id)


@app.on_worker_stop
def stopped(worker: durable.EmbeddedWorker) -> None:
    trace("stop", worker.worker_id)
