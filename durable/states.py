"""The typed vocabulary that the engine and the log share about a run's state.

A run's :class:`~durable.types.Status` is public (``durable.Status``); the values here say
*why* a run is in it: what a sleeping run waits for (:class:`WaitFor`), why an execution
handed its lease back (:class:`SuspendReason`), and why a worker stopped executing a run
without writing anything more (:class:`AbortReason`). They cross from the engine to the log
as these values, never as strings to parse; only the log turns :class:`WaitFor` into the
text of its ``waiting_for`` column, in :meth:`WaitFor.column` and :meth:`WaitFor.from_column`.
"""

from __future__ import annotations

import enum

import msgspec

from durable.types import TERMINAL, Status

__all__ = [
    "ACTIVE",
    "TERMINAL",
    "AbortReason",
    "Status",
    "SuspendReason",
    "WaitFor",
    "WaitKind",
]

ACTIVE = frozenset(Status) - TERMINAL
"""Statuses of a run that has not ended: pending, running or sleeping."""


class WaitKind(enum.StrEnum):
    """What kind of wake-up, besides a time, a sleeping run waits for."""

    SIGNAL = "signal"
    """A signal of a given name (``durable.wait_signal``)."""
    CHILDREN = "children"
    """One of its child runs ending."""


class WaitFor(msgspec.Struct, frozen=True, omit_defaults=True):
    """What a suspended run waits for: a kind, and the signal's name for a signal wait."""

    kind: WaitKind
    name: str | None = None

    @classmethod
    def signal(cls, name: str) -> WaitFor:
        """A wait for the oldest unconsumed signal called ``name``."""
        return cls(WaitKind.SIGNAL, name)

    @classmethod
    def children(cls) -> WaitFor:
        """A wait for any of the run's child runs to end."""
        return cls(WaitKind.CHILDREN)

    def column(self) -> str:
        """The text the log stores in ``runs.waiting_for`` (indexed and compared whole)."""
        return f"{self.kind.value}:{self.name}" if self.kind is WaitKind.SIGNAL else self.kind.value

    @classmethod
    def from_column(cls, text: str | None) -> WaitFor | None:
        """The inverse of :meth:`column`; ``None`` for a run that waits for nothing."""
        if text is None:
            return None
        kind, _, name = text.partition(":")
        return cls(WaitKind(kind), name if kind == WaitKind.SIGNAL else None)

    def describe(self) -> str:
        """A phrase for people: ``the signal 'approve'``, ``its child runs``."""
        if self.kind is WaitKind.SIGNAL:
            return f"the signal {self.name!r}"
        return "its child runs"


class SuspendReason(enum.StrEnum):
    """Why an execution handed its lease back without ending the run."""

    SLEEP = "sleep"
    """``durable.sleep``: due again at a time."""
    SIGNAL = "signal"
    """``durable.wait_signal``: due when the signal arrives or the timeout passes."""
    CHILD = "child"
    """Waiting for a child run to end."""
    RETRY = "retry"
    """A step or the workflow failed and is retried after a backoff."""
    RELEASED = "released"
    """The worker is stopping: the run is runnable again at once by any worker."""

    @property
    def status(self) -> Status:
        """The status the run takes: ``PENDING`` when released, else ``SLEEPING``."""
        return Status.PENDING if self is SuspendReason.RELEASED else Status.SLEEPING


class AbortReason(enum.StrEnum):
    """Why a worker stopped executing a run at once, writing nothing more for it."""

    LEASE_LOST = "lease lost"
    """Another worker holds the run now (the epoch moved on), or it ended elsewhere."""
    APPEND_LOST = "an append was lost"
    """An append's outcome could not be confirmed; the run is left to be resumed."""
    LOG_FAILED = "the log failed"
    """The log refused an append for a reason that retries did not cure."""
    CANCELLED = "cancelled"
    """The run was cancelled (``client.cancel``) while this process executed it."""
    DEADLINE = "deadline"
    """The workflow's timeout passed: the run is ended ``FAILED`` with a ``TimeoutError``."""
    WORKER_STOPPING = "worker stopping"
    """The worker is shutting down and its drain time is up."""
    KILLED = "killed"
    """The worker was killed (tests simulate a crash this way)."""
