"""Every kind of journal event, in one place.

A journal row has columns (type, position, name, attempt, epoch, at) and a ``data`` payload.
The payload of each type is a msgspec Struct below; user values inside it (step results,
inputs, signal payloads) are kept as already-encoded :class:`msgspec.Raw` so that they can be
decoded later into the annotated type of the code that reads them.
"""

from __future__ import annotations

import enum
from typing import Any

import msgspec

from durable.states import SuspendReason, WaitFor

__all__ = [
    "OUTCOME_KIND",
    "POSITIONAL_KIND",
    "BlockedData",
    "CallKind",
    "CancelData",
    "ChildData",
    "EmptyData",
    "ErrorInfo",
    "EventType",
    "Failure",
    "FirstData",
    "LeaseData",
    "MessageData",
    "NewEvent",
    "OutputData",
    "ProgressData",
    "ProgressScope",
    "ResultData",
    "RunStartedData",
    "SignalData",
    "StageData",
    "StepStartedData",
    "SuspendData",
    "UnblockedData",
    "WakeData",
    "decode_data",
    "encode_data",
]


class EventType(enum.StrEnum):
    """The ``type`` column of a journal row."""

    RUN_STARTED = "run_started"
    RUN_COMPLETED = "run_completed"
    RUN_FAILED = "run_failed"
    RUN_CANCELLED = "run_cancelled"
    RUN_RESUMED = "run_resumed"
    RUN_SUSPENDED = "run_suspended"
    RUN_RETRY_SCHEDULED = "run_retry_scheduled"
    LEASE_TAKEN = "lease_taken"
    STAGE_ENTERED = "stage_entered"
    STAGE_LEFT = "stage_left"
    STEP_STARTED = "step_started"
    STEP_COMPLETED = "step_completed"
    STEP_FAILED = "step_failed"
    RETRY_SCHEDULED = "retry_scheduled"
    PROGRESS = "progress"
    MESSAGE = "message"
    OUTPUT = "output"
    SLEEP_STARTED = "sleep_started"
    SLEEP_FIRED = "sleep_fired"
    WAIT_STARTED = "wait_started"
    SIGNAL_RECEIVED = "signal_received"
    CHILD_STARTED = "child_started"
    CHILD_COMPLETED = "child_completed"
    CHILD_FAILED = "child_failed"
    VALUE_RECORDED = "value_recorded"
    PATCH_MARKED = "patch_marked"
    FIRST_FINISHED = "first_finished"
    RUN_BLOCKED = "run_blocked"
    RUN_UNBLOCKED = "run_unblocked"


T = EventType


class CallKind(enum.StrEnum):
    """The kind of journaled call a positional event belongs to.

    All members but ``CHILD_START`` and ``CHILD_END`` name the calls a workflow makes
    (compared on replay); those two name the two outcomes of a child call (the start, and
    the end that ``result()`` records at the same position). The log stores an outcome's
    kind as the text of its ``outcome`` column: the values never change.
    """

    STEP = "step"
    SLEEP = "sleep"
    WAIT = "wait"
    CHILD = "child"
    VALUE = "value"
    PATCH = "patch"
    CHILD_START = "child_start"
    CHILD_END = "child_end"
    WAIT_FIRST = "wait_first"


K = CallKind

POSITIONAL_KIND: dict[str, CallKind] = {
    T.STEP_STARTED: K.STEP,
    T.STEP_COMPLETED: K.STEP,
    T.STEP_FAILED: K.STEP,
    T.RETRY_SCHEDULED: K.STEP,
    T.SLEEP_STARTED: K.SLEEP,
    T.SLEEP_FIRED: K.SLEEP,
    T.WAIT_STARTED: K.WAIT,
    T.SIGNAL_RECEIVED: K.WAIT,
    T.CHILD_STARTED: K.CHILD,
    T.CHILD_COMPLETED: K.CHILD,
    T.CHILD_FAILED: K.CHILD,
    T.VALUE_RECORDED: K.VALUE,
    T.PATCH_MARKED: K.PATCH,
    T.FIRST_FINISHED: K.WAIT_FIRST,
}
"""The kind of journaled call a positional event belongs to (compared on replay)."""

OUTCOME_KIND: dict[str, CallKind] = {
    T.STEP_COMPLETED: K.STEP,
    T.SLEEP_FIRED: K.SLEEP,
    T.SIGNAL_RECEIVED: K.WAIT,
    T.CHILD_STARTED: K.CHILD_START,
    T.CHILD_COMPLETED: K.CHILD_END,
    T.VALUE_RECORDED: K.VALUE,
    T.PATCH_MARKED: K.PATCH,
    T.FIRST_FINISHED: K.WAIT_FIRST,
}
"""Outcome events: at most one per (run, position, kind), enforced by a unique index."""


