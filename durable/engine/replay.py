"""The journal cursor: what a run's journal records at each position. Pure, no I/O.

On each journaled call the engine asks :meth:`Journal.take` for the slot at the call's
position, naming the kind of call and its name; a slot of another kind or name means the code
has changed under the run (:class:`NonDeterminismError`).

A ``run_resumed`` or ``run_retry_scheduled`` event *voids* the permanent failures recorded
after the last successful position before it, so that a resumed (or retried) run tries those
calls again instead of replaying their failure.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import msgspec

from durable.errors import CorruptJournalError, NonDeterminismError
from durable.events import POSITIONAL_KIND, CallKind, ErrorInfo, decode_data
from durable.events import EventType as T
from durable.log.store import JournalRow

__all__ = ["HINT", "Journal", "Slot", "describe"]

HINT = (
    "Workflow code must make the same calls in the same order on every replay: if it "
    "branches on the time or on randomness, use durable.now(), durable.random() or "
    "durable.uuid4() (their values are journaled) instead of time, random or uuid, and "
    "leave other changing inputs to steps."
)
"""The sentence that ends every mismatch between the code and its journal."""


def describe(kind: CallKind, name: str | None) -> str:
    """A journaled call in words: ``step 'charge'``, ``sleep``."""
    return str(kind) if name is None else f"{kind} {name!r}"


_KEYED = {T.STAGE_ENTERED, T.STAGE_LEFT, T.PROGRESS, T.MESSAGE, T.OUTPUT}
_SUCCESS = {T.STEP_COMPLETED, T.SLEEP_FIRED, T.SIGNAL_RECEIVED, T.CHILD_COMPLETED}
_SUCCESS |= {T.VALUE_RECORDED, T.CHILD_STARTED, T.PATCH_MARKED, T.FIRST_FINISHED}


@dataclass(slots=True)
class Slot:
    """Everything the journal records for one position."""

    position: int
    kind: CallKind
    name: str | None
    result: bytes | None = None
    """The encoded result (step, child, recorded value) once completed."""
    completed: bool = False
    failure: ErrorInfo | None = None
    """A permanent failure that was not voided."""
    failed_attempts: int = 0
    """Failed tries since the last void."""
    retry_wake_at: float | None = None
    """When the next try is due, if a retry is scheduled and not yet tried."""
    wake_at: float | None = None
    """Sleep: when it ends. Wait: the signal's deadline."""
    started: bool = False
    """Sleep or wait: its start is recorded."""
    fired: bool = False
    """Sleep: it has ended."""
    received: bool = False
    """Wait: a signal (or the timeout) is recorded."""
    timed_out: bool = False
    payload: bytes | None = None
    child_id: str | None = None
    winner: str | None = None
    """``wait_first``: the run id of the child recorded as the first to finish."""
    winner_index: int = 0
    """``wait_first``: its index in the list the code gave."""

    @property
    def done(self) -> bool:
        """Whether an outcome that a later replay must consume is recorded."""
        return (
            self.completed
            or self.fired
            or self.received
            or self.child_id is not None
            or self.winner is not None
        )


def _decode(row: JournalRow) -> object:
    try:
        return decode_data(row.type, row.data)
    except (msgspec.DecodeError, msgspec.ValidationError, KeyError, TypeError) as exc:
        raise CorruptJournalError(
            f"run {row.run_id!r}: journal row seq {row.seq} ({row.type}) cannot be decoded: {exc}"
        ) from exc


