"""A script that starts its worker at its top level, without ``if __name__ == "__main__":``.

``python unguarded.py DATABASE_URL``: the pool process that runs ``square`` imports this
script again; the worker its top-level code starts there is refused at once, so the run
fails quickly instead of a worker (and runs) being started in every pool process.
"""

from __future__ import annotations

import sys

import durable

app = durable.App("unguarded", database=sys.argv[1], poll_interval=0.2)


@app.step(executor="process")
def square(x: int) -> int:
    """A body for the pool."""
    return x * x


@app.workflow(name="unguarded")
def unguarded(x: int) -> int:
    """One step in the pool."""
    return square(x)  # type: ignore[no-any-return]


with app.worker(processes=1):
    handle = app.client().start(unguarded, 3)
    try:
        print("result:", handle.result(timeout=60))
    except durable.RunFailedError as exc:
        print("failed:", exc.error_type, exc.error_message)