class ErrorInfo(msgspec.Struct, frozen=True, omit_defaults=True):
    """An exception as recorded: never a pickled object."""

    type: str
    message: str
    module: str = "builtins"
    traceback: str | None = None
    permanent: bool = False
    """Raised as ``PermanentError(...) from cause``: type, module and message are the
    cause's; replay raises a ``PermanentError`` from the rebuilt cause."""


class RunStartedData(msgspec.Struct, frozen=True, omit_defaults=True):
    """``run_started``: where the run came from.

    The run's input is kept in its row (``RunRow.input``), the one source of truth; journals
    written by earlier versions also carry a copy here (``input``), which nothing reads."""

    workflow: str
    input: msgspec.Raw | None = None
    parent_id: str | None = None
    forked_from: str | None = None


class ResultData(msgspec.Struct, frozen=True, omit_defaults=True):
    """``step_completed``, ``child_completed``, ``run_completed``, ``value_recorded``."""

    result: msgspec.Raw
    stage: str | None = None
    started_at: float | None = None


class Failure(msgspec.Struct, frozen=True):
    """``step_failed``, ``child_failed``, ``run_failed``: the error and whether it may retry."""

    error: ErrorInfo
    retryable: bool = False
    stage: str | None = None
    started_at: float | None = None


class WakeData(msgspec.Struct, frozen=True, omit_defaults=True):
    """``retry_scheduled``, ``sleep_started``, ``wait_started``, ``run_retry_scheduled``."""

    wake_at: float | None = None
    error: ErrorInfo | None = None


class SuspendData(msgspec.Struct, frozen=True, omit_defaults=True):
    """``run_suspended``: the run hands its lease back until ``wake_at`` or a wake-up."""

    wake_at: float | None = None
    waiting_for: WaitFor | None = None
    reason: SuspendReason = SuspendReason.SLEEP


class _SuspendDataWire(msgspec.Struct, frozen=True):
    """How ``run_suspended`` decodes: journals written before ``WaitFor`` existed hold the
    wait as the text of the runs column (``"signal:NAME"``, ``"children"``)."""

    wake_at: float | None = None
    waiting_for: WaitFor | str | None = None
    reason: SuspendReason = SuspendReason.SLEEP


class SignalData(msgspec.Struct, frozen=True, omit_defaults=True):
    """``signal_received``: the payload consumed, or ``timed_out``."""

    payload: msgspec.Raw | None = None
    timed_out: bool = False
    signal_id: int | None = None


class _SignalDataWire(msgspec.Struct, frozen=True):
    """How ``signal_received`` decodes: msgspec decodes ``Raw | None`` as ``null`` only, so an
    absent payload decodes to an empty ``Raw`` (never a valid encoding), read back as ``None``."""

    payload: msgspec.Raw = msgspec.Raw()
    timed_out: bool = False
    signal_id: int | None = None


class ChildData(msgspec.Struct, frozen=True, omit_defaults=True):
    """``child_started``: the child's run id."""

    child_id: str


class FirstData(msgspec.Struct, frozen=True, omit_defaults=True):
    """``first_finished``: which of the children that ``durable.wait_first`` waited for
    finished first: its run id, and its index in the list the code gave."""

    child_id: str
    index: int = 0


class StageData(msgspec.Struct, frozen=True, omit_defaults=True):
    """``stage_entered``, ``stage_left``: ``key`` makes the mark idempotent across replays;
    ``stage`` is the enclosing stage."""

    key: str | None = None
    stage: str | None = None


class MessageData(msgspec.Struct, frozen=True, omit_defaults=True):
    """``message``: a text and optional fields (``durable.message``)."""

    key: str | None = None
    text: str | None = None
    fields: dict[str, Any] | None = None
    stage: str | None = None


class StepStartedData(msgspec.Struct, frozen=True, omit_defaults=True):
    """``step_started``: an attempt of a step begins, inside ``stage``, called with ``args``
    (the encoded ``(positional, keyword)`` arguments; absent in journals written before
    arguments were recorded)."""

    stage: str | None = None
    args: msgspec.Raw | None = None


class _StepStartedDataWire(msgspec.Struct, frozen=True):
    """How ``step_started`` decodes: msgspec decodes ``Raw | None`` as ``null`` only, so the
    arguments decode as a ``Raw`` that is empty when absent (never a valid encoding)."""

    stage: str | None = None
    args: msgspec.Raw = msgspec.Raw()


class LeaseData(msgspec.Struct, frozen=True, omit_defaults=True):
    """``lease_taken``: which worker took the run, and whether it took it over from another."""

    owner: str | None = None
    takeover: bool = False


class CancelData(msgspec.Struct, frozen=True, omit_defaults=True):
    """``run_cancelled``: why the run was ended outside its lease."""

    text: str | None = None


