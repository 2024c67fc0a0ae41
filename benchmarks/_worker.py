"""``python -m benchmarks._worker URL CONCURRENCY [BUILDER [OPTIONS_JSON]]``: a worker
process for W2, W4, W5 and W6.

Builds the benchmark App on ``URL`` (or, given ``BUILDER``, a ``"module:function"``, what
``function(URL, **OPTIONS)`` returns: an object with an ``app``) and runs
``app.run_worker(concurrency=...)`` in the main thread until SIGTERM (then it drains, as a
deployed worker does). It prints ``ready`` on stdout once its worker is up (the heartbeat
thread exists, and on Postgres the ``LISTEN`` thread too), so that the benchmark process
starts timing against an idle, listening worker.
"""

from __future__ import annotations

import importlib
import json
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
    if len(argv) > 2:
        module_name, _, attr = argv[2].partition(":")
        options = json.loads(argv[3]) if len(argv) > 3 else {}
        bench = getattr(importlib.import_module(module_name), attr)(url, **options)
    else:
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
