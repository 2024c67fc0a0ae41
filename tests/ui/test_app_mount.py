"""``app.ui_asgi()``: the dashboard of an App's own log, as an ASGI app to mount."""

from __future__ import annotations

import asyncio
from typing import Any

import durable


def _call(asgi: Any, method: str, path: str, headers: list[tuple[bytes, bytes]]) -> int:
    """One HTTP request through the ASGI interface itself; the response's status."""
    sent: list[dict[str, Any]] = []
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"127.0.0.1"), *headers],
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 80),
    }

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(asgi(scope, receive, send))
    return int(next(m["status"] for m in sent if m["type"] == "http.response.start"))


def test_ui_asgi_serves_the_apps_log_and_read_only_refuses_actions(db_url: str) -> None:
    app = durable.App("mounted", database=db_url)

    @app.workflow
    def hello() -> str:
        return "hi"

    try:
        run_id = app.client().start(hello).id
        asgi = app.ui_asgi(read_only=True, token="t0ken-for-the-test")
        assert _call(asgi, "GET", "/runs", []) == 200
        assert _call(asgi, "GET", f"/runs/{run_id}", []) == 200
        auth = [(b"authorization", b"Bearer t0ken-for-the-test")]
        assert _call(asgi, "POST", f"/api/runs/{run_id}/cancel", auth) == 403
        assert _call(asgi, "GET", "/runs/no-such-run", []) == 404
    finally:
        app.close()
