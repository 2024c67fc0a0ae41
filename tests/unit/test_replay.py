"""``durable.engine.replay``: the journal cursor, on hand-made journal rows (no I/O)."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from durable.engine.replay import Journal
from durable.errors import CorruptJournalError, NonDeterminismError
from durable.events import (
    ChildData,
    EmptyData,
    ErrorInfo,
    Failure,
    LeaseData,
    MessageData,
    OutputData,
    ProgressData,
    ResultData,
    RunStartedData,
    SignalData,
    StageData,
    StepStartedData,
    WakeData,
    encode_data,
)
from durable.log.store import JournalRow

RUN = "run-1"


def raw(value: Any) -> msgspec.Raw:
    return msgspec.Raw(msgspec.msgpack.encode(value))


class Builder:
    """Journal rows with gapless seqs, in the order they are added."""

    def __init__(self) -> None:
        self.rows: list[JournalRow] = []
        self.add("run_started", RunStartedData(input=raw([[], {}]), workflow="wf"))

    def add(
        self,
        type_: str,
        data: msgspec.Struct | bytes,
        position: int | None = None,
        name: str | None = None,
        attempt: int | None = None,
    ) -> Builder:
        payload = data if isinstance(data, bytes) else encode_data(data)
        seq = len(self.rows) + 1
        self.rows.append(JournalRow(RUN, seq, type_, position, name, attempt, 1, 0.0, payload))
        return self

    def step(self, pos: int, name: str, value: Any, attempt: int = 1) -> Builder:
        self.add("step_started", StepStartedData(), pos, name, attempt)
        return self.add("step_completed", ResultData(result=raw(value)), pos, name, attempt)

    def fail(
        self, pos: int, name: str, retryable: bool, attempt: int = 1, wake_at: float = 0.0
    ) -> Builder:
        err = ErrorInfo(type="ValueError", message=f"bad {pos}")
        self.add("step_started", StepStartedData(), pos, name, attempt)
        self.add("step_failed", Failure(error=err, retryable=retryable), pos, name, attempt)
        if retryable:
            self.add("retry_scheduled", WakeData(wake_at=wake_at, error=err), pos, name, attempt)
        return self

    def journal(self) -> Journal:
        return Journal(RUN, self.rows)


def decode(b: bytes | None) -> Any:
    assert b is not None
    return msgspec.msgpack.decode(b)


# ---------------------------------------------------------------------------- take


def test_an_empty_journal_has_nothing_at_any_position() -> None:
    j = Builder().journal()
    assert j.last_seq == 1
    assert j.take(1, "step", "a") is None
    assert j.take(99, "sleep", None) is None
    assert j.unconsumed(0) == []
    assert j.pending_children() == []


def test_take_returns_a_completed_step() -> None:
    j = Builder().step(1, "a", 41).step(2, "b", {"x": [1, 2]}).journal()
    s1 = j.take(1, "step", "a")
    assert s1 is not None and s1.completed and s1.kind == "step" and s1.name == "a"
    assert decode(s1.result) == 41
    s2 = j.take(2, "step", "b")
    assert s2 is not None and decode(s2.result) == {"x": [1, 2]}
    assert s2.failure is None and s2.failed_attempts == 0
    assert j.take(3, "step", "c") is None


def test_take_with_another_name_is_nondeterminism() -> None:
    j = Builder().step(1, "a", 1).journal()
    with pytest.raises(NonDeterminismError) as info:
        j.take(1, "step", "b")
    msg = str(info.value)
    assert RUN in msg and "position 1" in msg and "'a'" in msg and "'b'" in msg


@pytest.mark.parametrize("kind", ["sleep", "value", "child", "wait"])
def test_take_with_another_kind_is_nondeterminism(kind: str) -> None:
    j = Builder().step(1, "a", 1).journal()
    with pytest.raises(NonDeterminismError):
        j.take(1, kind, "a")


def test_value_slots_are_named_by_kind_of_value() -> None:
    j = (
        Builder()
        .add("value_recorded", ResultData(result=raw(0.25)), 1, "random")
        .add("value_recorded", ResultData(result=raw("u")), 2, "uuid4")
        .journal()
    )
    s = j.take(1, "value", "random")
    assert s is not None and s.completed and decode(s.result) == 0.25
    with pytest.raises(NonDeterminismError):
        j.take(2, "value", "now")


def test_retryable_failures_are_counted_and_a_retry_is_scheduled() -> None:
    j = Builder().fail(1, "a", True, 1, wake_at=10.0).fail(1, "a", True, 2, wake_at=20.0).journal()
    s = j.take(1, "step", "a")
    assert s is not None
    assert not s.completed and s.failure is None
    assert s.failed_attempts == 2
    assert s.retry_wake_at == 20.0
    assert not s.done
    assert j.unconsumed(0) == []


def test_a_completion_after_retries_clears_the_scheduled_retry() -> None:
    j = Builder().fail(1, "a", True, 1, wake_at=10.0).step(1, "a", 7, attempt=2).journal()
    s = j.take(1, "step", "a")
    assert s is not None and s.completed and s.retry_wake_at is None
    assert s.failed_attempts == 1
    assert decode(s.result) == 7


def test_a_permanent_failure_is_kept_with_its_error() -> None:
    j = Builder().fail(1, "a", False).journal()
    s = j.take(1, "step", "a")
    assert s is not None and s.failure == ErrorInfo(type="ValueError", message="bad 1")
    assert not s.completed and not s.done


def test_sleep_started_then_fired() -> None:
    b = Builder().add("sleep_started", WakeData(wake_at=123.5), 1)
    s = b.journal().take(1, "sleep", None)
    assert s is not None and s.started and s.wake_at == 123.5 and not s.fired and not s.done
    s = b.add("sleep_fired", EmptyData(), 1).journal().take(1, "sleep", None)
    assert s is not None and s.fired and s.done


def test_signal_wait_received_or_timed_out() -> None:
    j = (
        Builder()
        .add("wait_started", WakeData(wake_at=None), 1, "go")
        .add("signal_received", SignalData(payload=raw({"n": 1}), signal_id=4), 1, "go")
        .add("wait_started", WakeData(wake_at=5.0), 2, "go")
        .add("signal_received", SignalData(timed_out=True), 2, "go")
        .journal()
    )
    s1 = j.take(1, "wait", "go")
    assert s1 is not None and s1.received and not s1.timed_out and decode(s1.payload) == {"n": 1}
    s2 = j.take(2, "wait", "go")
    assert s2 is not None and s2.received and s2.timed_out and s2.payload is None
    assert s2.wake_at == 5.0
    with pytest.raises(NonDeterminismError):
        j.take(1, "wait", "other")


def test_children_pending_until_their_end_is_journaled() -> None:
    err = ErrorInfo(type="RuntimeError", message="child broke")
    j = (
        Builder()
        .add("child_started", ChildData(child_id=f"{RUN}:1"), 1, "kid")
        .add("child_started", ChildData(child_id=f"{RUN}:2"), 2, "kid")
        .add("child_started", ChildData(child_id=f"{RUN}:3"), 3, "kid")
        .add("child_completed", ResultData(result=raw(5)), 2, "kid")
        .add("child_failed", Failure(error=err), 3, "kid")
        .journal()
    )
    assert j.pending_children() == [f"{RUN}:1"]
    s1 = j.take(1, "child", "kid")
    assert s1 is not None and s1.child_id == f"{RUN}:1" and s1.done and not s1.completed
    s2 = j.take(2, "child", "kid")
    assert s2 is not None and s2.completed and decode(s2.result) == 5
    s3 = j.take(3, "child", "kid")
    assert s3 is not None and s3.failure == err
    with pytest.raises(NonDeterminismError):
        j.take(1, "child", "other_kid")


# ---------------------------------------------------------------------------- keys


def test_keyed_events_are_collected_and_hold_no_position() -> None:
    j = (
        Builder()
        .add("stage_entered", StageData(key="stage_entered|w|s|1"), None, "s")
        .add("progress", ProgressData(value=0.5, key="progress|w|s|1"))
        .add("message", MessageData(key="message|w||1", text="hi"))
        .add("output", OutputData(value=raw(1), stage="main", key="output|w|k|1"), None, "k")
        .add("stage_left", StageData(key="stage_left|w|s|1"), None, "s")
        .add("message", MessageData(text="no key"))
        .journal()
    )
    assert j.keys == {
        "stage_entered|w|s|1",
        "progress|w|s|1",
        "message|w||1",
        "output|w|k|1",
        "stage_left|w|s|1",
    }
    assert j.slots == {}


def test_run_level_events_are_ignored() -> None:
    j = (
        Builder()
        .add("lease_taken", LeaseData(owner="w1"))
        .step(1, "a", 1)
        .add("run_suspended", b"\x80")
        .add("lease_taken", LeaseData(owner="w2", takeover=True))
        .journal()
    )
    assert list(j.slots) == [1]
    assert j.last_seq == 6


# ---------------------------------------------------------------------------- voiding


def test_run_resumed_voids_the_failure_after_the_last_success() -> None:
    j = (
        Builder()
        .step(1, "a", 1)
        .fail(2, "b", False)
        .add("run_failed", Failure(error=ErrorInfo(type="ValueError", message="bad 2")))
        .add("run_resumed", EmptyData(), attempt=2)
        .journal()
    )
    s = j.take(2, "step", "b")
    assert s is not None
    assert s.failure is None and s.failed_attempts == 0 and s.retry_wake_at is None
    assert not s.done
    one = j.take(1, "step", "a")
    assert one is not None and one.completed  # successes are never voided


def test_voiding_resets_retry_counts_of_a_step_that_ran_out_of_tries() -> None:
    j = (
        Builder()
        .fail(1, "a", True, 1, wake_at=3.0)
        .fail(1, "a", True, 2, wake_at=4.0)
        .fail(1, "a", False, 3)
        .add("run_failed", Failure(error=ErrorInfo(type="ValueError", message="bad 1")))
        .add("run_resumed", EmptyData(), attempt=2)
        .journal()
    )
    s = j.take(1, "step", "a")
    assert s is not None and s.failure is None and s.failed_attempts == 0
    assert s.retry_wake_at is None


def test_a_caught_failure_before_a_later_success_is_not_voided() -> None:
    """The workflow caught the failure at 2 and went on: replay must raise it again."""
    j = (
        Builder()
        .fail(2, "b", False)
        .step(3, "c", 3)
        .fail(4, "d", False)
        .add("run_resumed", EmptyData(), attempt=2)
        .journal()
    )
    kept = j.take(2, "step", "b")
    assert kept is not None and kept.failure is not None
    voided = j.take(4, "step", "d")
    assert voided is not None and voided.failure is None


def test_run_retry_scheduled_voids_like_a_resume() -> None:
    j = (
        Builder()
        .step(1, "a", 1)
        .fail(2, "b", False)
        .add("run_retry_scheduled", WakeData(wake_at=9.0), attempt=2)
        .journal()
    )
    s = j.take(2, "step", "b")
    assert s is not None and s.failure is None


def test_failures_recorded_after_the_void_stay() -> None:
    j = (
        Builder()
        .fail(1, "a", False)
        .add("run_resumed", EmptyData(), attempt=2)
        .fail(1, "a", False)
        .journal()
    )
    s = j.take(1, "step", "a")
    assert s is not None and s.failure is not None


def test_a_sleep_or_value_counts_as_the_last_success() -> None:
    j = (
        Builder()
        .fail(1, "a", False)
        .add("sleep_started", WakeData(wake_at=1.0), 2)
        .add("sleep_fired", EmptyData(), 2)
        .fail(3, "b", False)
        .add("value_recorded", ResultData(result=raw(0.5)), 4, "random")
        .fail(5, "c", False)
        .add("run_resumed", EmptyData(), attempt=2)
        .journal()
    )
    assert j.slots[1].failure is not None
    assert j.slots[3].failure is not None
    assert j.slots[5].failure is None


# ---------------------------------------------------------------------------- unconsumed


def test_unconsumed_lists_outcomes_beyond_a_position() -> None:
    j = (
        Builder()
        .step(1, "a", 1)
        .add("value_recorded", ResultData(result=raw(0.1)), 2, "random")
        .add("sleep_started", WakeData(wake_at=1.0), 3)
        .add("sleep_fired", EmptyData(), 3)
        .add("sleep_started", WakeData(wake_at=1.0), 4)
        .journal()
    )
    assert [s.position for s in j.unconsumed(0)] == [1, 2, 3]
    assert [s.position for s in j.unconsumed(1)] == [2, 3]
    assert j.unconsumed(3) == []  # a sleep that only started is not an outcome


def test_unconsumed_is_in_position_order() -> None:
    j = Builder().step(3, "c", 3).step(2, "b", 2).step(5, "e", 5).journal()
    assert [s.position for s in j.unconsumed(1)] == [2, 3, 5]


def test_extend_adds_later_rows() -> None:
    b = Builder().step(1, "a", 1)
    j = b.journal()
    n = len(b.rows)
    b.step(2, "b", 2)
    j.extend(b.rows[n:])
    assert j.last_seq == len(b.rows)
    s = j.take(2, "step", "b")
    assert s is not None and s.completed


# ---------------------------------------------------------------------------- corruption


def test_a_seq_gap_is_corrupt() -> None:
    b = Builder().step(1, "a", 1).step(2, "b", 2)
    rows = b.rows[:2] + b.rows[3:]
    with pytest.raises(CorruptJournalError, match="seq jumps"):
        Journal(RUN, rows)


def test_a_journal_not_starting_at_seq_1_is_corrupt() -> None:
    b = Builder().step(1, "a", 1)
    with pytest.raises(CorruptJournalError):
        Journal(RUN, b.rows[1:])


def test_a_duplicated_seq_is_corrupt() -> None:
    b = Builder().step(1, "a", 1)
    with pytest.raises(CorruptJournalError):
        Journal(RUN, [*b.rows, b.rows[-1]])


def test_extend_checks_seq_too() -> None:
    b = Builder().step(1, "a", 1)
    j = b.journal()
    b.step(2, "b", 2)
    with pytest.raises(CorruptJournalError):
        j.extend(b.rows[-1:])


@pytest.mark.parametrize(
    "type_",
    ["step_completed", "step_failed", "retry_scheduled", "sleep_started", "signal_received"],
)
@pytest.mark.parametrize("payload", [b"", b"\xc1", b"\x93\x01\x02", b"\xa3abc"])
def test_undecodable_positional_data_is_corrupt(type_: str, payload: bytes) -> None:
    b = Builder().add(type_, payload, 1, "a")
    with pytest.raises(CorruptJournalError, match="seq 2"):
        b.journal()


@pytest.mark.parametrize("type_", ["stage_entered", "progress", "message", "output"])
def test_undecodable_keyed_data_is_corrupt(type_: str) -> None:
    with pytest.raises(CorruptJournalError):
        Builder().add(type_, b"\xc1").journal()


def test_a_payload_of_the_wrong_shape_is_corrupt() -> None:
    # A valid MessagePack map, but a ResultData without its ``result``.
    with pytest.raises(CorruptJournalError):
        Builder().add("step_completed", msgspec.msgpack.encode({"stage": "x"}), 1, "a").journal()


def test_an_unknown_event_type_is_corrupt() -> None:
    with pytest.raises(CorruptJournalError, match="unknown event type"):
        Builder().add("step_teleported", b"\x80", 1, "a").journal()


def test_two_kinds_at_one_position_are_corrupt() -> None:
    b = Builder().step(1, "a", 1).add("sleep_started", WakeData(wake_at=1.0), 1)
    with pytest.raises(CorruptJournalError, match="position 1"):
        b.journal()


def test_two_names_at_one_position_are_corrupt() -> None:
    b = Builder()
    b.add("step_started", StepStartedData(), 1, "a", 1)
    b.add("step_completed", ResultData(result=raw(1)), 1, "b", 1)
    with pytest.raises(CorruptJournalError):
        b.journal()


def test_corrupt_error_is_a_durable_error() -> None:
    import durable

    assert issubclass(CorruptJournalError, durable.DurableError)
    assert issubclass(NonDeterminismError, durable.DurableError)
