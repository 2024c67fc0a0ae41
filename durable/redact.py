"""Database URLs without their passwords, for every message a person may read.

``redact_url`` hides the password of one URL; ``scrub`` hides a URL's password wherever it
appears in a text (an error message, a log line); ``passwords_hidden`` re-raises an error
whose message holds one with the password hidden. A bottom module: it imports only
``durable.errors``, so every layer may use it.
"""

from __future__ import annotations

import contextlib
import re
import urllib.parse
from collections.abc import Iterator

__all__ = ["HIDDEN", "passwords_hidden", "redact_url", "scrub"]

HIDDEN = "***"
"""What a password is replaced with."""

_QUERY_PASSWORD = re.compile(r"(?i)([?&]password=)[^&#\s'\"]*")
_SHORTEST_REPLACED_ANYWHERE = 4
"""A password this long or longer is hidden wherever it appears in a text; a shorter one only
where it sits in a URL (hiding every ``a`` of a message would hide the message)."""


def _password(url: str) -> str | None:
    try:
        parts = urllib.parse.urlsplit(url)
        password = parts.password
    except ValueError:
        return None
    if password is None:
        m = _QUERY_PASSWORD.search(url)
        password = m.group(0).split("=", 1)[1] if m else None
    return password or None


def redact_url(url: str) -> str:
    """``url`` with its password (in the authority or a ``password=`` parameter) replaced
    by ``***``: ``postgresql://app:***@db:5432/shop``. A URL without one is returned as is."""
    out = url
    try:
        parts = urllib.parse.urlsplit(url)
        has_password = parts.password is not None
    except ValueError:
        has_password = False
    if has_password:
        user, _, _ = parts.netloc.rpartition("@")[0].partition(":")
        host = parts.netloc.rpartition("@")[2]
        out = urllib.parse.urlunsplit(parts._replace(netloc=f"{user}:{HIDDEN}@{host}"))
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


@contextlib.contextmanager
def passwords_hidden(url: str) -> Iterator[None]:
    """Re-raise an error whose message shows ``url``'s password as the same type of error
    with the password hidden (and without the original, which shows it, as its cause)."""
    try:
        yield
    except Exception as exc:
        text = str(exc)
        clean = scrub(text, url)
        if clean == text:
            raise
        try:
            hidden = type(exc)(clean)
        except Exception:
            from durable.errors import DurableError

            hidden = DurableError(f"{type(exc).__name__}: {clean}")
        raise hidden from None
