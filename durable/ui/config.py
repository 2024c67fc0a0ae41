"""What one dashboard is allowed to do, and how actions are authorised."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field

__all__ = ["UiConfig", "new_token"]


def new_token() -> str:
    """A random action token (URL-safe, 32 bytes of entropy)."""
    return secrets.token_urlsafe(32)


@dataclass(frozen=True, slots=True)
class UiConfig:
    """The settings of one dashboard app."""

    read_only: bool = False
    """Hide the actions, and refuse them with 403."""
    token: str = field(default_factory=new_token)
    """The bearer token every action needs (``Authorization: Bearer TOKEN``)."""
    embed_token: bool = False
    """Put the token in the served pages, so that their own scripts can act without asking
    for it (for a dashboard only its user can reach, such as one bound to loopback)."""
    trace_url: str | None = None
    """A URL template with ``{trace_id}``: a run's trace id links there."""
    refresh_seconds: float = 0.5
    """Unused: the live view of a run gets its events pushed (kept for compatibility)."""
