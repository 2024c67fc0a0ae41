"""The dashboard as the UI tests reach it: a served instance and its HTTP calls, and small
waits the tests share (the fixtures that make them are in ``tests/ui/conftest.py``)."""

from __future__ import annotations

import contextlib
import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import uvicorn

import durable


@dataclass
class Served:
    """A dashboard served on ``url``; ``token`` authorises its actions."""

    url: str
    token: str
    server: uvicorn.Server
    thread: threading.Thread

    def get(self, path: str, **headers: str) -> tuple[int, bytes, dict[str, str]]:
        """GET ``path``: status, body, headers."""
        return self.request("GET", path, None, headers)

    def post(self, path: str, body: Any = None, **headers: str) -> tuple[int, Any]:
        """POST JSON to ``path``: status and decoded JSON answer."""
        data = json.dumps(body if body is not None else {}).encode()
        headers.setdefault("Content-Type", "application/json")
        status, raw, _ = self.request("POST", path, data, headers)
        return status, json.loads(raw)

    def auth(self) -> dict[str, str]:
        """The header that authorises an action."""
        return {"Authorization": f"Bearer {self.token}"}

    def request(
        self, method: str, path: str, data: bytes | None, headers: dict[str, str]
    ) -> tuple[int, bytes, dict[str, str]]:
        req = urllib.request.Request(self.url + path, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                return resp.status, resp.read(), dict(resp.headers)
        except urllib.error.HTTPError as exc:
            with exc:
                return exc.code, exc.read(), dict(exc.headers)


def finish(app: durable.App, handles: list[durable.RunHandle]) -> None:
    """Run an embedded worker until every one of ``handles`` has ended."""
    with app.worker(concurrency=4):
        for h in handles:
            with contextlib.suppress(durable.RunFailedError, durable.RunCancelledError):
                h.result(timeout=60)


def wait_until(check: Callable[[], bool], timeout: float = 20.0, what: str = "") -> None:
    """Poll ``check`` until it is true, else fail naming ``what``."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or check}")
        time.sleep(0.05)
