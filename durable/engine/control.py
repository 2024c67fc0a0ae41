"""Control flow that unwinds a run's code: derives from ``BaseException`` so that user code's
``except Exception`` never swallows it; and :class:`Aborted`, why a worker stops a run."""

from __future__ import annotations

from dataclasses import dataclass

from durable.states import AbortReason, SuspendReason, WaitFor

__all__ = ["Abort", "Aborted", "CancelRun", "DeadlineExceeded", "ReplayEnd", "Suspend"]


@dataclass(frozen=True, slots=True)
class Aborted:
    """Why this worker stopped executing a run: a reason, and what the log said, if anything."""

    reason: AbortReason
    detail: str | None = None

    def __str__(self) -> str:
        return f"{self.reason.value}: {self.detail}" if self.detail else self.reason.value


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

    def __init__(self, aborted: Aborted) -> None:
        super().__init__(str(aborted))
        self.aborted = aborted


class DeadlineExceeded(BaseException):
    """The workflow's timeout has passed: the run ends ``FAILED`` with a ``TimeoutError``."""


class ReplayEnd(BaseException):
    """``client.replay``: the code reached the end of the journal (nothing runs live)."""


class CancelRun(BaseException):
    """The run is being cancelled: its code stops at this point (a journaled call, or a
    step body that ended after the cancel), and the runner ends it ``CANCELLED``."""
