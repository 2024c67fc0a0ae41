"""Database URLs without their passwords, for every message a person may read.

``redact_url`` hides the password of one URL; ``scrub`` hides a URL's password wherever it
appears in a text (an error message, a log line); ``passwords_hidden`` re-raises an error
whose message holds one with the password hidden. A bottom module: it imports only
``durable.errors``, so every layer may use it.
"""

from __future__ import annotations

import re
import urllib.parse
from types import TracebackType
from typing import Literal

__all__ = ["HIDDEN", "passwords_hidden", "redact_url", "scrub", "userinfo_password"]

HIDDEN = "***"
"""What a password is replaced with."""

_QUERY_PASSWORD = re.compile(r"(?i)([?&]password=)[^&#\s'\"]*")
_SHORTEST_REPLACED_ANYWHERE = 4
"""A password this long or longer is hidden wherever it appears in a text; a shorter one only
where it sits in a URL (hiding every ``a`` of a message would hide the message)."""


def _userinfo(url: str) -> tuple[str, str, str] | None:
    """``(scheme://, userinfo, rest after its '@')`` of a URL with a userinfo part.

    The userinfo ends at the *last* ``@`` before any ``?``: a password that holds an
    unencoded ``@`` or ``/`` is still all of it, and a URL that does not parse is handled."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return None
    head = rest.split("?", 1)[0]
    at = head.rfind("@")
    if at < 0:
        return None
    return scheme + sep, rest[:at], rest[at + 1 :]


def userinfo_password(url: str) -> str | None:
    """The password written in ``url``'s authority (percent-decoded), or ``None``."""
    parts = _userinfo(url)
    if parts is None or ":" not in parts[1]:
        return None
    return urllib.parse.unquote(parts[1].split(":", 1)[1])


def _password(url: str) -> str | None:
    """The password of ``url`` as written: in its authority, else a ``password=`` parameter."""
    parts = _userinfo(url)
    if parts is not None and ":" in parts[1]:
        return parts[1].split(":", 1)[1] or None
    m = _QUERY_PASSWORD.search(url)
    return (m.group(0).split("=", 1)[1] or None) if m else None


def redact_url(url: str) -> str:
    """``url`` with its password (in the authority or a ``password=`` parameter) replaced
    by ``***``: ``postgresql://app:***@db:5432/shop``. Works on URLs that do not parse too
    (everything between the user name and the last ``@`` is hidden); a URL without a
    password is returned as it is."""
    out = url
    parts = _userinfo(url)
    if parts is not None and ":" in parts[1]:
        scheme, userinfo, rest = parts
        out = f"{scheme}{userinfo.split(':', 1)[0]}:{HIDDEN}@{rest}"
    return _QUERY_PASSWORD.sub(lambda m: m.group(1) + HIDDEN, out)


def scrub(text: str, *urls: str | None) -> str:
    """``text`` with the password of every URL in ``urls`` hidden: each URL in full, then
    the password itself (raw and percent-decoded) wherever it still appears."""
    for url in urls:
        if not url:
            continue
        password = _password(url)
        if password is None:
            continue
        text = text.replace(url, redact_url(url))
        for form in {password, urllib.parse.unquote(password)}:
            text = text.replace(f":{form}@", f":{HIDDEN}@")
            text = text.replace(f"password={form}", f"password={HIDDEN}")
            if len(form) >= _SHORTEST_REPLACED_ANYWHERE:
                text = text.replace(form, HIDDEN)
    return text


def passwords_hidden(url: str) -> _PasswordsHidden:
    """``with passwords_hidden(url):`` an error whose message shows ``url``'s password
    leaves the block with the password hidden from its message, and without the errors it
    was raised from or during (their messages may show it too)."""
    return _PasswordsHidden(url)


class _PasswordsHidden:
    """The context manager of :func:`passwords_hidden`."""

    def __init__(self, url: str) -> None:
        self.url = url

    def __enter__(self) -> None:
        return None

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> Literal[False]:
        if exc is None or not isinstance(exc, Exception):
            return False
        text = str(exc)
        clean = scrub(text, self.url)
        if clean == text:
            return False
        exc.args = (clean,)
        if str(exc) != clean:  # an error that builds its message otherwise: wrap it
            from durable.errors import DurableError

            raise DurableError(f"{type(exc).__name__}: {clean}") from None
        exc.__cause__ = None
        exc.__context__ = None
        exc.__suppress_context__ = True
        return False  # the same error goes on, its message clean
