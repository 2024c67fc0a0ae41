"""A starter process for the dedup tests: ``dedup_starter.py DB_URL GO_FILE NAME``.

It waits for GO_FILE to exist (so that every starter begins at once), then starts one run of
``job`` with id ``NAME`` and the dedup key ``shared``, and prints one JSON line: the id it
started, or the run that holds the key if the start was refused with ``DuplicateRunError``.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import durable

if __name__ == "__main__":
    url, go, name = sys.argv[1], Path(sys.argv[2]), sys.argv[3]
    client = durable.Client(url)
    print("ready", flush=True)
    while not go.exists():
        time.sleep(0.002)
    try:
        h = client.start("job", 1, id=name, dedup_key="shared")
        print(json.dumps({"started": h.id}), flush=True)
    except durable.DuplicateRunError as exc:
        print(json.dumps({"refused": exc.run_id}), flush=True)
    client.close()
