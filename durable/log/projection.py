"""The ``runs`` row as a fold of the journal: what each appended event changes in it.

Besides the status and what the run waits for, the row follows what the run is doing now,
for its progress and time left (``RunInfo.progress``, ``.eta``, ``.stage``, ``.step``):
``stage`` (entered, left), ``step`` (set by ``step_started``, cleared when the step's try ends,
the run hands its lease back or ends), ``steps_completed``, ``progress`` (the run-level value
the workflow reports, 1.0 at completion) and ``step_progress`` (the last value reported below
the run's level: by the step in flight, or by the stage between steps; cleared when a step
starts or ends). Each is a literal in the append's one fenced update: nothing is read.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from durable.events import (
    BlockedData,
    Failure,
    NewEvent,
    ProgressData,
    ProgressScope,
    ResultData,
    SuspendData,
)
from durable.events import EventType as T
from durable.log.schema import runs
from durable.states import Status, WaitFor

__all__ = ["Projection", "assignments", "project", "versions_column"]

_COMPLETED = Status.COMPLETED.value
_FAILED = Status.FAILED.value
_CANCELLED = Status.CANCELLED.value
_BLOCKED = Status.BLOCKED.value


def versions_column(tried: Sequence[str]) -> str:
    """The ``blocked_versions`` text of ``tried``: each version between newlines."""
    return "\n" + "".join(f"{v}\n" for v in tried)


class Projection:
    """Column updates for the ``runs`` row, and what else the append implies."""

    __slots__ = ("ends", "increments", "releases", "values", "waiting_for", "wake_at")

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}
        """Columns set to a value."""
        self.increments: dict[str, int] = {}
        """Columns increased by a number (``steps_completed``, ``lease_epoch``)."""
        self.ends = False
        self.releases = False
        self.waiting_for: WaitFor | None = None
        self.wake_at: float | None = None


def project(events: Sequence[NewEvent], encoded: Sequence[bytes], now: float) -> Projection:
    """Fold ``events`` (with their encoded payloads) onto the ``runs`` columns."""
    p = Projection()
    v = p.values
    completed = 0
    for ev, _raw in zip(events, encoded, strict=True):
        t = ev.type
        if t == T.STEP_STARTED:
            v["step"] = ev.name
            v["step_progress"] = None
        elif t == T.STEP_COMPLETED:
            completed += 1
            v["step"] = None
            v["step_progress"] = None
        elif t == T.STEP_FAILED:
            v["step"] = None
            v["step_progress"] = None
        elif t == T.STAGE_ENTERED:
            v["stage"] = ev.name
        elif t == T.STAGE_LEFT:
            v["stage"] = getattr(ev.data, "stage", None)
        elif t == T.PROGRESS:
            d = ev.data
            if isinstance(d, ProgressData):
                if d.scope == ProgressScope.RUN:
                    v["progress"] = d.value
                else:
                    v["step_progress"] = d.value
        elif t == T.RUN_COMPLETED:
            d = ev.data
            assert isinstance(d, ResultData)
            v.update(status=_COMPLETED, output=bytes(d.result), progress=1.0)
            p.ends = True
        elif t == T.RUN_FAILED:
            d = ev.data
            assert isinstance(d, Failure)
            v.update(status=_FAILED, error_type=d.error.type, error_message=d.error.message[:10000])
            p.ends = True
        elif t == T.RUN_BLOCKED:
            d = ev.data
            assert isinstance(d, BlockedData)
            v.update(
                status=_BLOCKED,
                error_type=d.error.type,
                error_message=d.error.message[:10000],
                blocked_versions=versions_column(d.tried),
                due_at=None,
                wake_at=None,
                waiting_for=None,
                step=None,
                lease_owner=None,
                lease_expires_at=None,
            )
            p.increments["lease_epoch"] = 1
        elif t == T.RUN_CANCELLED:
            v["status"] = _CANCELLED
            p.ends = True
        elif t == T.RUN_RETRY_SCHEDULED:
            v["attempt"] = ev.attempt
        elif t == T.RUN_SUSPENDED:
            d = ev.data
            assert isinstance(d, SuspendData)
            p.releases = True
            v["step"] = None
            v["blocked_versions"] = None  # it replayed: any version may block it anew
            p.wake_at = d.wake_at
            p.waiting_for = d.waiting_for
            v.update(
                status=d.reason.status.value,
                wake_at=d.wake_at,
                due_at=d.wake_at,
                waiting_for=d.waiting_for.column() if d.waiting_for else None,
            )
    if completed:
        p.increments["steps_completed"] = completed
    if p.ends:
        v.update(finished_at=now, due_at=None, wake_at=None, waiting_for=None, step=None)
    if p.ends or p.releases:
        v.update(lease_owner=None, lease_expires_at=None)
        p.increments["lease_epoch"] = 1
    v["updated_at"] = now
    v["stalls"] = 0
    return p


def assignments(values: dict[str, Any], increments: dict[str, int]) -> dict[str, Any]:
    """``UPDATE ... SET`` assignments (Core expressions) for literal values and increments."""
    out: dict[str, Any] = dict(values)
    for col, n in increments.items():
        out[col] = runs.c[col] + n
    return out
