"""A run's own options over its workflow's (``client.start(..., timeout=, retry=)``): the
msgspec Structs stored, encoded, in the run's row (``durable_runs.options``), and the checks
a value passes before anything is written.

The client encodes them; the worker that executes the run decodes them and applies them over
the workflow's definition. The timeout is also kept in the row's ``timeout`` column, which
the first lease turns into the run's deadline.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

import msgspec

from durable.errors import CorruptJournalError, InvalidOptionError

__all__ = [
    "RetryOptions",
    "RunOptions",
    "check_dedup_key",
    "check_timeout",
    "decode_options",
    "encode_options",
]


class RetryOptions(msgspec.Struct, frozen=True, omit_defaults=True):
    """A run's own retry policy of its workflow code (the fields of ``durable.Retry``);
    ``non_retryable`` names exception types by ``(module, qualified name)``."""

    attempts: int
    initial_delay: float = 1.0
    backoff: float = 2.0
    max_delay: float = 60.0
    jitter: bool = True
    non_retryable: tuple[tuple[str, str], ...] = ()


class RunOptions(msgspec.Struct, frozen=True, omit_defaults=True):
    """What a run was started with over its workflow's definition (``None``: the
    workflow's own)."""

    timeout: float | None = None
    retry: RetryOptions | None = None


_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(RunOptions)


def encode_options(options: RunOptions) -> bytes | None:
    """The bytes of ``durable_runs.options``; ``None`` when the run has no options of its own."""
    if options.timeout is None and options.retry is None:
        return None
    return _encoder.encode(options)


def decode_options(data: bytes | None) -> RunOptions:
    """A run's options from its row (no options: the defaults).

    Raises:
        CorruptJournalError: the stored bytes do not decode.
    """
    if not data:
        return RunOptions()
    try:
        return _decoder.decode(data)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise CorruptJournalError(f"the run's options do not decode: {exc}") from exc


def check_timeout(value: Any, what: str = "timeout") -> float | None:
    """``value`` as seconds: a positive finite number or a ``timedelta``, or ``None``.

    Raises:
        InvalidOptionError: anything else (also a ``ValueError``).
    """
    if value is None:
        return None
    if isinstance(value, dt.timedelta):
        value = value.total_seconds()
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidOptionError(
            f"{what} must be a number of seconds or a timedelta, not {type(value).__name__}"
        )
    seconds = float(value)
    if not math.isfinite(seconds) or seconds <= 0:
        raise InvalidOptionError(
            f"{what} must be a positive, finite number of seconds, not {value!r}"
        )
    return seconds


MAX_KEY = 255
"""The longest deduplication key, as the longest id."""


def check_dedup_key(value: Any, what: str = "dedup_key") -> str | None:
    """A run's deduplication key: a non-empty string of at most 255 characters without a
    NUL, or ``None``.

    Raises:
        InvalidOptionError: anything else (also a ``ValueError``).
    """
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidOptionError(f"{what} must be a string, not {type(value).__name__}")
    if not value:
        raise InvalidOptionError(f"{what} must be a non-empty string")
    if len(value) > MAX_KEY:
        raise InvalidOptionError(f"{what} is longer than {MAX_KEY} characters")
    if "\x00" in value:
        raise InvalidOptionError(f"{what} cannot contain a NUL character")
    return value
