"""Everything the page of one run shows, read through the public client."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from durable import Client, CorruptJournalError, LogEvent, RunInfo, RunNotFoundError, Status
from durable.events import EventType as T
from durable.outputs import output_tree
from durable.ui.format import call, compact
from durable.ui.inputs import BlockedView, StepCall, blocked_view, step_calls
from durable.ui.timeline import Timeline, build_timeline

__all__ = ["JournalRow", "RunView", "load_run", "run_times"]

MAX_CHILDREN = 100
SHOWN_EVENTS = 100
"""Journal rows a run's page shows, the newest (``?all=1`` shows every one)."""
SHOWN_CALLS = 50
"""Step calls and outputs per stage a run's page shows, the newest (``?all=1``: all)."""
_FAILURES = (T.STEP_FAILED, T.RUN_FAILED, T.CHILD_FAILED)
_ENDS = (T.RUN_COMPLETED, T.RUN_FAILED, T.RUN_CANCELLED)


@dataclass(frozen=True, slots=True)
class JournalRow:
    """One line of the journal table."""

    event: LogEvent
    offset: float
    """Seconds since the run's first event."""
    summary: str


@dataclass(frozen=True, slots=True)
class ErrorView:
    """A recorded error (of a step attempt, a child or the run)."""

    where: str
    at: dt.datetime
    type: str
    message: str
    traceback: str | None
    retryable: bool


@dataclass(frozen=True, slots=True)
class ChildView:
    """A child run started by this run."""

    id: str
    workflow: str
    position: int | None
    info: RunInfo | None


@dataclass(slots=True)
class RunView:
    """One run's page."""

    info: RunInfo
    events: list[LogEvent]
    timeline: Timeline
    journal: list[JournalRow]
    journal_cut: int = 0
    """Older events not shown (the page shows the newest :data:`SHOWN_EVENTS`)."""
    show_all: bool = False
    """Every event, step call and output is shown."""
    arguments: tuple[list[Any], dict[str, Any]] | None = None
    """The workflow's positional and keyword arguments (``None``: they do not decode)."""
    calls: list[StepCall] = field(default_factory=list)
    """The step calls with their arguments, in position order."""
    calls_cut: int = 0
    blocked: BlockedView | None = None
    """Why the run is parked, while it is blocked."""
    result: Any = None
    has_result: bool = False
    outputs: dict[str, dict[str, Any]] = field(default_factory=dict)
    outputs_cut: int = 0
    messages: list[LogEvent] = field(default_factory=list)
    errors: list[ErrorView] = field(default_factory=list)
    children: list[ChildView] = field(default_factory=list)
    forked_from: str | None = None
    started_at: dt.datetime | None = None
    finished_at: dt.datetime | None = None
    trace_id: str | None = None
    trace_link: str | None = None
    positions: list[tuple[int, str]] = field(default_factory=list)
    """``(position, label)`` of the journaled calls, for "fork from step"."""

    @property
    def input_call(self) -> str:
        """The workflow's call as Python would write it."""
        if self.arguments is None:
            return f"{self.info.workflow}(…)"
        return call(self.info.workflow, list(self.arguments), limit=400)

    @property
    def last_seq(self) -> int:
        """The newest event's ``seq`` (where the live view goes on from)."""
        return self.events[-1].seq if self.events else 0


def run_times(info: RunInfo) -> tuple[dt.datetime | None, dt.datetime | None]:
    """When the run was first taken by a worker and when it ended, as far as ``RunInfo``
    tells (``started_at``/``finished_at`` when the client provides them; else the end of a
    finished run is its last update, and the start is unknown)."""
    started = getattr(info, "started_at", None)
    finished = getattr(info, "finished_at", None)
    if finished is None and info.status.is_terminal:
        finished = info.updated_at
    return started, finished


