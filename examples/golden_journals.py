"""Golden journals: export a run under way, then check code changes against it in a test.

    python examples/golden_journals.py [--database URL] [--journals DIR]

1. Under ``v1`` an order reserves stock and goes to sleep for an hour (a cooling-off period):
   a run under way, as production holds many. ``durable runs export`` writes it as a JSON
   journal into ``DIR`` (a temporary folder unless ``--journals`` names one).
2. ``durable.testing.assert_replays(app, DIR)`` replays every journal of ``DIR`` against an
   App's code, executing nothing: ``v1`` replays it; ``v2``, which inserts a fraud check
   before the sleep, does not, and the ``AssertionError`` says where and why (a worker of
   ``v2`` would park the order ``BLOCKED``); ``v3``, the same check behind
   ``durable.patched("fraud-check")``, replays it again.

In a project, the journals live in ``tests/journals/`` and the check is one test::

    def test_the_recorded_runs_still_replay():
        assert_replays(app, "tests/journals")

The log is SQLite ``golden.db`` in the current folder unless ``--database`` (or
``DURABLE_DATABASE_URL``) names another.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import durable
from durable import App, Status
from durable.testing import assert_replays

# tests/test_examples.py runs every example that defines TEST_ARGS, with a temporary
# database passed as --database URL, and expects exit status 0.
TEST_ARGS: list[str] = []

DEFAULT_DATABASE = "sqlite:///golden.db"
HOUR = 3600.0


def make_app(code: str, database: str) -> App:
    """The App of deploy ``code`` (``"v1"``, ``"v2"`` or ``"v3"``)."""
    app = App("shop", database=database, poll_interval=0.1)

    @app.step(name="reserve")
    def reserve(order: str) -> str:
        return f"{order}:reserved"

    @app.step(name="fraud")
    def fraud(order: str) -> str:
        return f"{order}:checked"

    @app.step(name="charge")
    def charge(order: str) -> str:
        return f"{order}:charged"

    if code == "v1":

        @app.workflow(name="order")
        def order(name: str) -> str:
            r = reserve(name)
            durable.sleep(HOUR)
            return charge(r)

    elif code == "v2":

        @app.workflow(name="order")
        def order(name: str) -> str:
            r = reserve(name)
            r = fraud(r)  # inserted before the sleep: the order under way cannot replay it
            durable.sleep(HOUR)
            return charge(r)

    else:

        @app.workflow(name="order")
        def order(name: str) -> str:
            r = reserve(name)
            if durable.patched("fraud-check"):  # new runs only; the old one replays the else
                r = fraud(r)
            durable.sleep(HOUR)
            return charge(r)

    return app


def record_order(database: str) -> str:
    """Start an order under ``v1`` and let it reach its sleep; return its id."""
    v1 = make_app("v1", database)
    try:
        client = v1.client()
        with v1.worker():
            h = client.start("order", f"o-{uuid.uuid4().hex[:6]}")
            deadline = time.monotonic() + 30
            while h.status() is not Status.SLEEPING:
                if time.monotonic() > deadline:
                    raise SystemExit(f"order {h.id} did not reach its sleep in 30s")
                time.sleep(0.05)
        return h.id
    finally:
        v1.close()


def export(database: str, run_id: str, target: Path) -> None:
    """``durable runs export RUN_ID -o TARGET``, as you would type it."""
    command = [sys.executable, "-m", "durable.cli", "--database", database]
    done = subprocess.run(
        [*command, "runs", "export", run_id, "-o", str(target)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"durable runs export failed: {done.stderr.strip()}")
    print(done.stdout.strip())


def check(database: str, journals: Path) -> bool:
    """The three deploys against the journals (their log is not opened: the runs are read
    from the files); whether each did as expected."""
    v1, v2, v3 = (make_app(code, database) for code in ("v1", "v2", "v3"))
    print(f"v1: {assert_replays(v1, journals)} journal replays")
    try:
        assert_replays(v2, journals)
    except AssertionError as exc:
        print(f"v2: {exc}")
    else:
        print("v2: replays (not expected)")
        return False
    print(f"v3 (patched): {assert_replays(v3, journals)} journal replays")
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", help=f"the log (default {DEFAULT_DATABASE})")
    parser.add_argument("--journals", type=Path, help="the folder of the exported journals")
    args = parser.parse_args(argv)
    database = args.database or os.environ.get("DURABLE_DATABASE_URL") or DEFAULT_DATABASE
    run_id = record_order(database)
    with tempfile.TemporaryDirectory(prefix="journals-") as scratch:
        journals = args.journals or Path(scratch)
        export(database, run_id, journals / "order" / "sleeping.json")
        ok = check(database, journals)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
