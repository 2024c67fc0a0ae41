"""Fixtures of the dashboard tests: the demo App on a fresh log, a dashboard served by
uvicorn in a thread on a free port, and a headless chromium driven by Playwright.

The browser is the system's chromium (``/usr/bin/chromium``, or ``$DURABLE_TEST_CHROMIUM``):
Playwright downloads nothing. A missing browser fails the tests with a message saying how to
install it; it never skips them.
"""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import make_demo_log
import pytest
import uvicorn
from harness.dashboard import Served

import durable
from durable.ui import asgi_app

CHROMIUM_ENV = "DURABLE_TEST_CHROMIUM"


def chromium_path() -> str:
    """The chromium the browser tests drive; fails the test if there is none."""
    path = os.environ.get(CHROMIUM_ENV) or shutil.which("chromium") or "/usr/bin/chromium"
    if not os.path.exists(path):
        pytest.fail(
            f"the dashboard's browser tests need chromium at {path}: install it "
            f"(apt-get install chromium) or point ${CHROMIUM_ENV} at one",
            pytrace=False,
        )
    return path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def demo(db_url: str) -> Iterator[durable.App]:
    """The demo App (tests/ui/make_demo_log.py) on a fresh log."""
    app = make_demo_log.app
    app.database = db_url
    try:
        yield app
    finally:
        app.close()


@pytest.fixture
def serve(demo: durable.App) -> Iterator[Callable[..., Served]]:
    """Start a dashboard of the demo log: ``serve(read_only=..., token=..., ...)``."""
    started: list[Served] = []

    def start(mount: str | None = None, **options: Any) -> Served:
        options.setdefault("refresh_seconds", 0.1)
        options.setdefault("token", "test-token-0123456789")
        options.setdefault("embed_token", True)
        app = asgi_app(demo.client(), **options)
        if mount is not None:  # inside a user's own ASGI app, under a path
            from starlette.applications import Starlette
            from starlette.routing import Mount

            app = Starlette(routes=[Mount(mount, app=app)])
        port = _free_port()
        config = uvicorn.Config(
            app, host="127.0.0.1", port=port, log_level="warning", timeout_graceful_shutdown=1
        )
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        deadline = time.monotonic() + 15
        while not server.started:
            if time.monotonic() > deadline or not thread.is_alive():
                raise RuntimeError("the dashboard did not start")
            time.sleep(0.02)
        served = Served(f"http://127.0.0.1:{port}", options["token"], server, thread)
        started.append(served)
        return served

    try:
        yield start
    finally:
        for s in started:
            s.server.should_exit = True
        for s in started:
            s.thread.join(10)


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """A headless chromium for the whole session."""
    from playwright.sync_api import sync_playwright

    path = chromium_path()
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=path, args=["--no-sandbox"])
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A new browser page (its own context: no shared storage between tests)."""
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    pg = context.new_page()
    pg.set_default_timeout(15_000)
    try:
        yield pg
    finally:
        context.close()
