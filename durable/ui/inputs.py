"""What a run was given: the workflow's arguments (``Client.arguments``) and each step
call's, as its ``step_started`` events record them, with how the call went; and why a
blocked run is parked (its last ``run_blocked`` event)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from durable import LogEvent
from durable.events import EventType as T
from durable.ui.format import call
from durable.ui.timeline import Look

__all__ = ["BlockedView", "StepCall", "blocked_view", "step_calls"]


_OUTCOMES = {T.STEP_COMPLETED: Look.COMPLETED, T.STEP_FAILED: Look.FAILED}


@dataclass(slots=True)
class StepCall:
    """One journaled step call: where, its arguments, its attempts and how it ended."""

    position: int
    name: str
    args: Any = None
    """The recorded ``[positional, keyword]`` pair; ``None`` when not recorded (journals
    written before step arguments were)."""
    recorded: bool = False
    stage: str | None = None
    attempts: int = 0
    outcome: Look = Look.RUNNING
    """``completed``, ``failed``, ``retrying`` (failed, to be tried again) or ``running``
    (the colours of the timeline's bars)."""
    seqs: list[int] = field(default_factory=list)

    @property
    def text(self) -> str:
        """The call as Python would write it."""
        return call(self.name, self.args) if self.recorded else f"{self.name}(…)"


def step_calls(events: Sequence[LogEvent], limit: int | None = None) -> tuple[list[StepCall], int]:
    """The run's step calls in position order (the last ``limit`` of them, if given), and
    how many are left out."""
    calls: dict[int, StepCall] = {}
    for ev in events:
        pos = ev.position
        if pos is None or ev.type not in (T.STEP_STARTED, T.STEP_COMPLETED, T.STEP_FAILED):
            continue
        c = calls.get(pos)
        if c is None:
            c = calls[pos] = StepCall(pos, ev.name or "step")
        c.seqs.append(ev.seq)
        if ev.type == T.STEP_STARTED:
            c.attempts = max(c.attempts, ev.attempt or 1)
            c.stage = c.stage or _text(ev.data.get("stage"))
            if not c.recorded and "args" in ev.data:
                c.args, c.recorded = ev.data["args"], True
            if c.outcome != Look.COMPLETED:
                c.outcome = Look.RUNNING
        elif ev.type == T.STEP_FAILED and ev.data.get("retryable"):
            c.outcome = Look.RETRYING
        else:
            c.outcome = _OUTCOMES[T(ev.type)]
    ordered = [calls[p] for p in sorted(calls)]
    shown = ordered if limit is None else ordered[-limit:] if limit else []
    return shown, len(ordered) - len(shown)


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


@dataclass(frozen=True, slots=True)
class BlockedView:
    """Why a run is parked: where the code and the journal part, and which code tried."""

    position: int | None
    called: str | None
    recorded: str | None
    version: str | None
    """The code version of the worker that parked it."""
    tried: tuple[str, ...]
    """Every version that could not replay it since it last suspended (``""``: a worker
    that declares none)."""
    message: str
    seq: int


def blocked_view(events: Sequence[LogEvent]) -> BlockedView | None:
    """The reason of the run's last ``run_blocked`` event, if any."""
    for ev in reversed(events):
        if ev.type != T.RUN_BLOCKED:
            continue
        d = ev.data
        err = d.get("error")
        message = str(err.get("message", "")) if isinstance(err, dict) else ""
        pos = d.get("position")
        tried = d.get("tried")
        return BlockedView(
            position=pos if isinstance(pos, int) else None,
            called=_text(d.get("called")),
            recorded=_text(d.get("recorded")),
            version=_text(d.get("version")),
            tried=tuple(str(v) for v in tried) if isinstance(tried, list) else (),
            message=message,
            seq=ev.seq,
        )
    return None
