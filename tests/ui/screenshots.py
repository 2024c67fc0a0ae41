"""Screenshots of every dashboard page, on a demo log, with headless chromium.

    python tests/ui/screenshots.py OUT_DIR [--database sqlite:///demo.db]

Fills the log (make_demo_log.fill), leaves a few runs pending on a queue no worker serves,
keeps a worker busy with slow runs, serves the dashboard and saves one PNG per page as
``OUT_DIR/dashboard-{page}.png``.
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import threading
import time
from pathlib import Path

import make_demo_log as demo
import uvicorn
from playwright.sync_api import sync_playwright

import durable
from durable.ui import asgi_app


def _serve(app: object, port: int) -> uvicorn.Server:
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")  # type: ignore[arg-type]
    server = uvicorn.Server(config)
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.05)
    return server


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--database")
    parser.add_argument("--port", type=int, default=8391)
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)  # the blocked runs' warnings are expected
    url = args.database or f"sqlite:///{tempfile.mkdtemp()}/demo.db"
    plain = durable.Client(url)
    for i in range(12):  # a queue no worker serves, by a client without code: no version
        plain.start("export_csv", f"tenant-{i}", queue="reports")
    made = demo.fill(url, 300)
    client = demo.app.client()
    failed = made["failed"][0]
    retried = next(
        rid for rid in made["ok"] if any(e.type == "step_failed" for e in client.events(rid))
    )
    parent = made["parent"][0]
    blocked = made["blocked"][0]
    args.out.mkdir(parents=True, exist_ok=True)
    # V1's worker serves every queue but the one of checkout: V2 serves that (release V2
    # is deployed for checkout), so the checkouts it could not replay stay blocked.
    v1_queues = ["etl", "default", "media"]
    v2 = demo.next_release(url)
    with (
        demo.app.worker(concurrency=4, queues=v1_queues, worker_id="web-1"),
        v2.worker(worker_id="payments-1"),
    ):
        # the newest runs, on top of the list: one of each kind
        v2_client = v2.client()
        client.start(demo.nightly_etl, "refunds", flaky=1)
        v2_client.start("checkout", "o-9001", 4200)
        client.start(demo.nightly_etl, "clicks", flaky=1, fail=True)
        client.start(demo.reminder, "user-ana", 1800.0)
        client.start(demo.gallery, "album-new", 3)
        client.start(demo.measured, ["a", "bb", "ccc"])
        client.start(demo.nightly_etl, "orders")
        live = [client.start(demo.slow_job, 150) for _ in range(2)]
        time.sleep(5)
        server = _serve(asgi_app(client, trace_url=None), args.port)
        base = f"http://127.0.0.1:{args.port}"
        shots = {
            "runs": "/runs",
            "run-retried": f"/runs/{retried}",
            "run-failed": f"/runs/{failed}",
            "run-parent": f"/runs/{parent}",
            "run-live": f"/runs/{live[0].id}",
            "run-blocked": f"/runs/{blocked}",
            "runs-blocked": "/runs?status=blocked",
            "queues": "/queues",
            "workers": "/workers",
            "stats": "/stats?window=1h",
        }
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=args.chromium, args=["--no-sandbox"])
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            for name, path in shots.items():
                page.goto(base + path)
                page.wait_for_timeout(700)
                page.screenshot(path=str(args.out / f"dashboard-{name}.png"))
                print(args.out / f"dashboard-{name}.png")
            browser.close()
        server.should_exit = True
        for h in live:
            plain.cancel(h.id)
    v2.close()
    plain.close()


if __name__ == "__main__":
    main()
