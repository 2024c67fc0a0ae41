"""A run's timeline, drawn on the server: one lane per stage and per journaled call (step,
sleep, signal wait, child run), one bar per attempt, laid out in SVG user units.

Built from the journal alone (``Client.events``): a step attempt spans from its start
(``started_at`` of its outcome, else its ``step_started`` event) to its outcome; a retry's
backoff spans from the failure to the scheduled wake-up; calls without an outcome yet run to
"now" (or to the run's end).
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from durable import LogEvent, Status
from durable.events import EventType as T
from durable.ui.format import clock, duration

__all__ = ["Bar", "Lane", "Look", "Marker", "Timeline", "build_timeline"]

WIDTH = 1100.0
LABEL_W = 230.0
RIGHT_PAD = 16.0
LANE_H = 24.0
TOP = 26.0
MAX_LANES = 300
COMPACT_AT = 20
"""A run with more journaled calls than this draws one lane per call name."""
KIND_WORDS = {"wait": "signal"}


class Look(enum.StrEnum):
    """How a bar ends, which picks its colour (CSS class ``o-<value>``)."""

    COMPLETED = Status.COMPLETED.value
    FAILED = Status.FAILED.value
    CANCELLED = Status.CANCELLED.value
    RUNNING = Status.RUNNING.value
    BLOCKED = Status.BLOCKED.value
    RETRYING = "retrying"
    TIMED_OUT = "timed out"
    BACKOFF = "backoff"
    WAITING = "waiting"
    QUEUED = "queued"
    SUSPENDED = "suspended"


_END = {T.RUN_COMPLETED: Look.COMPLETED, T.RUN_FAILED: Look.FAILED, T.RUN_CANCELLED: Look.CANCELLED}


@dataclass(slots=True)
class Lane:
    """One row: a stage or a journaled call."""

    label: str
    detail: str
    kind: str


@dataclass(slots=True)
class Bar:
    """One span on a lane; ``outcome`` picks its colour, ``title`` is its tooltip."""

    lane: int
    start: float
    end: float
    kind: str
    outcome: str
    title: str
    href: str | None = None
    x: float = 0.0
    w: float = 0.0
    y: float = 0.0


@dataclass(slots=True)
class Marker:
    """A moment on the run's lane (a worker took the run, it was resumed...)."""

    at: float
    kind: str
    title: str
    x: float = 0.0


@dataclass(slots=True)
class Timeline:
    """The laid-out timeline: lanes, bars, markers and axis ticks."""

    lanes: list[Lane] = field(default_factory=list)
    bars: list[Bar] = field(default_factory=list)
    markers: list[Marker] = field(default_factory=list)
    ticks: list[tuple[float, str]] = field(default_factory=list)
    total: float = 0.0
    width: float = WIDTH
    height: float = TOP
    label_w: float = LABEL_W
    lane_h: float = LANE_H
    top: float = TOP
    cut: int = 0
    """Lanes left out beyond :data:`MAX_LANES`."""
    compact: bool = False
    """One lane per call name (a run with many calls)."""
    has_blocked: bool = False
    """The run was blocked at some time (its legend names the colour)."""

    def lane_y(self, i: int) -> float:
        """The top of lane ``i``."""
        return self.top + i * self.lane_h


def _ts(at: dt.datetime) -> float:
    return at.timestamp()


def _error_text(data: dict[str, Any]) -> str:
    err = data.get("error")
    if isinstance(err, dict):
        return f"{err.get('type', 'Error')}: {err.get('message', '')}"
    return ""


