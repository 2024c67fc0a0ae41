"""The engine's typed vocabulary: journal call kinds, and why a run is aborted."""

from __future__ import annotations

import pytest

from durable.engine.control import Abort, Aborted
from durable.events import OUTCOME_KIND, POSITIONAL_KIND, CallKind, EventType, ProgressScope
from durable.states import AbortReason


def test_call_kinds_keep_the_text_the_log_stores() -> None:
    # The log stores an outcome's kind as the text of its ``outcome`` column, and journals
    # already written hold these values: they never change.
    assert {k.value for k in CallKind} == {
        "step",
        "sleep",
        "wait",
        "child",
        "value",
        "patch",
        "child_start",
        "child_end",
        "wait_first",
    }
    assert OUTCOME_KIND[EventType.CHILD_STARTED] == "child_start"
    assert OUTCOME_KIND[EventType.CHILD_COMPLETED] == "child_end"
    assert OUTCOME_KIND[EventType.PATCH_MARKED] == "patch"
    assert OUTCOME_KIND[EventType.FIRST_FINISHED] == "wait_first"
    assert all(isinstance(k, CallKind) for k in POSITIONAL_KIND.values())
    assert all(isinstance(k, CallKind) for k in OUTCOME_KIND.values())
    assert {k.value for k in ProgressScope} == {"step", "stage", "run"}


def test_an_abort_carries_its_reason_and_the_detail() -> None:
    aborted = Aborted(AbortReason.LOG_FAILED, "disk I/O error")
    exc = Abort(aborted)
    assert exc.aborted.reason is AbortReason.LOG_FAILED
    assert str(exc) == "the log failed: disk I/O error"
    assert str(Aborted(AbortReason.DEADLINE)) == "deadline"
    with pytest.raises(AttributeError):
        aborted.reason = AbortReason.KILLED  # type: ignore[misc]
    assert not isinstance(exc, Exception)  # user code's ``except Exception`` never stops it
