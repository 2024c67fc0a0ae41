"""CPU-heavy steps off the worker's threads, in a process pool, with progress.

Users of BullMQ with a Piscina pool, or of NestJS queues with a worker of type "process",
move CPU-bound jobs off the main thread so that the event loop (and the other jobs) keep
going. In ``durable`` a step says where its body runs: ``@app.step(executor="process")``
runs it in the worker's pool of processes (``app.worker(processes=N)``, ``durable worker
--processes N``; the default is the CPU count), with its own interpreter and GIL.
``durable.progress``, ``message`` and ``output`` from inside the body are journaled as
usual, ``durable.cancelled()`` turns true on a cancel, and a crash of a pool process fails
that attempt only (retried by the step's ``Retry``).

The job renders a Mandelbrot picture in tiles: one step per tile, all gathered at once by an
``async`` workflow, each a pure-Python loop that reports its progress row by row.

One process ("monolith" mode: the worker is embedded in the program that starts the job)::

    python examples/cpu_pool.py demo --tiles 4

Or a worker of its own ("worker" mode), and a client that starts jobs::

    python examples/cpu_pool.py worker --processes 2
    python examples/cpu_pool.py start --tiles 8        # waits for the result and prints it
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from typing import Any

import durable
from durable import App, Retry

DEFAULT_DATABASE = "sqlite:///cpu_pool.db"

# tests/test_examples.py runs every example that defines TEST_ARGS, with a temporary
# database passed as --database URL, and expects exit status 0.
TEST_ARGS = ["demo", "--tiles", "4", "--size", "48"]


def _database_from_argv() -> str:
    """``--database URL``, else ``$DURABLE_DATABASE_URL``, else ``cpu_pool.db`` here."""
    pre = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    pre.add_argument("--database")
    known, _ = pre.parse_known_args()
    return known.database or os.environ.get("DURABLE_DATABASE_URL") or DEFAULT_DATABASE


app = App("cpu-pool", database=_database_from_argv())


# The body is a plain function at the top level of this module: the pool's processes find it
# there by name (a lambda or a function nested in another is refused when it is registered).
@app.step(executor="process", retry=Retry(attempts=3, initial_delay=0.5))
def render_tile(tile: int, tiles: int, size: int) -> dict[str, Any]:
    """Render rows ``tile::tiles`` of a ``size`` x ``size`` Mandelbrot picture; return how
    many points are inside the set, and which process did the work."""
    inside = 0
    rows = range(tile, size, tiles)
    for done, y in enumerate(rows, 1):
        for x in range(size):
            c = complex(-2.0 + 2.6 * x / size, -1.3 + 2.6 * y / size)
            z = 0j
            for _ in range(200):
                z = z * z + c
                if abs(z) > 2.0:
                    break
            else:
                inside += 1
        durable.progress(done / len(rows))
        if durable.cancelled():  # a cancel, the step's timeout, or the worker's drain
            durable.check_cancelled()
    durable.message(f"tile {tile} rendered", inside=inside)
    return {"tile": tile, "inside": inside, "pid": os.getpid()}


@app.workflow(name="mandelbrot")
async def mandelbrot(tiles: int, size: int) -> dict[str, Any]:
    """All tiles at once: they run side by side in the pool's processes."""
    with durable.stage("render"):
        parts = await asyncio.gather(*(render_tile(t, tiles, size) for t in range(tiles)))
    durable.output("processes", sorted({p["pid"] for p in parts}))
    return {"inside": sum(p["inside"] for p in parts), "tiles": parts}


# ---------------------------------------------------------------- the parts


def demo(tiles: int, size: int, processes: int | None) -> int:
    """Monolith mode: an embedded worker with its pool, and the job, in this process."""
    client = app.client()
    with app.worker(processes=processes):
        h = client.start(mandelbrot, tiles, size)
        result = h.result(timeout=600)
    pids = {p["pid"] for p in result["tiles"]}
    print(f"{result['inside']} points inside, {tiles} tiles rendered in processes {sorted(pids)}")
    progress = [e for e in h.events() if e.type == "progress"]
    print(f"{len(progress)} progress events journaled from the pool")
    if os.getpid() in pids or len(progress) < tiles:
        print("expected the tiles to run in the pool's processes, with progress", file=sys.stderr)
        return 1
    return 0


def start(tiles: int, size: int) -> int:
    """A client: start a job for a worker elsewhere, wait for it, print its result."""
    h = app.client().start(mandelbrot, tiles, size)
    print(f"started {h.id}; waiting for a worker", flush=True)
    result = h.result(timeout=3600)
    print(f"{result['inside']} points inside, tiles done by {h.outputs()['main']['processes']}")
    return 0


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database", help="the log's URL (default sqlite:///cpu_pool.db)")
    sub = parser.add_subparsers(dest="command", required=True)
    helps = {
        "demo": "an embedded worker renders one picture, in this process",
        "start": "start a picture for a worker of its own and wait for it",
    }
    for name in ("demo", "start"):
        p = sub.add_parser(name, help=helps[name])
        p.add_argument("--tiles", type=int, default=4, help="steps, one per tile (default 4)")
        p.add_argument("--size", type=int, default=160, help="picture width and height")
        if name == "demo":
            p.add_argument("--processes", type=int, default=None, help="pool size (default: CPUs)")
    w = sub.add_parser("worker", help="a worker with a process pool, until Ctrl-C")
    w.add_argument("--processes", type=int, default=None, help="pool size (default: CPUs)")
    a = parser.parse_args(argv)
    if a.command == "demo":
        return demo(a.tiles, a.size, a.processes)
    if a.command == "start":
        return start(a.tiles, a.size)
    print(f"[worker {os.getpid()}] ready; Ctrl-C drains and stops", flush=True)
    app.run_worker(processes=a.processes)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
