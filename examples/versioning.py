"""A deploy under sleeping runs: an incompatible change parks them, a patched one heals them.

    python examples/versioning.py [--database URL] [--sleep S]

Three versions of one ``order`` workflow run, one after the other, against one log, as three
deploys would:

1. ``v1`` reserves stock, sleeps (a cooling-off period), then charges. Three orders start and
   go to sleep; the ``v1`` worker stops. ``client.check()`` with the code of ``v2`` and of
   ``v3`` says, before either is deployed, what each would do with them.
2. ``v2`` inserts a fraud check before the sleep, without a patch. Replaying a sleeping
   order, its code calls ``fraud`` where the journal records the sleep: the worker parks
   every order ``BLOCKED`` (not failed), with the position and both calls, and moves on.
3. ``v3`` puts the same check behind ``durable.patched("fraud-check")``. Its worker takes up
   the blocked orders by itself (its code version differs from the one that blocked them):
   they replay the old branch and are charged; a new order takes the new branch.

Each App's version is its default, a fingerprint of its code: the three differ because their
code does. The log is SQLite ``versioning.db`` in the current folder unless ``--database``
(or ``DURABLE_DATABASE_URL``) names another; the workers run in this process.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import uuid

import durable
from durable import App, Status

# tests/test_examples.py runs every example that defines TEST_ARGS, with a temporary
# database passed as --database URL, and expects exit status 0.
TEST_ARGS = ["--sleep", "0.3"]

DEFAULT_DATABASE = "sqlite:///versioning.db"


def make_app(code: str, database: str, sleep: float) -> App:
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
            durable.sleep(sleep)
            return charge(r)

    elif code == "v2":

        @app.workflow(name="order")
        def order(name: str) -> str:
            r = reserve(name)
            r = fraud(r)  # inserted before the sleep: old runs cannot replay this
            durable.sleep(sleep)
            return charge(r)

    else:

        @app.workflow(name="order")
        def order(name: str) -> str:
            r = reserve(name)
            if durable.patched("fraud-check"):  # new runs only; old ones replay the else
                r = fraud(r)
            durable.sleep(sleep)
            return charge(r)

    return app


def wait_for(client: durable.Client, ids: list[str], status: Status, timeout: float) -> None:
    """Wait until every run of ``ids`` has ``status``."""
    deadline = time.monotonic() + timeout
    while any(client.get(i).status() is not status for i in ids):
        if time.monotonic() > deadline:
            raise SystemExit(f"the runs did not all become {status.value} in {timeout}s")
        time.sleep(0.05)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", help=f"the log (default {DEFAULT_DATABASE})")
    parser.add_argument("--sleep", type=float, default=2.0, help="the orders' sleep (s)")
    args = parser.parse_args(argv)
    database = args.database or os.environ.get("DURABLE_DATABASE_URL") or DEFAULT_DATABASE
    v1, v2, v3 = (make_app(c, database, args.sleep) for c in ("v1", "v2", "v3"))
    try:
        batch = uuid.uuid4().hex[:6]
        client = v1.client()
        with v1.worker():
            ids = [client.start("order", f"{batch}-{n}").id for n in range(3)]
            wait_for(client, ids, Status.SLEEPING, 30)
        print(f"v1 ({v1.version}): {len(ids)} orders sleep")

        # Before each deploy, check its code against the runs (`durable check --app ...`).
        for app in (v2, v3):
            verdicts = [r for r in app.client().check(workflow="order").runs if r.run_id in ids]
            print(f"  check of {app.version}: {[r.outcome for r in verdicts]}")

        with v2.worker():
            wait_for(client, ids, Status.BLOCKED, 30)
        info = client.get(ids[0]).info()
        blocked = client.get(ids[0]).events()[-1].data
        print(f"v2 ({v2.version}): every order is {info.status.value}, none failed")
        print(
            f"  at position {blocked['position']} the code calls {blocked['called']}, "
            f"the journal holds {blocked['recorded']}"
        )

        with v3.worker():
            results = [client.get(i).result(timeout=30) for i in ids]
            fresh = v3.client().start("order", f"{batch}-new")
            new_result = fresh.result(timeout=30)
        print(f"v3 ({v3.version}): the old orders replay the old branch: {results}")
        print(f"  a new order takes the new one: {new_result}")
        ok = all(r.endswith(":reserved:charged") for r in results)
        return 0 if ok and new_result.endswith(":checked:charged") else 1
    finally:
        for app in (v1, v2, v3):
            app.close()


if __name__ == "__main__":
    sys.exit(main())
