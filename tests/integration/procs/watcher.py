"""A process that watches one run (``client.watch``) and prints what it sees.

``python watcher.py DATABASE_URL RUN_ID [AFTER [MODE]]``: prints ``ready`` once the watch is
open (the run was found), then one JSON line per event (``seq``, ``type``), then ``done`` with
the number of journal reads it made and whether the store pushed. ``MODE`` ``async`` watches
with ``AsyncClient.watch``.
"""

from __future__ import annotations

import asyncio
import json
import sys

import durable


def main() -> int:
    url, run_id = sys.argv[1], sys.argv[2]
    after = int(sys.argv[3]) if len(sys.argv) > 3 else 0
    mode = sys.argv[4] if len(sys.argv) > 4 else "sync"
    if mode == "async":
        return asyncio.run(_async(url, run_id, after))
    with durable.Client(url) as client:
        events = client.watch(run_id, after=after)
        print("ready", flush=True)
        for ev in events:
            print(json.dumps({"seq": ev.seq, "type": str(ev.type)}), flush=True)
        watches = client._watching()
        print(f"done reads={watches.reads} pushed={watches.pushed}", flush=True)
    return 0


async def _async(url: str, run_id: str, after: int) -> int:
    client = durable.AsyncClient(url)
    try:
        print("ready", flush=True)
        async for ev in client.watch(run_id, after=after):
            print(json.dumps({"seq": ev.seq, "type": str(ev.type)}), flush=True)
        watches = client._c._watching()
        print(f"done reads={watches.reads} pushed={watches.pushed}", flush=True)
    finally:
        client.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
