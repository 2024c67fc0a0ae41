"""W14 the dashboard on a big log: server time of its pages, and commit-to-browser latency.

The log is filled as W7's (``w7_log_scale``: one real finished one-step run cloned
``settings.w14_finished`` times, 1,000,000 by default, with one ``INSERT ... SELECT`` per
table), then varied: every 20th of those runs ``failed``, every 7th of another workflow;
then ``settings.w14_unfinished`` more rows (10,000), the newest, cloned from the same
template as unfinished: pending, sleeping, running, blocked in turn, on their own queue.
Then one real run of ``settings.w14_events`` events (about 1,000: a workflow of that many
half as steps, each called with an argument) is executed by an embedded worker. SQLite
checkpoints and ``sync``s after the fill; Postgres ``VACUUM ANALYZE``s (as autovacuum would).

The dashboard (``durable.ui.asgi_app`` on a code-free ``Client``) is served by uvicorn in a
thread of this process, wrapped in a timer that records each request's server time, from
the ASGI call to the last byte of its body. A client on the same machine asks, one at a
time over one kept-alive connection, ``settings.w14_requests`` times each (after 3 untimed
requests): the runs page (the first page; the failed runs; one workflow's runs; the failed
runs after a cursor half-way down the log), the run page of the 1,000-event run, and the
JSON page of runs. The counts per status (``Client.count_runs``, which the runs page's
script asks ``/api/counts`` for and the dashboard keeps 2 s) are timed uncached beside.

Then commit to browser: headless chromium (Playwright) opens the page of a live run and
``settings.w14_live`` events are appended to it one at a time, 0.25 s apart, through the
log's own append under a lease (as a worker's committer does). Per event: from just before
the append call (so the commit's flush is included) to the moment the page's script has put
the update into the page (a ``MutationObserver`` on the run's ``data-seq``, which the script
sets after replacing the page's parts). Twice: on a run with no events but its first, and on
one with ``settings.w14_events``.
"""

from __future__ import annotations

import http.client
import statistics
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from typing import Any

from benchmarks.logs import fresh_log, libpq_url
from benchmarks.model import Measurement, Settings
from benchmarks.w7_log_scale import (
    PREFIX,
    RUN_TIMES,
    _columns,
    _fill,
    _fill_postgres,
    _fill_sqlite,
    _one_run,
)

BIG = "bench_w14_thousand_events"
OTHER = "bench_w14_other"
LIVE = "bench_w14_live"
LIVE_QUEUE = "w14-live"
UNFINISHED = ("pending", "sleeping", "running", "blocked")


def _ms(xs: list[float], q: float) -> float:
    cuts = statistics.quantiles(xs, n=100, method="inclusive") if len(xs) > 1 else xs * 99
    return cuts[int(q * 100) - 1] * 1000


def durable_w14(settings: Settings, backend: str) -> Measurement:
    """Time the dashboard's pages on a big log, and its live updates in chromium."""
    with fresh_log(settings, backend, "w14") as url:
        t0 = time.perf_counter()
        template = _one_run(url)
        _fill(url, backend, template, settings.w14_finished)
        _vary_and_add_unfinished(url, backend, template, settings)
        fill_s = time.perf_counter() - t0
        big, n_events = _thousand_event_run(url, settings.w14_events)
        times, extra = _pages(url, backend, big, settings)
        live = _live(url, settings)
    extra.update(live)
    extra.update(fill_s=fill_s, run_events=float(n_events))
    extra["finished_runs"] = float(settings.w14_finished)
    first = times["first"]
    return Measurement(ops=len(first), seconds=sum(first), extra=extra)


def _vary_and_add_unfinished(url: str, backend: str, template: str, settings: Settings) -> None:
    """Every 20th cloned run failed, every 7th of another workflow; then the unfinished
    runs, cloned from ``template`` with newer instants (W7's fill runs the statements)."""
    from durable.log.schema import runs

    sqlite = backend == "sqlite"

    def every(k: int) -> str:  # the clone's number is a multiple of k (% is SQLite's only)
        num = "CAST(substr(id, 5) AS INTEGER)" if sqlite else "substr(id, 5)::int"
        return f"substr(id, 1, {len(PREFIX)}) = '{PREFIX}' AND " + (
            f"{num} % {k} = 0" if sqlite else f"mod({num}, {k}) = 0"
        )

    cols = _columns(runs)
    if sqlite:
        rid, series = "'w14u-' || printf('%08d', s.x)", "WITH RECURSIVE s(x) AS "
        series += "(SELECT 1 UNION ALL SELECT x + 1 FROM s WHERE x < :n) "
    else:
        rid, series = "'w14u-' || lpad(s.x::text, 8, '0')", "WITH s(x) AS "
        series += "(SELECT generate_series(1, :n)) "
    turn = "s.x % 4" if sqlite else "mod(s.x, 4)"
    status = f"CASE {turn} " + " ".join(f"WHEN {i} THEN '{v}'" for i, v in enumerate(UNFINISHED))
    over = {
        "id": rid,
        "status": status + " END",
        "queue": f"'{LIVE_QUEUE}'",
        "finished_at": "NULL",
        "output": "NULL",
        "due_at": "NULL",
    }
    select = ", ".join(
        over.get(c, f"t.{c} + s.x * 0.001" if c in RUN_TIMES else f"t.{c}") for c in cols
    )
    statements = [
        "UPDATE durable_runs SET status = 'failed', error_type = 'UpstreamError', "
        f"error_message = 'the report service answered 503' WHERE {every(20)}",
        f"UPDATE durable_runs SET workflow = '{OTHER}' WHERE {every(7)}",
        f"{series}INSERT INTO durable_runs ({', '.join(cols)}) SELECT {select} "
        "FROM s CROSS JOIN durable_runs t WHERE t.id = :template",
    ]
    params = {"n": settings.w14_unfinished, "template": template}
    if sqlite:
        _fill_sqlite(url, statements, params)
    else:
        _fill_postgres(url, statements, params)
        import psycopg

        with psycopg.connect(libpq_url(url), autocommit=True) as pg:  # as autovacuum would
            pg.execute(b"VACUUM ANALYZE durable_runs")
            pg.execute(b"VACUUM ANALYZE durable_events")


