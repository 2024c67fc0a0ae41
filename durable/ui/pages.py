"""The HTML pages: runs, one run (and its live stream), queues, workers, stats, schedules."""

from __future__ import annotations

import datetime as dt
from typing import Any
from urllib.parse import urlencode

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from durable import LogEvent, RunInfo, WorkerInfo
from durable.events import EventType as T
from durable.ui.charts import bar_chart
from durable.ui.context import Ui
from durable.ui.format import duration
from durable.ui.live import live_events, sse_stream
from durable.ui.overview import queue_rows, schedules
from durable.ui.query import RANGES, BadQuery, RunQuery, page_runs
from durable.ui.run_view import load_run, run_times

__all__ = ["Pages"]

STEP_EVENTS = frozenset({T.STEP_STARTED, T.STEP_COMPLETED, T.STEP_FAILED})
"""The events that change a run's step calls (a live update without them leaves those)."""

WINDOWS: dict[str, float | None] = {"1h": 3600, "24h": 86400, "7d": 7 * 86400, "all": None}


def _run_row(info: RunInfo, now: dt.datetime) -> dict[str, Any]:
    started, finished = run_times(info)
    begin = started or info.created_at
    end = finished or (None if info.status.is_terminal else now)
    return {
        "info": info,
        "started": started,
        "duration": (end - begin).total_seconds() if end is not None else None,
    }


def _show_all(request: Request) -> bool:
    """``?all=1``: a run's page lists every event, step call and output."""
    value = request.query_params.get("all", "")
    if value not in ("", "0", "1"):
        raise BadQuery("all must be 1 or 0")
    return value == "1"


def _hints(runs: list[RunInfo], workers: list[WorkerInfo]) -> dict[str, list[str]]:
    """What the filter fields suggest: the workflows, queues and versions of the live
    workers and of the runs shown (reading the whole log's would cost a scan of it)."""
    found: dict[str, set[str]] = {"workflows": set(), "queues": set(), "versions": set()}
    for w in workers:
        found["workflows"].update(w.workflows)
        found["queues"].update(w.queues or ())
        if w.version:
            found["versions"].add(w.version)
    for r in runs:
        found["workflows"].add(r.workflow)
        found["queues"].add(r.queue)
        if r.version:
            found["versions"].add(r.version)
    return {k: sorted(v) for k, v in found.items()}


class Pages:
    """The HTML handlers of one dashboard."""

    def __init__(self, ui: Ui) -> None:
        self.ui = ui

    def runs(self, request: Request) -> Response:
        """``/runs``: filters, one keyset page, bulk actions; the counts per status come
        from ``/api/counts`` once the page is shown (``durable.ui.counts``)."""
        q = RunQuery.parse(request.query_params)
        page = page_runs(self.ui.client, q)
        now = dt.datetime.now(dt.UTC)
        base = self.ui.base(request)
        rows = [_run_row(r, now) for r in page.runs]

        def link(**change: str | None) -> str:
            change.setdefault("before", None)
            return f"{base}/runs?{urlencode(q.params(**change))}"

        return self.ui.render(
            request,
            "runs.html",
            q=q,
            rows=rows,
            show_started=any(row["started"] is not None for row in rows),
            page=page,
            hints=_hints(page.runs, self.ui.client.workers()),
            counts_query=urlencode(q.params(status=None, limit=None)),
            ranges=list(RANGES),
            link=link,
            next_link=link(before=page.next_before) if page.next_before else None,
            first_link=link() if q.before else None,
        )

    def run(self, request: Request) -> Response:
        """``/runs/{id}``: the timeline, journal, inputs, outputs, errors, children."""
        view = load_run(
            self.ui.client,
            request.path_params["run_id"],
            self.ui.config.trace_url,
            show_all=_show_all(request),
        )
        return self.ui.render(request, "run.html", v=view, live=not view.info.status.is_terminal)

    async def live(self, request: Request) -> Response:
        """``/runs/{id}/live``: server-sent events with the run's changing parts, rendered."""
        run_id = request.path_params["run_id"]
        await run_in_threadpool(self.ui.client.get, run_id)  # 404 before streaming
        try:
            after = int(request.query_params.get("after") or "0")
        except ValueError:
            raise BadQuery("after must be a whole number") from None
        base = self.ui.base(request)
        show_all = _show_all(request)

        async def render(info: RunInfo, events: list[LogEvent]) -> dict[str, object]:
            view = await run_in_threadpool(
                lambda: load_run(
                    self.ui.client, run_id, self.ui.config.trace_url, show_all=show_all
                )
            )
            return {
                "status": view.info.status.value,
                "progress": view.info.progress,
                "last_seq": view.last_seq,
                "new_events": len(events),
                "html": {
                    "summary": self.ui.render_fragment("_summary.html", v=view, base=base),
                    "timeline": self.ui.render_fragment("_timeline.html", v=view, base=base),
                    "journal": self.ui.render_fragment("_journal.html", v=view, base=base),
                    **(
                        {"calls": self.ui.render_fragment("_calls.html", v=view, base=base)}
                        if any(ev.type in STEP_EVENTS for ev in events) or not events
                        else {}
                    ),
                },
            }

        updates = live_events(self.ui.client, run_id, after)
        return StreamingResponse(
            sse_stream(updates, render),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        )

    def queues(self, request: Request) -> Response:
        """``/queues``: depth, running and the oldest due run's wait, per queue."""
        now = dt.datetime.now(dt.UTC)
        stats = self.ui.client.stats(None)
        return self.ui.render(request, "queues.html", rows=queue_rows(self.ui.client, stats, now))

    def workers(self, request: Request) -> Response:
        """``/workers``: the live workers, as they record themselves in the log."""
        rows = sorted(self.ui.client.workers(), key=lambda w: (-len(w.running), w.id))
        return self.ui.render(request, "workers.html", rows=rows)

    def stats(self, request: Request) -> Response:
        """``/stats``: throughput, processing time and success rate per workflow."""
        window_name = request.query_params.get("window", "24h")
        if window_name not in WINDOWS:
            raise BadQuery(f"window must be one of {', '.join(WINDOWS)}")
        window = WINDOWS[window_name]
        stats = self.ui.client.stats(window)
        label = [f"{s.workflow} · {s.queue}" for s in stats]
        hours = window / 3600 if window else None
        charts = [
            bar_chart(
                "Throughput (finished runs" + (" per hour)" if hours else ")"),
                [
                    (n, s.finished / hours if hours else s.finished)
                    for n, s in zip(label, stats, strict=True)
                ],
                lambda v: f"{v:.1f}/h" if hours else f"{v:.0f}",
            ),
            bar_chart(
                "Processing time p50",
                [(n, s.p50_seconds) for n, s in zip(label, stats, strict=True)],
                duration,
            ),
            bar_chart(
                "Processing time p95",
                [(n, s.p95_seconds) for n, s in zip(label, stats, strict=True)],
                duration,
            ),
            bar_chart(
                "Success rate",
                [(n, s.success_rate) for n, s in zip(label, stats, strict=True)],
                lambda v: f"{v:.0%}",
                top=1.0,
                tone=lambda v: "good" if v >= 0.99 else ("warn" if v >= 0.9 else "bad"),
            ),
        ]
        return self.ui.render(
            request,
            "stats.html",
            stats=stats,
            charts=charts,
            window=window_name,
            windows=list(WINDOWS),
        )

    def schedules(self, request: Request) -> Response:
        """``/schedules``: the log's schedules, where the client records them."""
        return self.ui.render(request, "schedules.html", items=schedules(self.ui.client))
