"""``python -m benchmarks._watcher URL IDS_FILE``: the watcher process of W9.

Watches every run named in ``IDS_FILE`` (one id per line) with ``client.watch``, one thread
per run, all on one ``durable.Client`` (so one listener). Prints ``ready`` once every watch
has made its first read (the runs are then started by the benchmark process), and at the end
one JSON line: per live event ``[seq, arrival, at]`` (Unix seconds: when it arrived here, and
its ``at``, stamped in the appending transaction before the commit) by run; the journal reads
the watches made; the events they yielded; this process's CPU seconds from ``ready`` to the
last event.
"""

from __future__ import annotations

import json
import resource
import sys
import threading
import time


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def main(argv: list[str]) -> int:
    import durable

    url, ids_file = argv[0], argv[1]
    with open(ids_file, encoding="utf-8") as f:
        run_ids = [line.strip() for line in f if line.strip()]
    arrivals: dict[str, list[tuple[int, float, float]]] = {}
    counts = [0]
    lock = threading.Lock()
    go = threading.Event()
    with durable.Client(url) as client:
        watches = [client.watch(rid) for rid in run_ids]  # the runs exist: checked here
        hub = client._watching()

        def follow(run_id: str, events: object) -> None:
            mine: list[tuple[int, float, float]] = []
            n = 0
            for ev in events:  # type: ignore[attr-defined]
                now = time.time()
                n += 1
                if go.is_set() and ev.type != "run_started":
                    mine.append((ev.seq, now, ev.at.timestamp()))
            with lock:
                arrivals[run_id] = mine
                counts[0] += n

        threads = [
            threading.Thread(target=follow, args=(rid, w), daemon=True)
            for rid, w in zip(run_ids, watches, strict=True)
        ]
        for t in threads:
            t.start()
        deadline = time.monotonic() + 60
        while hub.reads < len(run_ids) and time.monotonic() < deadline:
            time.sleep(0.005)  # the first reads (the history) before timing starts
        reads0 = hub.reads
        go.set()
        cpu0 = _cpu()
        print("ready", flush=True)
        for t in threads:
            t.join()
        cpu = _cpu() - cpu0
        out = {
            "arrivals": arrivals,
            "reads": hub.reads - reads0,
            "events": counts[0],
            "watchers": len(run_ids),
            "cpu_s": cpu,
            "pushed": hub.pushed,
        }
    print(json.dumps(out), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
