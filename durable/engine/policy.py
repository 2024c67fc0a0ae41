"""Retry policy and backoff arithmetic: pure functions, no I/O."""

from __future__ import annotations

import inspect
import logging
import math
import random as _random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from durable.errors import InvalidOptionError, PermanentError
from durable.options import RetryOptions, RunOptions

__all__ = ["Retry", "RunRetry", "is_retryable", "retry_options", "run_retry"]

log = logging.getLogger("durable.engine.policy")

Predicate = Callable[[BaseException], bool]


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
        retry_if: a predicate beside ``non_retryable``: a failure is tried again only when
            ``retry_if(error)`` is true (an exception it raises counts as false, and is
            logged). It lives in the code, never in the log: give it on the decorator of a
            workflow or step; ``client.start(retry=Retry(retry_if=...))`` is refused.
    """

    attempts: int = 3
    initial_delay: float = 1.0
    backoff: float = 2.0
    max_delay: float = 60.0
    jitter: bool = True
    non_retryable: tuple[type[BaseException], ...] = field(default=())
    retry_if: Predicate | None = field(default=None, compare=False)

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
        if self.retry_if is not None:
            _check_predicate(self.retry_if)

    def delay(self, failed_attempt: int, rng: _random.Random | None = None) -> float:
        """Seconds to wait after try number ``failed_attempt`` (from 1) failed."""
        d = min(self.initial_delay * self.backoff ** (failed_attempt - 1), self.max_delay)
        if self.jitter and d > 0:
            d = (rng or _random).uniform(d / 2, d)
        return d


def _check_predicate(fn: Any) -> None:
    """``retry_if`` is called with the error alone: refuse what cannot take it."""
    if not callable(fn):
        raise TypeError(
            "Retry.retry_if takes a function of the error returning a bool, "
            f"not {type(fn).__name__}"
        )
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):  # a signature Python cannot tell: let the call decide
        return
    try:
        sig.bind(None)
    except TypeError:
        raise TypeError(
            f"Retry.retry_if is called with one argument, the error: {fn!r} takes {sig}"
        ) from None


def is_retryable(
    policy: Retry | None,
    exc: BaseException,
    attempt: int,
    permanent: Predicate | None = None,
) -> bool:
    """Whether try number ``attempt`` that raised ``exc`` may be tried again: attempts
    left, not a ``PermanentError`` nor ``non_retryable``, ``retry_if`` (if any) true, and
    ``permanent`` (a consumer's ``is_permanent``, if any) false."""
    if policy is None or attempt >= policy.attempts:
        return False
    if isinstance(exc, PermanentError):
        return False
    if isinstance(policy, RunRetry) and _named(exc, policy.non_retryable_names):
        return False
    if policy.non_retryable and isinstance(exc, policy.non_retryable):
        return False
    if policy.retry_if is not None and not _asks(policy.retry_if, exc, "retry_if"):
        return False
    return permanent is None or not _asks(permanent, exc, "is_permanent")


def _asks(fn: Predicate, exc: BaseException, what: str) -> bool:
    """``fn(exc)`` as a bool; an exception it raises is logged and counts as false (a
    broken ``retry_if`` retries nothing more; a broken ``is_permanent`` stops nothing)."""
    try:
        return bool(fn(exc))
    except Exception:
        log.exception("%s %r raised on %s; taken as false", what, fn, type(exc).__name__)
        return False


@dataclass(frozen=True, slots=True)
class RunRetry(Retry):
    """A run's own retry policy (``client.start(retry=...)``) as the worker rebuilds it from
    the run's row: its non-retryable types are known by ``(module, qualified name)`` only,
    matched against the raised exception's classes (no module is imported)."""

    non_retryable_names: frozenset[tuple[str, str]] = field(default=frozenset())


def _named(exc: BaseException, names: frozenset[tuple[str, str]]) -> bool:
    return any((c.__module__, c.__qualname__) in names for c in type(exc).__mro__)


def run_retry(options: RunOptions, default: Retry | None) -> Retry | None:
    """The retry policy of a run's workflow code: its own (``options.retry``) over its
    workflow's ``default``."""
    r = options.retry
    if r is None:
        return default
    return RunRetry(
        attempts=r.attempts,
        initial_delay=r.initial_delay,
        backoff=r.backoff,
        max_delay=r.max_delay,
        jitter=r.jitter,
        non_retryable_names=frozenset(r.non_retryable),
    )


def retry_options(retry: Any) -> RetryOptions | None:
    """``client.start(retry=...)`` as stored: a :class:`Retry`, or ``None`` (the workflow's).

    Raises:
        InvalidOptionError: not a ``Retry``, or a number in it out of range.
    """
    if retry is None:
        return None
    if not isinstance(retry, Retry):
        raise InvalidOptionError(
            f"retry must be a durable.Retry (or None: the workflow's), not {type(retry).__name__}"
        )
    for what, v in (
        ("initial_delay", retry.initial_delay),
        ("backoff", retry.backoff),
        ("max_delay", retry.max_delay),
    ):
        if not math.isfinite(v):
            raise InvalidOptionError(f"Retry.{what} must be finite, not {v!r}")
    if isinstance(retry.attempts, bool) or not isinstance(retry.attempts, int):
        raise InvalidOptionError("Retry.attempts must be an int")
    if retry.retry_if is not None:
        raise InvalidOptionError(
            "a run's own retry cannot have retry_if: a function cannot be stored with the "
            "run. Give retry_if on the workflow's decorator (@app.workflow(retry=Retry("
            "retry_if=...))), or name the types with non_retryable="
        )
    names = tuple((t.__module__, t.__qualname__) for t in retry.non_retryable)
    if isinstance(retry, RunRetry):
        names += tuple(sorted(retry.non_retryable_names))
    return RetryOptions(
        attempts=retry.attempts,
        initial_delay=float(retry.initial_delay),
        backoff=float(retry.backoff),
        max_delay=float(retry.max_delay),
        jitter=bool(retry.jitter),
        non_retryable=names,
    )
