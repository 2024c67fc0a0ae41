"""The clock a log and its workers read: the system's, or a test's virtual one.

A :class:`Clock` is handed to the log when it is opened (SQLite reads it as the database's
clock) and to the App's workers (runs measure sleeps, backoffs and deadlines on it). In
production it is :data:`SYSTEM_CLOCK`; ``durable.testing`` hands in a virtual clock that
jumps ahead instead of waiting. Nothing here is global mutable state: each App holds its own.
"""

from __future__ import annotations

import time
from typing import Protocol

__all__ = ["SYSTEM_CLOCK", "Clock", "SystemClock"]


class Clock(Protocol):
    """What the log and the engine ask of a clock."""

    def now(self) -> float:
        """The current instant, in Unix seconds."""
        ...

    def skip_to(self, due: float) -> bool:
        """An idle worker, holding no run, would wait until ``due``: return true if the
        clock moved there at once (a virtual clock whose test waits for a result), false
        if the worker must wait in real time (the system clock, always)."""
        ...


class SystemClock:
    """The operating system's clock: time passes at its own pace and never skips."""

    __slots__ = ()

    def now(self) -> float:
        """``time.time()``."""
        return time.time()

    def skip_to(self, due: float) -> bool:
        """Never: a production worker waits for its next due run."""
        return False

    def __repr__(self) -> str:
        return "SystemClock()"


SYSTEM_CLOCK = SystemClock()
"""The clock of every App not opened by ``durable.testing`` (stateless, shared)."""
