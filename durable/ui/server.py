"""``asgi_app``: the dashboard as one Starlette application, with its error pages."""

from __future__ import annotations

import logging
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from durable import App, Client, DurableError, RunNotFoundError
from durable.ui.api import Api
from durable.ui.config import UiConfig, new_token
from durable.ui.context import STATIC_DIR, Ui, make_templates
from durable.ui.counts import CountCache
from durable.ui.pages import Pages
from durable.ui.query import BadQuery

__all__ = ["asgi_app"]

log = logging.getLogger("durable.ui")

SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
    ),
}


def _wants_json(request: Request) -> bool:
    root = str(request.scope.get("root_path", "")).rstrip("/")
    return request.url.path[len(root) :].startswith("/api/")


def _error_handlers(ui: Ui) -> dict[Any, Any]:
    def answer(request: Request, status: int, title: str, message: str) -> Response:
        if _wants_json(request):
            return JSONResponse({"error": message}, status_code=status)
        return ui.render(request, "error.html", status_code=status, title=title, message=message)

    def not_found(request: Request, exc: Exception) -> Response:
        return answer(request, 404, "Not found", str(exc) or "no such page")

    def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        if exc.status_code == 404:
            return answer(request, 404, "Not found", f"no page at {request.url.path}")
        return answer(request, exc.status_code, "Error", str(exc.detail))

    def bad_query(request: Request, exc: Exception) -> Response:
        return answer(request, 400, "Bad request", str(exc))

    def durable_error(request: Request, exc: Exception) -> Response:
        return answer(request, 409, "Refused", str(exc) or type(exc).__name__)

    def server_error(request: Request, exc: Exception) -> Response:
        log.exception("dashboard error on %s", request.url.path, exc_info=exc)
        return answer(request, 500, "Error", "the dashboard failed to answer; see its log")

    return {
        RunNotFoundError: not_found,
        HTTPException: http_error,
        BadQuery: bad_query,
        ValueError: bad_query,
        DurableError: durable_error,
        Exception: server_error,
    }


def _with_headers(app: Any) -> Any:
    async def wrapped(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return

        async def send_with_headers(message: Any) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {k.lower() for k, _ in headers}
                for key, value in SECURITY_HEADERS.items():
                    if key.lower().encode() not in present:
                        headers.append((key.lower().encode(), value.encode()))
                message = {**message, "headers": headers}
            await send(message)

        await app(scope, receive, send_with_headers)

    return wrapped


def asgi_app(
    target: App | Client,
    *,
    read_only: bool = False,
    token: str | None = None,
    embed_token: bool | None = None,
    trace_url: str | None = None,
    refresh_seconds: float = 0.5,
) -> Any:
    """The dashboard of ``target``'s log, as an ASGI application to serve or mount.

    Args:
        target: an :class:`~durable.App` (its client is used) or a :class:`~durable.Client`.
        read_only: hide the actions and refuse them (403).
        token: the bearer token the actions need; default: a random one for this app.
        embed_token: put the token in the served pages, so that the pages' own buttons work
            without asking for it. Default: only when the token was generated here (then
            whoever can load the pages may act: serve such a dashboard only to its users).
        trace_url: a URL template with ``{trace_id}`` to link a run's trace.
        refresh_seconds: no longer used: the live view of a run gets its events pushed as
            they are committed (``AsyncClient.watch``); accepted for compatibility.
    """
    client = target.client() if isinstance(target, App) else target
    if not isinstance(client, Client):
        raise TypeError(f"asgi_app() takes an App or a Client, not {type(target).__qualname__}")
    if refresh_seconds <= 0:
        raise ValueError("refresh_seconds must be positive")
    config = UiConfig(
        read_only=read_only,
        token=token or new_token(),
        embed_token=(token is None) if embed_token is None else embed_token,
        trace_url=trace_url,
        refresh_seconds=refresh_seconds,
    )
    ui = Ui(client, config, make_templates(), CountCache(client))
    pages, api = Pages(ui), Api(ui)
    routes = [
        Route("/", pages.runs),
        Route("/runs", pages.runs),
        Route("/runs/{run_id:path}/live", pages.live),
        Route("/runs/{run_id:path}", pages.run),
        Route("/queues", pages.queues),
        Route("/workers", pages.workers),
        Route("/stats", pages.stats),
        Route("/schedules", pages.schedules),
        Route("/api/runs", api.runs),
        Route("/api/counts", api.counts),
        Route("/api/runs/{run_id:path}/events", api.events),
        Route("/api/runs/{run_id:path}/{action}", api.action, methods=["POST"]),
        Route("/api/runs/{run_id:path}", api.run),
        Mount("/static", StaticFiles(directory=STATIC_DIR), name="static"),
    ]
    app = Starlette(routes=routes, exception_handlers=_error_handlers(ui))
    app.state.ui = ui
    return _with_headers(app)
