"""Four deploys of one workflow, for the versioning tests: ``durable worker deployapp:app``
with ``DEPLOY_CODE`` set to ``v1``, ``v2``, ``v3`` or ``v4`` (``v1`` by default).

- ``v1``: ``reserve``, a sleep, ``charge``;
- ``v2``: a ``fraud`` check inserted before the sleep, without a patch: runs of ``v1`` that
  sleep can no longer be replayed (their journal holds the sleep where ``v2`` calls
  ``fraud``), and are parked ``BLOCKED``;
- ``v3``: the same change behind ``durable.patched("fraud-check")``: old runs replay the old
  branch, new runs take the new one;
- ``v4``: the change made unconditional with ``durable.deprecate_patch("fraud-check")``: runs
  with the marker replay, runs of ``v1`` that passed the patch's position do not.

Each version keeps its App's default version, the fingerprint of its code, so the three are
told apart by their code alone. ``DEPLOY_SLEEP`` is the sleep's length in seconds.
"""

from __future__ import annotations

import os

import durable

CODE = os.environ.get("DEPLOY_CODE", "v1")
SLEEP = float(os.environ.get("DEPLOY_SLEEP", "2"))


def make_app(
    code: str = CODE, database: str | None = None, version: str | None = None
) -> durable.App:
    """The App of deploy ``code`` (``version``: its own, instead of the fingerprint)."""
    app = durable.App(
        "deploy", database=database, poll_interval=0.1, lease_timeout=3.0, version=version
    )

    @app.step(name="reserve")
    def reserve(n: int) -> int:
        return n + 1

    @app.step(name="fraud")
    def fraud(n: int) -> int:
        return n * 10

    @app.step(name="charge")
    def charge(n: int) -> str:
        return f"charged {n}"

    if code == "v1":

        @app.workflow(name="order")
        def order(n: int) -> str:
            a = reserve(n)
            durable.sleep(SLEEP)
            return charge(a)

    elif code == "v2":

        @app.workflow(name="order")
        def order(n: int) -> str:
            a = reserve(n)
            a = fraud(a)
            durable.sleep(SLEEP)
            return charge(a)

    elif code == "v3":

        @app.workflow(name="order")
        def order(n: int) -> str:
            a = reserve(n)
            if durable.patched("fraud-check"):
                a = fraud(a)
            durable.sleep(SLEEP)
            return charge(a)

    else:

        @app.workflow(name="order")
        def order(n: int) -> str:
            a = reserve(n)
            durable.deprecate_patch("fraud-check")
            a = fraud(a)
            durable.sleep(SLEEP)
            return charge(a)

    return app


app = make_app()