class BlockedData(msgspec.Struct, frozen=True, omit_defaults=True):
    """``run_blocked``: the code cannot replay the run's journal; the run is parked.

    ``position`` is where the code and the journal part (``None`` when no position is at
    fault), ``called`` what the code called there (``"step 'charge'"``), ``recorded`` what
    the journal holds there, ``version`` the code version of the worker that parked it, and
    ``tried`` every version that could not replay the run since it last suspended (this
    one last): none of them takes it up again by itself."""

    error: ErrorInfo
    position: int | None = None
    called: str | None = None
    recorded: str | None = None
    version: str | None = None
    tried: tuple[str, ...] = ()


class UnblockedData(msgspec.Struct, frozen=True, omit_defaults=True):
    """``run_unblocked``: a blocked run is due again, taken up by a worker of code
    ``version`` (``None``: by ``client.resume``)."""

    version: str | None = None


class EmptyData(msgspec.Struct, frozen=True):
    """``run_resumed``, ``sleep_fired``, ``patch_marked``: events whose columns say everything."""


class ProgressScope(enum.StrEnum):
    """What a ``progress`` event measures: the current step, else stage, else the run."""

    STEP = "step"
    STAGE = "stage"
    RUN = "run"


class ProgressData(msgspec.Struct, frozen=True, omit_defaults=True):
    """``progress``: a value from 0.0 to 1.0 for a scope (run, stage or step)."""

    value: float
    scope: ProgressScope = ProgressScope.RUN
    key: str | None = None
    stage: str | None = None


class OutputData(msgspec.Struct, frozen=True, omit_defaults=True):
    """``output``: a named value under a stage, and under a step call when a step's body
    wrote it (``step``: that call's position; absent in workflow code and in journals
    written before step nodes existed)."""

    value: msgspec.Raw
    stage: str
    key: str | None = None
    step: int | None = None


_PAYLOAD: dict[str, type[msgspec.Struct]] = {
    T.RUN_STARTED: RunStartedData,
    T.RUN_COMPLETED: ResultData,
    T.RUN_FAILED: Failure,
    T.RUN_CANCELLED: CancelData,
    T.RUN_RESUMED: EmptyData,
    T.RUN_SUSPENDED: SuspendData,
    T.RUN_RETRY_SCHEDULED: WakeData,
    T.LEASE_TAKEN: LeaseData,
    T.STAGE_ENTERED: StageData,
    T.STAGE_LEFT: StageData,
    T.STEP_STARTED: StepStartedData,
    T.STEP_COMPLETED: ResultData,
    T.STEP_FAILED: Failure,
    T.RETRY_SCHEDULED: WakeData,
    T.PROGRESS: ProgressData,
    T.MESSAGE: MessageData,
    T.OUTPUT: OutputData,
    T.SLEEP_STARTED: WakeData,
    T.SLEEP_FIRED: EmptyData,
    T.WAIT_STARTED: WakeData,
    T.SIGNAL_RECEIVED: SignalData,
    T.CHILD_STARTED: ChildData,
    T.CHILD_COMPLETED: ResultData,
    T.CHILD_FAILED: Failure,
    T.VALUE_RECORDED: ResultData,
    T.PATCH_MARKED: EmptyData,
    T.FIRST_FINISHED: FirstData,
    T.RUN_BLOCKED: BlockedData,
    T.RUN_UNBLOCKED: UnblockedData,
}

_encoder = msgspec.msgpack.Encoder()
_decoders = {t: msgspec.msgpack.Decoder(cls) for t, cls in _PAYLOAD.items()}
_signal_decoder = msgspec.msgpack.Decoder(_SignalDataWire)
_suspend_decoder = msgspec.msgpack.Decoder(_SuspendDataWire)
_step_started_decoder = msgspec.msgpack.Decoder(_StepStartedDataWire)


class NewEvent(msgspec.Struct, frozen=True):
    """An event to append: the log assigns ``seq``, ``epoch`` and ``at``."""

    type: EventType
    data: msgspec.Struct
    position: int | None = None
    name: str | None = None
    attempt: int | None = None


def encode_data(data: msgspec.Struct) -> bytes:
    """Encode an event payload to the bytes of the ``data`` column."""
    return _encoder.encode(data)


def decode_data(type_: str, data: bytes) -> Any:
    """Decode a ``data`` column into the payload Struct of its event type.

    Raises:
        msgspec.DecodeError, msgspec.ValidationError, KeyError: on a corrupt row; callers in
        the log turn these into ``CorruptJournalError``.
    """
    if type_ == T.SIGNAL_RECEIVED:
        w = _signal_decoder.decode(data)
        return SignalData(w.payload if len(w.payload) else None, w.timed_out, w.signal_id)
    if type_ == T.STEP_STARTED:
        st = _step_started_decoder.decode(data)
        return StepStartedData(st.stage, st.args if len(st.args) else None)
    if type_ == T.RUN_SUSPENDED:
        sw = _suspend_decoder.decode(data)
        wait = sw.waiting_for
        if isinstance(wait, str):
            wait = WaitFor.from_column(wait)
        return SuspendData(sw.wake_at, wait, sw.reason)
    return _decoders[type_].decode(data)
