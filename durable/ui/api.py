"""The JSON API under ``/api/``: runs, one run, its events, and the actions."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from durable import RunInfo
from durable.ui.auth import refuse_action
from durable.ui.context import Ui
from durable.ui.format import jsonable
from durable.ui.query import BadQuery, RunQuery, page_runs
from durable.ui.run_view import run_times

__all__ = ["ACTIONS", "Api"]

ACTIONS = ("cancel", "resume", "fork", "signal")
MAX_BODY = 1_000_000


def run_json(info: RunInfo) -> dict[str, Any]:
    """A run as JSON, with its start and end where known."""
    out: dict[str, Any] = jsonable(info)
    started, finished = run_times(info)
    out["started_at"] = jsonable(started)
    out["finished_at"] = jsonable(finished)
    return out


class Api:
    """The JSON endpoints of one dashboard."""

    def __init__(self, ui: Ui) -> None:
        self.ui = ui

    def runs(self, request: Request) -> Response:
        """``GET /api/runs``: a keyset page of runs, newest first."""
        q = RunQuery.parse(request.query_params)
        page = page_runs(self.ui.client, q)
        return JSONResponse(
            {"runs": [run_json(r) for r in page.runs], "next_before": page.next_before}
        )

    def counts(self, request: Request) -> Response:
        """``GET /api/counts``: runs per status under the page's filters (but the status),
        read at most every few seconds (``durable.ui.counts``)."""
        q = RunQuery.parse(request.query_params)
        counts = self.ui.counts.get(q)
        return JSONResponse(
            {
                "counts": {s.value: n for s, n in counts.by_status.items()},
                "total": counts.total,
                "read_at": jsonable(dt.datetime.fromtimestamp(counts.read_at, dt.UTC)),
            },
            headers={"Cache-Control": "no-store"},
        )

    def run(self, request: Request) -> Response:
        """``GET /api/runs/{id}``."""
        info = self.ui.client.get(request.path_params["run_id"]).info()
        return JSONResponse(run_json(info))

    def events(self, request: Request) -> Response:
        """``GET /api/runs/{id}/events?after=SEQ``: the journal."""
        after_text = request.query_params.get("after", "0") or "0"
        try:
            after = int(after_text)
        except ValueError:
            raise BadQuery("after must be a whole number") from None
        if after < 0:
            raise BadQuery("after must be 0 or more")
        events = self.ui.client.events(request.path_params["run_id"], after)
        return JSONResponse({"events": [jsonable(e) for e in events]})

    async def action(self, request: Request) -> Response:
        """``POST /api/runs/{id}/{cancel|resume|fork|signal}``: needs the bearer token."""
        refused = refuse_action(request, self.ui.config)
        if refused is not None:
            return refused
        name = request.path_params["action"]
        if name not in ACTIONS:
            return JSONResponse({"error": f"no action {name!r}"}, status_code=404)
        body = await request.body()
        if len(body) > MAX_BODY:
            raise BadQuery("the request body is too large")
        try:
            data = json.loads(body) if body.strip() else {}
        except ValueError:
            raise BadQuery("the request body is not JSON") from None
        if not isinstance(data, dict):
            raise BadQuery("the request body must be a JSON object")
        result = await run_in_threadpool(self._act, request.path_params["run_id"], name, data)
        return JSONResponse(result)

    def _act(self, run_id: str, name: str, data: dict[str, Any]) -> dict[str, Any]:
        client = self.ui.client
        client.get(run_id)  # RunNotFoundError -> 404
        if name == "cancel":
            client.cancel(run_id)
        elif name == "resume":
            client.resume(run_id)
        elif name == "fork":
            step = data.get("from_step")
            if not isinstance(step, int) or isinstance(step, bool) or step < 1:
                raise BadQuery("from_step must be a position, a whole number from 1")
            forked = client.fork(run_id, step)
            return {"ok": True, "action": name, "id": forked.id}
        else:
            signal = data.get("name")
            if not isinstance(signal, str) or not signal:
                raise BadQuery("name must be the signal's name")
            client.signal(run_id, signal, data.get("payload"))
        info = client.get(run_id).info()
        return {"ok": True, "action": name, "id": run_id, "status": info.status.value}