class Journal:
    """A run's journal indexed by position, with the keys of its non-positional events."""

    __slots__ = ("keys", "last_seq", "max_position", "run_id", "slots")

    def __init__(self, run_id: str, rows: Sequence[JournalRow]) -> None:
        self.run_id = run_id
        self.slots: dict[int, Slot] = {}
        self.keys: set[str] = set()
        self.last_seq = 0
        self.max_position = 0
        """The highest position the journal records anything at (0: none)."""
        for row in rows:
            self._add(row)

    @classmethod
    def first_lease(cls, run_id: str, last_seq: int) -> Journal:
        """The journal of a run at its first lease: ``run_started`` and ``lease_taken``,
        nothing to replay (known without reading it)."""
        journal = cls(run_id, [])
        journal.last_seq = last_seq
        return journal

    def _add(self, row: JournalRow) -> None:
        if row.seq != self.last_seq + 1:
            raise CorruptJournalError(
                f"run {self.run_id!r}: journal seq jumps from {self.last_seq} to {row.seq}"
            )
        self.last_seq = row.seq
        t = row.type
        if t in _KEYED:
            key = getattr(_decode(row), "key", None)
            if key:
                self.keys.add(key)
            return
        if t in (T.RUN_RESUMED, T.RUN_RETRY_SCHEDULED):
            self._void()
            return
        kind = POSITIONAL_KIND.get(t)
        if kind is None or row.position is None:
            if t not in T._value2member_map_:
                raise CorruptJournalError(
                    f"run {self.run_id!r}: unknown event type {t!r} at seq {row.seq}"
                )
            return
        data = _decode(row)
        slot = self.slots.get(row.position)
        if slot is None:
            slot = self.slots[row.position] = Slot(row.position, kind, row.name)
            self.max_position = max(self.max_position, row.position)
        elif slot.kind != kind or slot.name != row.name:
            raise CorruptJournalError(
                f"run {self.run_id!r}: position {row.position} holds both "
                f"{slot.kind} {slot.name!r} and {kind} {row.name!r}"
            )
        self._apply(slot, t, data)

    @staticmethod
    def _apply(slot: Slot, t: str, data: object) -> None:
        if t in (T.STEP_COMPLETED, T.CHILD_COMPLETED, T.VALUE_RECORDED):
            slot.result = bytes(data.result)  # type: ignore[attr-defined]
            slot.completed = True
            slot.retry_wake_at = None
        elif t in (T.STEP_FAILED, T.CHILD_FAILED):
            if data.retryable:  # type: ignore[attr-defined]
                slot.failed_attempts += 1
            else:
                slot.failure = data.error  # type: ignore[attr-defined]
        elif t == T.RETRY_SCHEDULED:
            slot.retry_wake_at = data.wake_at  # type: ignore[attr-defined]
        elif t in (T.SLEEP_STARTED, T.WAIT_STARTED):
            slot.started = True
            slot.wake_at = data.wake_at  # type: ignore[attr-defined]
        elif t == T.SLEEP_FIRED:
            slot.fired = True
        elif t == T.SIGNAL_RECEIVED:
            slot.received = True
            slot.timed_out = data.timed_out  # type: ignore[attr-defined]
            p = data.payload  # type: ignore[attr-defined]
            slot.payload = bytes(p) if p is not None else None
        elif t == T.CHILD_STARTED:
            slot.child_id = data.child_id  # type: ignore[attr-defined]
        elif t == T.PATCH_MARKED:
            slot.completed = True
        elif t == T.FIRST_FINISHED:
            slot.winner = data.child_id  # type: ignore[attr-defined]
            slot.winner_index = data.index  # type: ignore[attr-defined]

    def _void(self) -> None:
        good = [p for p, s in self.slots.items() if s.done and s.failure is None]
        last_good = max(good, default=0)
        for p, s in self.slots.items():
            if p > last_good and s.failure is not None:
                s.failure = None
                s.failed_attempts = 0
                s.retry_wake_at = None

    def take(self, position: int, kind: CallKind, name: str | None) -> Slot | None:
        """The slot at ``position`` for a call of ``kind`` and ``name``, or ``None``.

        Raises:
            NonDeterminismError: the journal records another kind or name there.
        """
        slot = self.slots.get(position)
        if slot is None:
            return None
        if slot.kind != kind or slot.name != name:
            called, recorded = describe(kind, name), describe(slot.kind, slot.name)
            raise NonDeterminismError(
                f"run {self.run_id!r} at position {position}: the code calls {called} "
                f"but the journal records {recorded}. {HINT}",
                position=position,
                called=called,
                recorded=recorded,
            )
        return slot

    def unconsumed(self, consumed_up_to: int) -> list[Slot]:
        """Slots with a recorded outcome beyond ``consumed_up_to`` (a workflow that returns
        while these remain no longer matches its journal)."""
        return [s for p, s in sorted(self.slots.items()) if p > consumed_up_to and s.done]

    def pending_children(self) -> list[str]:
        """Child runs started but whose end is not journaled yet."""
        return [
            s.child_id
            for s in self.slots.values()
            if s.child_id is not None and not s.completed and s.failure is None
        ]

    def extend(self, rows: Iterable[JournalRow]) -> None:
        """Add rows appended after the journal was read."""
        for row in rows:
            self._add(row)
