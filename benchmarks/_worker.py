"""``python -m benchmarks._worker URL CONCURRENCY``: a worker process for W2 and W5.

Builds the benchmark App on ``URL`` and runs ``app.run_worker(concurrency=...)`` in the main
thread until SIGTERM (then it drains, as a deployed worker does). It prints ``ready`` on
stdout once its worker is up (the heartbeat thread exists, and on Postgres the ``LISTEN``
thread too), so that the benchmark process starts timing against an idle, listening worker.
"""

from __future__ import annotations

import sys
import threading
import time

from benchmarks.bench_app import build


def _announce_when_up(listens: bool) -> None:
    wanted = {"durable-heartbeat", "durable-listen"} if listens else {"durable-heartbeat"}
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if wanted <= {t.name for t in threading.enumerate()}:
            time.sleep(0.1)  # the first lease and the LISTEN itself
            break
        time.sleep(0.005)
    sys.stdout.write("ready\n")
    sys.stdout.flush()


def main(argv: list[str]) -> int:
    url, concurrency = argv[0], int(argv[1])
    bench = build(url)
    bench.app.store  # noqa: B018 - open (and if need be create) the log before announcing
    threading.Thread(
        target=_announce_when_up, args=(not url.startswith("sqlite"),), daemon=True
    ).start()
    try:
        bench.app.run_worker(concurrency=concurrency)
    finally:
        bench.app.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