def _error(ev: LogEvent) -> ErrorView | None:
    err = ev.data.get("error")
    if not isinstance(err, dict):
        return None
    if ev.type == T.RUN_FAILED:
        where = "the run"
    elif ev.type == T.CHILD_FAILED:
        where = f"child {ev.name} #{ev.position}"
    else:
        where = f"step {ev.name} #{ev.position}, attempt {ev.attempt}"
    tb = err.get("traceback")
    return ErrorView(
        where=where,
        at=ev.at,
        type=str(err.get("type", "Error")),
        message=str(err.get("message", "")),
        traceback=tb if isinstance(tb, str) else None,
        retryable=bool(ev.data.get("retryable")),
    )


def _trace_link(template: str | None, trace_id: str | None) -> str | None:
    if not template or not trace_id:
        return None
    return template.replace("{trace_id}", quote(trace_id, safe=""))


def _newest(tree: dict[str, dict[str, Any]], n: int) -> tuple[dict[str, dict[str, Any]], int]:
    """The newest ``n`` entries of each stage of an outputs tree, and how many are left out."""
    cut = 0
    out: dict[str, dict[str, Any]] = {}
    for stage, values in tree.items():
        items = list(values.items())
        cut += max(len(items) - n, 0)
        out[stage] = dict(items[-n:])
    return out, cut


def load_run(
    client: Client,
    run_id: str,
    trace_url: str | None = None,
    now: dt.datetime | None = None,
    *,
    show_all: bool = False,
) -> RunView:
    """Read one run; ``RunNotFoundError`` if there is none. Unless ``show_all``, the page
    lists the newest :data:`SHOWN_EVENTS` events and :data:`SHOWN_CALLS` step calls and
    outputs per stage (the timeline and the counts cover them all)."""
    handle = client.get(run_id)
    info = handle.info()
    events = handle.events()
    now = now or dt.datetime.now(dt.UTC)
    origin = events[0].at if events else info.created_at
    shown = events if show_all else events[-SHOWN_EVENTS:]
    view = RunView(
        info=info,
        events=events,
        timeline=build_timeline(events, info.status, now),
        journal=[
            JournalRow(ev, (ev.at - origin).total_seconds(), compact(ev.data)) for ev in shown
        ],
        journal_cut=len(events) - len(shown),
        show_all=show_all,
    )
    view.outputs = output_tree(events)
    if not show_all:
        view.outputs, view.outputs_cut = _newest(view.outputs, SHOWN_CALLS)
    try:
        view.arguments = client.arguments(run_id)
    except CorruptJournalError:
        view.arguments = None
    view.calls, view.calls_cut = step_calls(events, None if show_all else SHOWN_CALLS)
    if info.status is Status.BLOCKED:
        view.blocked = blocked_view(events)
    seen: set[int] = set()
    for ev in events:
        if ev.type == T.RUN_STARTED:
            forked = ev.data.get("forked_from")
            view.forked_from = forked if isinstance(forked, str) else None
        elif ev.type == T.LEASE_TAKEN and view.started_at is None:
            view.started_at = ev.at
        elif ev.type == T.MESSAGE:
            view.messages.append(ev)
        elif ev.type == T.CHILD_STARTED and len(view.children) < MAX_CHILDREN:
            child = ev.data.get("child_id")
            if isinstance(child, str):
                try:
                    child_info: RunInfo | None = client.get(child).info()
                except RunNotFoundError:
                    child_info = None
                view.children.append(ChildView(child, ev.name or "", ev.position, child_info))
        if ev.type in _FAILURES:
            err = _error(ev)
            if err is not None:
                view.errors.append(err)
        if ev.type == T.RUN_COMPLETED:
            view.result, view.has_result = ev.data.get("result"), True
        if ev.type in _ENDS:
            view.finished_at = ev.at
        if ev.position is not None and ev.position not in seen:
            seen.add(ev.position)
            view.positions.append((ev.position, f"#{ev.position} {ev.name or ev.type}"))
    if not info.status.is_terminal:
        view.finished_at = None  # resumed since it last ended
    trace_id = getattr(info, "trace_id", None)
    view.trace_id = trace_id if isinstance(trace_id, str) else None
    view.trace_link = _trace_link(trace_url, view.trace_id)
    return view
