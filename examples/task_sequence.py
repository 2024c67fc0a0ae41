"""Chained tasks with success and error handlers, as task-sequence libraries write them.

    python examples/task_sequence.py [--database URL] [--step-seconds S]

A sequence ``publish`` chains three tasks over an uploaded image: ``fetch`` it, make a
``thumbnail``, ``store`` it. ``on_success`` gets the last task's result and ``on_error`` a
``durable.SequenceFailure`` once the sequence has failed for good; both are steps of the run,
journaled, so each runs once even if the worker dies around them. Three runs show the three
endings:

- ``cat.png``: every task succeeds; ``on_success`` announces where the thumbnail went;
- ``dog.png``: the thumbnail service is down on the first attempt; the sequence's
  ``retry=`` runs it again (the fetch is replayed from the journal, not run again), and it
  succeeds: ``on_error`` is not called between attempts;
- ``broken.png``: the image cannot be decoded, a ``PermanentError``: no more attempts,
  ``on_error`` runs once, and the run still ends ``FAILED`` with that error.

The log is SQLite ``task_sequence.db`` in the current folder unless ``--database`` (or
``DURABLE_DATABASE_URL``) names another; a worker runs in this process.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import uuid

import durable
from durable import App, Retry, SequenceFailure

# tests/test_examples.py runs every example that defines TEST_ARGS, with a temporary
# database passed as --database URL, and expects exit status 0.
TEST_ARGS = ["--step-seconds", "0.05"]

DEFAULT_DATABASE = "sqlite:///task_sequence.db"
STEP_SECONDS = 0.2
"""Seconds each simulated task takes (``--step-seconds``)."""


def _database_from_argv() -> str:
    pre = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    pre.add_argument("--database")
    known, _ = pre.parse_known_args()
    return known.database or os.environ.get("DURABLE_DATABASE_URL") or DEFAULT_DATABASE


app = App("task-sequence", database=_database_from_argv(), poll_interval=0.2)


def _work() -> None:
    time.sleep(STEP_SECONDS)


@app.step(name="fetch")
def fetch(name: str) -> dict[str, str]:
    """Download the upload (simulated): its name and bytes, as text."""
    _work()
    print(f"  fetch      {name}")
    return {"name": name, "data": "corrupt" if name.startswith("broken") else "pixels"}


@app.step(name="thumbnail")
def thumbnail(image: dict[str, str]) -> dict[str, str]:
    """Make a thumbnail. A corrupt image fails for good; the service is down on the first
    attempt of the run for ``dog.png``."""
    _work()
    attempt = durable.info().attempt
    if image["data"] == "corrupt":
        print(f"  thumbnail  {image['name']}: cannot decode (permanent)")
        raise durable.PermanentError(f"cannot decode {image['name']}")
    if image["name"] == "dog.png" and attempt == 1:
        print(f"  thumbnail  {image['name']}: service unavailable (attempt {attempt})")
        raise ConnectionError("thumbnail service unavailable")
    print(f"  thumbnail  {image['name']} (attempt {attempt})")
    return {"name": image["name"], "thumb": f"thumb-{image['name']}"}


@app.step(name="store")
def store(thumb: dict[str, str]) -> str:
    """Upload the thumbnail; return where it is."""
    _work()
    url = f"https://cdn.example/{thumb['thumb']}"
    print(f"  store      {url}")
    return url


def announce(url: str) -> str:
    """``on_success``: the last task's result (the run's result stays the URL)."""
    print(f"  on_success published {url} (run {durable.info().id})")
    return "announced"


def report(failure: SequenceFailure) -> None:
    """``on_error``: why the sequence failed for good."""
    print(
        f"  on_error   {failure.sequence} failed in {failure.step} on attempt "
        f"{failure.attempt}: {failure.error_type}: {failure.message}"
    )


publish = app.sequence(
    "publish",
    [fetch, thumbnail, store],
    on_success=announce,
    on_error=report,
    retry=Retry(attempts=3, initial_delay=0.2, backoff=2.0, jitter=False),
    timeout=120,
)


def _count(handle: durable.RunHandle, step: str) -> int:
    return sum(1 for e in handle.events() if e.type == "step_completed" and e.name == step)


def main(argv: list[str] | None = None) -> int:
    global STEP_SECONDS
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", help=f"the log (default {DEFAULT_DATABASE})")
    parser.add_argument(
        "--step-seconds",
        type=float,
        default=STEP_SECONDS,
        help=f"how long each task works (default {STEP_SECONDS})",
    )
    args = parser.parse_args(argv)
    STEP_SECONDS = args.step_seconds

    client = app.client()
    tag = uuid.uuid4().hex[:6]
    problems: list[str] = []
    with app.worker(concurrency=1):
        for name in ("cat.png", "dog.png", "broken.png"):
            print(f"run publish({name!r}):")
            handle = client.start(publish, name, id=f"publish-{name}-{tag}")
            try:
                print(f"  result     {handle.result(timeout=60)}")
            except durable.RunFailedError as exc:
                print(f"  failed     {exc.error_type}: {exc.error_message}")
            info = handle.info()
            ok, err = _count(handle, "publish.on_success"), _count(handle, "publish.on_error")
            print(
                f"  -> {info.status.value} after {info.attempt} attempt(s); handlers: "
                f"on_success x{ok}, on_error x{err}"
            )
            expected = {
                "cat.png": (durable.Status.COMPLETED, 1, 1, 0),
                "dog.png": (durable.Status.COMPLETED, 2, 1, 0),
                "broken.png": (durable.Status.FAILED, 1, 0, 1),
            }[name]
            if (info.status, info.attempt, ok, err) != expected:
                problems.append(f"{name}: {(info.status, info.attempt, ok, err)} != {expected}")
    app.close()
    for problem in problems:
        print(f"unexpected: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