def _thousand_event_run(url: str, events: int) -> tuple[str, int]:
    """Execute one run of about ``events`` events (two per step, three more); its id."""
    import durable

    app = durable.App("bench-w14", database=url)

    @app.step(name="bench_w14_tick")
    def tick(i: int, tag: str) -> dict[str, int]:
        return {"i": i, "square": i * i}

    @app.workflow(name=BIG)
    def thousand(steps: int) -> int:
        return sum(tick(i, f"item-{i}")["square"] for i in range(steps))

    try:
        with app.worker():
            h = app.client().start(thousand, max((events - 3) // 2, 1))
            h.result(timeout=600)
        return h.id, len(h.events())
    finally:
        app.close()


class _Timed:
    """An ASGI app that records each request's server time, by path and query."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.seconds: dict[str, list[float]] = defaultdict(list)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        key = scope["path"] + (
            "?" + scope["query_string"].decode() if scope["query_string"] else ""
        )
        t0 = time.perf_counter()

        async def timed_send(message: Any) -> None:
            await send(message)
            if message["type"] == "http.response.body" and not message.get("more_body"):
                self.seconds[key].append(time.perf_counter() - t0)

        await self.app(scope, receive, timed_send)


def _serve(app: Any) -> tuple[Any, threading.Thread, int]:
    import socket

    import uvicorn

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("the dashboard did not start")
        time.sleep(0.02)
    return server, thread, port


def _pages(
    url: str, backend: str, big: str, settings: Settings
) -> tuple[dict[str, list[float]], dict[str, float]]:
    import durable
    from durable.ui import asgi_app

    half = settings.w14_finished // 2 // 20 * 20  # a failed run half-way down the log
    paths = {
        "first": "/runs",
        "failed": "/runs?status=failed",
        "workflow": f"/runs?workflow={OTHER}",
        "deep": f"/runs?status=failed&before={PREFIX}{half:08d}",
        "run": f"/runs/{big}",
        "api": "/api/runs?limit=100",
    }
    client = durable.Client(url, create=False)
    timed = _Timed(asgi_app(client))
    server, thread, port = _serve(timed)
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        for path in paths.values():
            for _ in range(3 + settings.w14_requests):
                conn.request("GET", path)
                resp = conn.getresponse()
                resp.read()
                if resp.status != 200:
                    raise RuntimeError(f"GET {path}: {resp.status}")
        conn.close()
        counts = _timed_calls(lambda: client.count_runs(), max(3, settings.w14_requests // 10))
    finally:
        server.should_exit = True
        thread.join(10)
        client.close()
    times = {name: timed.seconds[path][3:] for name, path in paths.items()}
    extra: dict[str, float] = {}
    for name, xs in times.items():
        extra[f"{name}_p50_ms"] = _ms(xs, 0.5)
        extra[f"{name}_p95_ms"] = _ms(xs, 0.95)
    extra["counts_p50_ms"] = _ms(counts, 0.5)
    return times, extra


def _timed_calls(fn: Callable[[], object], n: int) -> list[float]:
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


OBSERVE = """() => {
    const run = document.getElementById("run");
    window.__seen = [];
    new MutationObserver(() => {
        window.__seen.push([Number(run.dataset.seq), Date.now()]);
    }).observe(run, {attributes: true, attributeFilter: ["data-seq"]});
}"""

SHOWN = """(seq) => {
    const hit = window.__seen.find(([s, _]) => s >= seq);
    return hit ? hit[1] : null;
}"""


def _live(url: str, settings: Settings) -> dict[str, float]:
    """Commit-to-browser delays (ms) of appends to a fresh run and to a run of
    ``settings.w14_events`` events."""
    import durable
    from benchmarks.w14_browser import chromium, live_run
    from durable.ui import asgi_app

    app = durable.App("bench-w14-live", database=url)
    client = durable.Client(url, create=False)
    server, thread, port = _serve(asgi_app(client))
    out: dict[str, float] = {}
    try:
        with chromium() as browser:
            for name, prefill in (("live", 0), ("live_big", settings.w14_events)):
                with live_run(app, LIVE, LIVE_QUEUE, prefill) as (run_id, append):
                    page = browser.new_page(viewport={"width": 1400, "height": 900})
                    page.goto(f"http://127.0.0.1:{port}/runs/{run_id}")
                    page.evaluate(OBSERVE)
                    page.wait_for_timeout(500)  # the stream is open, its first update in
                    delays = []
                    for i in range(settings.w14_live):
                        time.sleep(0.25)
                        before = time.time()
                        seq = append(f"update {i}")
                        shown = page.wait_for_function(SHOWN, arg=seq, timeout=30_000)
                        delays.append(float(shown.json_value()) / 1000 - before)
                    page.close()
                out[f"{name}_p50_ms"] = _ms(delays, 0.5)
                out[f"{name}_p95_ms"] = _ms(delays, 0.95)
    finally:
        server.should_exit = True
        thread.join(10)
        client.close()
        app.close()
    return out
