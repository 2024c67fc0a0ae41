"""The checks in front of every action: read-only, the bearer token, the request's origin.

Cross-site requests are refused twice over: an action needs the ``Authorization`` header,
which a browser sends cross-site only after a CORS preflight that this app never grants; and
a request whose ``Origin`` names another host than the one it was sent to is refused.
"""

from __future__ import annotations

import hmac
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import JSONResponse

from durable.ui.config import UiConfig

__all__ = ["refuse_action"]


def _json_error(status: int, message: str, **headers: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers or None)


def _cross_site(request: Request) -> bool:
    origin = request.headers.get("origin")
    if origin is None or origin == "null":
        return origin == "null"
    host = request.headers.get("host", "")
    return urlsplit(origin).netloc.lower() != host.lower()


def refuse_action(request: Request, config: UiConfig) -> JSONResponse | None:
    """The error response for an action that may not run, or ``None`` if it may."""
    if config.read_only:
        return _json_error(403, "this dashboard is read-only")
    if _cross_site(request):
        return _json_error(403, "cross-site request refused")
    header = request.headers.get("authorization", "")
    scheme, _, given = header.partition(" ")
    if scheme.lower() != "bearer" or not given:
        return _json_error(
            401, "this action needs Authorization: Bearer TOKEN", **{"WWW-Authenticate": "Bearer"}
        )
    if not hmac.compare_digest(given.strip().encode(), config.token.encode()):
        return _json_error(403, "wrong token")
    return None
