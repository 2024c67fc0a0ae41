"""``VirtualClock``: the clock of a ``durable.testing`` env, which jumps instead of waiting."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable

__all__ = ["VirtualClock"]

Shift = Callable[[float, Callable[[float], None]], None]
"""How an env moves the clock while runs hold leases: ``shift(seconds, move)`` calls
``move(seconds)`` inside the log's write transaction that pushes those leases forward."""
Skip = Callable[[Callable[[float], None]], bool]
"""How an env moves the clock to the next due run: ``skip(move)`` reads the earliest due
time inside a write transaction of the log and calls ``move(seconds)`` to reach it."""


def _seconds(value: object) -> float:
    """``value`` as seconds to advance: a finite number, zero or more."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"clock.advance takes seconds as a number, not {type(value).__name__}")
    seconds = float(value)
    if math.isnan(seconds) or math.isinf(seconds):
        raise ValueError(f"clock.advance takes a finite number of seconds, not {value!r}")
    if seconds < 0:
        raise ValueError(f"the clock cannot go back: clock.advance({value!r}) is negative")
    return seconds


class VirtualClock:
    """The log's and the worker's clock in a ``durable.testing`` env.

    It starts at the real time and runs at the real pace, plus every second it skipped:
    ``advance(seconds)`` moves it by hand, and the env's worker moves it to the next due run
    (a sleep's end, a signal wait's timeout, a retry's backoff, a delayed start, a
    workflow's deadline) when it holds no run and the test waits in ``result()``.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._skipped = 0.0
        self._may_skip: Callable[[], bool] = lambda: False
        self._shift: Shift | None = None
        self._skip: Skip | None = None
        self._woken: Callable[[], None] = lambda: None

    def now(self) -> float:
        """The virtual instant, in Unix seconds (the real time plus the seconds skipped)."""
        return time.time() + self._skipped

    @property
    def skipped(self) -> float:
        """Seconds this clock is ahead of the real time."""
        return self._skipped

    def advance(self, seconds: float) -> float:
        """Move the clock ``seconds`` forward and wake the worker (runs that became due
        run at once); the leases of runs executing now move with it, so none expires.
        Returns the new :meth:`now`.

        Raises:
            ValueError: ``seconds`` is negative, infinite or NaN.
            TypeError: ``seconds`` is not a number.
        """
        d = _seconds(seconds)
        if d > 0:
            if self._shift is None:
                self._move(d)
            else:
                self._shift(d, self._move)
            self._woken()
        return self.now()

    def skip_to(self, due: float) -> bool:
        """The worker, holding no run, would wait until ``due``: jump there if the test
        waits for a result (see :class:`durable.clock.Clock`)."""
        if not self._may_skip():
            return False
        if self._skip is not None:
            # The due time is read again under the log's write lock: a signal committed
            # since the worker read ``due`` has made its run due now, and nothing jumps.
            self._skip(self._move)
        else:
            ahead = due - self.now() + 1e-6
            if ahead > 0:
                self._move(ahead)
        return True

    def _move(self, seconds: float) -> None:
        with self._lock:
            self._skipped += seconds

    def _attach(
        self, may_skip: Callable[[], bool], shift: Shift, skip: Skip, woken: Callable[[], None]
    ) -> None:
        """Bind the clock to its env: when it may skip, how it moves held leases and skips
        to the next due run through the log, whom it wakes."""
        self._may_skip, self._shift, self._skip, self._woken = may_skip, shift, skip, woken

    def __repr__(self) -> str:
        return f"VirtualClock(skipped={self._skipped:.3f}s)"
