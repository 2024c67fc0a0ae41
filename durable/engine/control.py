"""Control flow that unwinds a run's code: derives from ``BaseException`` so that user code's
``except Exception`` never swallows it."""

from __future__ import annotations

from durable.states import SuspendReason, WaitFor

__all__ = ["Abort", "DeadlineExceeded", "ReplayEnd", "Suspend"]


class Suspend(BaseException):
    """The run hands its lease back until ``wake_at`` (or a wake-up for ``waiting_for``)."""

    def __init__(
        self,
        wake_at: float | None,
        waiting_for: WaitFor | None = None,
        reason: SuspendReason = SuspendReason.SLEEP,
    ) -> None:
        super().__init__(reason.value)
        self.wake_at = wake_at
        self.waiting_for = waiting_for
        self.reason = reason


class Abort(BaseException):
    """This worker must stop executing the run at once: its lease was lost, the run was
    cancelled or ended elsewhere, or the worker is stopping. Nothing more is written."""


class DeadlineExceeded(BaseException):
    """The workflow's timeout has passed: the run ends ``FAILED`` with a ``TimeoutError``."""


class ReplayEnd(BaseException):
    """``client.replay``: the code reached the end of the journal (nothing runs live)."""
