"""Database URLs as people may see them: with the password hidden.

Nothing the log raises or logs shows a password: error messages name a URL through
:func:`redact_url`, and a driver's message is passed through :func:`scrub` first. This module
imports nothing else of durable, so that any layer may use it.
"""

from __future__ import annotations

import urllib.parse

__all__ = ["redact_url", "scrub", "userinfo_password"]

_HIDDEN = "***"


def _userinfo(url: str) -> tuple[str, str, str] | None:
    """``(scheme://, userinfo, rest after its '@')`` of a URL with a userinfo part.

    The userinfo ends at the *last* ``@`` before any ``?``: a password that holds an
    unencoded ``@`` or ``/`` is still all of it."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return None
    head = rest.split("?", 1)[0]
    at = head.rfind("@")
    if at < 0:
        return None
    return scheme + sep, rest[:at], rest[at + 1 :]


def userinfo_password(url: str) -> str | None:
    """The password written in ``url`` (percent-decoded), or ``None`` if it has none."""
    parts = _userinfo(url)
    if parts is None or ":" not in parts[1]:
        return None
    return urllib.parse.unquote(parts[1].split(":", 1)[1])


def redact_url(url: str) -> str:
    """``url`` with its password replaced by ``***``: ``postgresql://user:***@host/db``.

    Works on URLs that do not parse too (everything between the user name and the last
    ``@`` is hidden); a URL without a password is returned as it is."""
    parts = _userinfo(url)
    if parts is None or ":" not in parts[1]:
        return url
    scheme, userinfo, rest = parts
    return f"{scheme}{userinfo.split(':', 1)[0]}:{_HIDDEN}@{rest}"


def scrub(text: str, url: str) -> str:
    """``text`` (a driver's message) with ``url``'s password, as written and decoded,
    replaced by ``***`` wherever it appears, and ``url`` itself redacted."""
    text = text.replace(url, redact_url(url))
    parts = _userinfo(url)
    if parts is None or ":" not in parts[1]:
        return text
    raw = parts[1].split(":", 1)[1]
    for secret in {raw, urllib.parse.unquote(raw)}:
        if len(secret) >= 3:  # shorter ones would blot out ordinary words
            text = text.replace(secret, _HIDDEN)
    return text