class _Builder:
    def __init__(self, events: Sequence[LogEvent], status: Status, now: dt.datetime) -> None:
        self.events = events
        self.origin = _ts(events[0].at) if events else _ts(now)
        self.end = _ts(now)
        for ev in events:
            if ev.type in _END:
                self.end = _ts(ev.at)
        if status.is_terminal and events:
            self.end = max(self.end, _ts(events[-1].at))
        self.blocked_at: float | None = None
        """When a blocked run was parked (the time it is drawn to: nothing moves since)."""
        if status == Status.BLOCKED:
            parked = [_ts(ev.at) for ev in events if ev.type == T.RUN_BLOCKED]
            if parked:
                self.blocked_at = parked[-1]
                self.end = parked[-1] + max((parked[-1] - self.origin) * 0.12, 0.05)
        self.status = status
        self.lanes: list[Lane] = []
        self.lane_of: dict[tuple[str, Any], int] = {}
        self.bars: list[Bar] = []
        self.markers: list[Marker] = []
        self.calls: dict[int, int] = {}
        self.per_lane: dict[int, int] = {}
        positions = {ev.position for ev in events if ev.position is not None}
        self.compact = len(positions) > COMPACT_AT
        """Many calls: one lane per call name (and kind) rather than one per call."""

    def rel(self, t: float) -> float:
        return max(0.0, t - self.origin)

    def call_lane(self, pos: int, kind: str, label: str) -> int:
        """The lane of the call at ``pos``: its own, or (compact) the one of its name."""
        if pos in self.calls:
            return self.calls[pos]
        if self.compact:
            key: tuple[str, Any] = ("calls", (kind, label))
            lane = self.lane(key, label, "", kind)
            self.per_lane[lane] = self.per_lane.get(lane, 0) + 1
            self.lanes[lane].detail = f"{self.per_lane[lane]}×"
        else:
            lane = self.lane(("call", pos), label, f"#{pos} {KIND_WORDS.get(kind, kind)}", kind)
        self.calls[pos] = lane
        return lane

    def lane(self, key: tuple[str, Any], label: str, detail: str, kind: str) -> int:
        if key not in self.lane_of:
            self.lane_of[key] = len(self.lanes)
            self.lanes.append(Lane(label, detail, kind))
        return self.lane_of[key]

    def bar(
        self,
        lane: int,
        start: float,
        end: float,
        kind: str,
        outcome: str,
        what: str,
        href: str | None = None,
    ) -> None:
        start, end = self.rel(start), self.rel(max(end, start))
        title = (
            f"{what}\n{outcome}, {duration(end - start)}\n"
            f"{clock(self.origin + start)} → {clock(self.origin + end)}"
        )
        self.bars.append(Bar(lane, start, end, kind, outcome, title, href))

    def build(self) -> Timeline:
        run_lane = self.lane(("run", None), "run", str(self.status), "run")
        open_stage: dict[str, float] = {}
        open_step: dict[tuple[int, int], float] = {}
        open_wait: dict[tuple[str, int], tuple[float, LogEvent]] = {}
        for ev in self.events:
            at = _ts(ev.at)
            data = ev.data
            pos = ev.position
            if ev.type == T.STAGE_ENTERED and ev.name:
                self.lane(("stage", ev.name), ev.name, "stage", "stage")
                open_stage.setdefault(ev.name, at)
            elif ev.type == T.STAGE_LEFT and ev.name:
                lane = self.lane(("stage", ev.name), ev.name, "stage", "stage")
                start = open_stage.pop(ev.name, at)
                self.bar(lane, start, at, "stage", Look.COMPLETED, f"stage {ev.name}")
            elif ev.type == T.STEP_STARTED and pos is not None:
                self.call_lane(pos, "step", ev.name or "step")
                open_step[(pos, ev.attempt or 1)] = at
            elif ev.type in (T.STEP_COMPLETED, T.STEP_FAILED) and pos is not None:
                lane = self.call_lane(pos, "step", ev.name or "step")
                attempt = ev.attempt or 1
                started = open_step.pop((pos, attempt), None)
                raw_start = data.get("started_at")
                if isinstance(raw_start, int | float):
                    started = float(raw_start)
                start = started if started is not None else at
                what = f"step {ev.name} #{pos}, attempt {attempt}"
                if ev.type == T.STEP_COMPLETED:
                    self.bar(lane, start, at, "step", Look.COMPLETED, what)
                else:
                    outcome = Look.RETRYING if data.get("retryable") else Look.FAILED
                    self.bar(lane, start, at, "step", outcome, f"{what}\n{_error_text(data)}")
            elif ev.type == T.RETRY_SCHEDULED and pos is not None:
                lane = self.call_lane(pos, "step", ev.name or "step")
                wake = data.get("wake_at")
                end = float(wake) if isinstance(wake, int | float) else at
                what = f"backoff before attempt {ev.attempt} of step {ev.name} #{pos}"
                self.bar(lane, at, end, "backoff", Look.BACKOFF, what)
            elif ev.type in (T.SLEEP_STARTED, T.WAIT_STARTED) and pos is not None:
                kind = "sleep" if ev.type == T.SLEEP_STARTED else "wait"
                label = "sleep" if kind == "sleep" else (ev.name or "signal")
                self.call_lane(pos, kind, label)
                open_wait.setdefault((kind, pos), (at, ev))
            elif ev.type in (T.SLEEP_FIRED, T.SIGNAL_RECEIVED) and pos is not None:
                kind = "sleep" if ev.type == T.SLEEP_FIRED else "wait"
                label = "sleep" if kind == "sleep" else (ev.name or "signal")
                lane = self.call_lane(pos, kind, label)
                start = open_wait.pop((kind, pos), (at, ev))[0]
                outcome = Look.TIMED_OUT if data.get("timed_out") else Look.COMPLETED
                what = "sleep" if kind == "sleep" else f"wait for signal {label}"
                self.bar(lane, start, at, kind, outcome, f"{what} #{pos}")
            elif ev.type == T.CHILD_STARTED and pos is not None:
                self.call_lane(pos, "child", ev.name or "child")
                open_wait[("child", pos)] = (at, ev)
            elif ev.type in (T.CHILD_COMPLETED, T.CHILD_FAILED) and pos is not None:
                lane = self.call_lane(pos, "child", ev.name or "child")
                start, first = open_wait.pop(("child", pos), (at, ev))
                child = first.data.get("child_id")
                outcome = Look.COMPLETED if ev.type == T.CHILD_COMPLETED else Look.FAILED
                href = f"runs/{child}" if isinstance(child, str) else None
                self.bar(lane, start, at, "child", outcome, f"child run {child}", href)
            elif ev.type == T.LEASE_TAKEN:
                owner = data.get("owner") or "a worker"
                took = "took over" if data.get("takeover") else "took"
                self.markers.append(Marker(self.rel(at), "lease", f"{owner} {took} the run"))
            elif ev.type == T.RUN_RESUMED:
                self.markers.append(Marker(self.rel(at), "resumed", "resumed"))
            elif ev.type == T.RUN_SUSPENDED:
                self.markers.append(Marker(self.rel(at), "suspended", "suspended"))
            elif ev.type == T.RUN_BLOCKED:
                self.blocked(at, data)
            elif ev.type == T.RUN_UNBLOCKED:
                by = data.get("version")
                what = f"taken up by version {by}" if by else "resumed (blocked no more)"
                self.markers.append(Marker(self.rel(at), "unblocked", what))
        open_end = self.blocked_at if self.blocked_at is not None else self.end
        for name, start in open_stage.items():
            lane = self.lane(("stage", name), name, "stage", "stage")
            self.bar(lane, start, open_end, "stage", self._open(), f"stage {name}")
        for (pos, attempt), start in open_step.items():
            lane = self.calls[pos]
            what = f"step {self.lanes[lane].label} #{pos}, attempt {attempt}"
            self.bar(lane, start, open_end, "step", self._open(), what)
        for (kind, pos), (start, ev) in open_wait.items():
            lane = self.calls[pos]
            child = ev.data.get("child_id") if kind == "child" else None
            href = f"runs/{child}" if isinstance(child, str) else None
            what = f"{self.lanes[lane].label} #{pos}"
            self.bar(lane, start, open_end, kind, self._open(Look.WAITING), what, href)
        self.run_segments(run_lane)
        return self.layout()

    def blocked(self, at: float, data: dict[str, Any]) -> None:
        """A ``run_blocked`` event: a marker, and a mark on the lane of the call where the
        code and the journal part."""
        version = data.get("version")
        by = f"the code of version {version}" if version else "code without a version"
        why = f"the code calls {data.get('called')}, the journal records {data.get('recorded')}"
        self.markers.append(Marker(self.rel(at), Look.BLOCKED, f"blocked by {by}: {why}"))
        pos = data.get("position")
        if isinstance(pos, int) and pos in self.calls:
            end = at + (self.end - self.origin) * 0.015
            title = f"cannot replay #{pos}: {why}"
            self.bar(self.calls[pos], at, end, "mismatch", Look.BLOCKED, title)

    def run_segments(self, lane: int) -> None:
        """The run's own lane: waiting for a worker, executing, suspended, in turn."""
        executing = self.status.value if self.status.is_terminal else Look.RUNNING
        words = {
            "queued": (Look.QUEUED, "waiting for a worker"),
            "run": (executing, "executing on a worker"),
            "suspended": (Look.SUSPENDED, "suspended (sleeping or waiting, no worker)"),
            Look.BLOCKED: (Look.BLOCKED, "blocked: parked until code that can replay it runs"),
        }
        state: str | None = "queued"
        since = self.origin
        for ev in self.events:
            at = _ts(ev.at)
            nxt: str | None
            if ev.type == T.LEASE_TAKEN:
                nxt = "run"
            elif ev.type == T.RUN_SUSPENDED:
                nxt = "suspended"
            elif ev.type in (T.RUN_RESUMED, T.RUN_UNBLOCKED):
                nxt = "queued"
            elif ev.type == T.RUN_BLOCKED:
                nxt = Look.BLOCKED
            elif ev.type in _END:
                nxt = None
            else:
                continue
            if state is not None and at > since:
                outcome, what = words[state]
                self.bar(lane, since, at, state, outcome, what)
            state, since = nxt, at
        if state is not None and self.end > since:
            outcome, what = words[state]
            self.bar(lane, since, self.end, state, outcome, what)

    def _open(self, live: str = Look.RUNNING) -> str:
        if self.status == Status.BLOCKED:
            return Look.BLOCKED
        return live if not self.status.is_terminal else Look.CANCELLED

    def layout(self) -> Timeline:
        total = max(self.end - self.origin, 1e-3)
        tl = Timeline(total=total, compact=self.compact)
        tl.has_blocked = any(m.kind == Look.BLOCKED for m in self.markers)
        lanes = self.lanes[:MAX_LANES]
        tl.cut = len(self.lanes) - len(lanes)
        tl.lanes = lanes
        span = tl.width - tl.label_w - RIGHT_PAD

        def x(t: float) -> float:
            return tl.label_w + min(t, total) / total * span

        for b in self.bars:
            if b.lane >= len(lanes):
                continue
            b.x = x(b.start)
            b.w = max(x(b.end) - b.x, 2.0)
            b.y = tl.lane_y(b.lane) + 4
            tl.bars.append(b)
        for m in self.markers:
            m.x = x(m.at)
            tl.markers.append(m)
        tl.ticks = [(x(t), "+" + duration(t)) for t in _ticks(total)]
        tl.height = tl.lane_y(len(lanes)) + 8
        return tl


def _ticks(total: float) -> list[float]:
    step = 1e-3
    candidates = [m * 10.0**e for e in range(-3, 2) for m in (1, 2, 5)]
    candidates += [60, 120, 300, 600, 900, 1800, 3600, 7200, 21600, 43200, 86400, 7 * 86400]
    for c in sorted(candidates):
        if total / c <= 6:
            step = c
            break
    else:
        step = total / 6
    out, t = [], 0.0
    while t <= total + 1e-9:
        out.append(t)
        t += step
    return out


def build_timeline(events: Sequence[LogEvent], status: Status, now: dt.datetime) -> Timeline:
    """Lay out the timeline of a run from its journal and its current status."""
    return _Builder(events, status, now).build()
