"""Retry policy and backoff arithmetic: pure functions, no I/O."""

from __future__ import annotations

import random as _random
from dataclasses import dataclass, field

from durable.errors import PermanentError

__all__ = ["Retry", "is_retryable"]


@dataclass(frozen=True, slots=True)
class Retry:
    """How often and how soon a failed step (or workflow) is tried again.

    Args:
        attempts: tries in all, the first included (``1``: no retry).
        initial_delay: seconds before the second try.
        backoff: factor applied to the delay after each try.
        max_delay: the cap of any one delay, in seconds.
        jitter: spread each delay uniformly over [delay/2, delay] to avoid thundering herds.
        non_retryable: exception types that fail at once, like ``PermanentError``.
    """

    attempts: int = 3
    initial_delay: float = 1.0
    backoff: float = 2.0
    max_delay: float = 60.0
    jitter: bool = True
    non_retryable: tuple[type[BaseException], ...] = field(default=())

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError("Retry.attempts counts every try and must be at least 1")
        if self.initial_delay < 0 or self.max_delay < 0:
            raise ValueError("Retry delays cannot be negative")
        if self.backoff < 1:
            raise ValueError("Retry.backoff must be at least 1")
        if isinstance(self.non_retryable, type):
            object.__setattr__(self, "non_retryable", (self.non_retryable,))
        else:
            object.__setattr__(self, "non_retryable", tuple(self.non_retryable))

    def delay(self, failed_attempt: int, rng: _random.Random | None = None) -> float:
        """Seconds to wait after try number ``failed_attempt`` (from 1) failed."""
        d = min(self.initial_delay * self.backoff ** (failed_attempt - 1), self.max_delay)
        if self.jitter and d > 0:
            d = (rng or _random).uniform(d / 2, d)
        return d


def is_retryable(policy: Retry | None, exc: BaseException, attempt: int) -> bool:
    """Whether try number ``attempt`` that raised ``exc`` may be tried again."""
    if policy is None or attempt >= policy.attempts:
        return False
    if isinstance(exc, PermanentError):
        return False
    return not (policy.non_retryable and isinstance(exc, policy.non_retryable))
