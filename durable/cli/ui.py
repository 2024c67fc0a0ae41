"""``durable ui``: serve the dashboard of a log with uvicorn.

Actions need a bearer token. Bound to loopback without ``--token``, a random token is made
and put in the served pages (only this machine can load them); bound beyond loopback, the
token (``--token``, else a random one printed at start) must be typed into the page once.
"""

from __future__ import annotations

import argparse
import ipaddress
import sys
from collections.abc import Callable
from typing import Any

from durable.cli.context import Context
from durable.cli.errors import USAGE, CliError

__all__ = ["is_loopback", "register", "serve"]

DEFAULT_PORT = 8377


def is_loopback(host: str) -> bool:
    """Whether ``host`` names this machine only (``127.0.0.1``, ``::1``, ``localhost``)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"a port is from 0 to 65535, not {text!r}")
    return value


def register(sub: Any, add: Callable[..., argparse.ArgumentParser]) -> None:
    """Add the ``ui`` sub-command (``add`` is the parser's helper that adds one command)."""
    p = add(
        sub,
        "ui",
        serve,
        "serve the dashboard in a browser",
        "Serve the dashboard of the log: runs, one run's timeline and journal, queues, "
        "workers, statistics; cancel, resume, fork and signal runs. Binds 127.0.0.1 unless "
        "--host says otherwise. Actions need a bearer token (see docs/dashboard.md).",
        json=False,
    )
    p.add_argument("--host", default="127.0.0.1", help="the address to bind (default 127.0.0.1)")
    p.add_argument("--port", type=_port, default=DEFAULT_PORT, help="the port (default 8377)")
    p.add_argument("--read-only", action="store_true", help="hide and refuse every action")
    p.add_argument("--token", help="the bearer token of the actions (default: a random one)")
    p.add_argument(
        "--trace-url",
        metavar="TEMPLATE",
        help="link trace ids to this URL, e.g. 'https://tracing.example/trace/{trace_id}'",
    )
    p.add_argument("--root-path", default="", help="the path prefix behind a reverse proxy")


def serve(ctx: Context) -> int:
    """``ui``: serve the dashboard until Ctrl-C."""
    a = ctx.args
    try:
        import uvicorn

        from durable.ui import asgi_app
        from durable.ui.config import new_token
    except ImportError as exc:
        raise CliError(
            f"the dashboard needs the ui extra ({exc.name} is missing): "
            "pip install 'durable-pipelines[ui]'",
            USAGE,
        ) from None
    if a.trace_url is not None and "{trace_id}" not in a.trace_url:
        raise CliError("--trace-url must contain {trace_id}", USAGE)
    loopback = is_loopback(a.host)
    token = a.token or new_token()
    embed = a.token is None and loopback
    app = asgi_app(
        ctx.client(),
        read_only=a.read_only,
        token=token,
        embed_token=embed,
        trace_url=a.trace_url,
    )
    host = f"[{a.host}]" if ":" in a.host else a.host
    print(f"durable ui: http://{host}:{a.port}{a.root_path or ''}/runs", file=sys.stderr)
    if a.read_only:
        print("durable ui: read-only, actions are refused", file=sys.stderr)
    elif a.token is None and not loopback:
        print(f"durable ui: action token: {token}", file=sys.stderr)
    sys.stderr.flush()
    uvicorn.run(app, host=a.host, port=a.port, log_level="warning", root_path=a.root_path or "")
    return 0
