"""What the commands print: aligned tables for people, JSON for scripts."""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import enum
import json
import shutil
import sys
from collections.abc import Sequence
from typing import Any, TextIO

import durable

__all__ = [
    "dump_json",
    "event_dict",
    "event_summary",
    "fmt_seconds",
    "fmt_time",
    "jsonable",
    "plural",
    "run_dict",
    "table",
    "waits_for",
]

MAX_CELL = 48


def jsonable(value: Any) -> Any:
    """``value`` with datetimes, enums, bytes, sets and dataclasses made JSON-friendly."""
    if isinstance(value, enum.Enum):
        return jsonable(value.value)
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return jsonable(dataclasses.asdict(value))
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [jsonable(v) for v in value]
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


def dump_json(value: Any, out: TextIO | None = None, *, lines: bool = False) -> None:
    """Print ``value`` as JSON (indented, or on one line with ``lines``)."""
    text = json.dumps(jsonable(value), indent=None if lines else 2, ensure_ascii=False)
    print(text, file=out or sys.stdout, flush=True)


def run_dict(info: durable.RunInfo) -> dict[str, Any]:
    """A run as a JSON object (the fields of ``RunInfo`` that describe the run)."""
    d: dict[str, Any] = jsonable(info)
    for inside_only in ("step_name", "step_position", "step_attempt", "step_key", "worker_id"):
        d.pop(inside_only, None)
    return d


def event_dict(ev: durable.LogEvent) -> dict[str, Any]:
    """A journal event as a JSON object."""
    d: dict[str, Any] = jsonable(ev)
    return d


def event_summary(ev: durable.LogEvent) -> str:
    """The payload of an event in a few words (its error, message, progress or value)."""
    data = ev.data
    if "error" in data and isinstance(data["error"], dict):
        err = data["error"]
        retry = " (will retry)" if data.get("retryable") else ""
        return f"{err.get('type', 'Error')}: {err.get('message', '')}{retry}"
    if ev.type == "progress":
        return f"{data.get('scope', 'run')} {float(data.get('value', 0.0)):.0%}"
    for key in ("text", "result", "value", "wake_at", "waiting_for", "child_id", "payload"):
        if key in data and data[key] is not None:
            if key == "wake_at":
                return f"until {fmt_time(dt.datetime.fromtimestamp(data[key], dt.UTC))}"
            return f"{key}={json.dumps(jsonable(data[key]), ensure_ascii=False)}"
    return ""


def fmt_time(t: dt.datetime | None) -> str:
    """A UTC instant in local time, to the millisecond: ``YYYY-MM-DD HH:MM:SS.mmm``."""
    if t is None:
        return ""
    local = t.astimezone()
    return local.strftime("%Y-%m-%d %H:%M:%S.") + f"{local.microsecond // 1000:03d}"


def waits_for(info: durable.RunInfo) -> str | None:
    """What a run that has not ended waits for, in words (``None`` while it runs or once
    it has ended): ``a signal named 'approve' (or until ...)``, ``its child runs``,
    ``a time: ...``, ``a worker``, for a blocked run ``a worker of another code version``.
    The one place that reads ``RunInfo.waiting_for``."""
    if info.status is durable.Status.BLOCKED:
        return (
            f"a worker of another code version than {info.blocked_version!r} "
            f"(or `durable resume {info.id}`)"
        )
    if info.status not in (durable.Status.SLEEPING, durable.Status.PENDING):
        return None
    kind, _, name = (info.waiting_for or "").partition(":")
    until = fmt_time(info.wake_at) if info.wake_at is not None else None
    if kind == "signal":
        return f"a signal named {name!r}" + (f" (or until {until})" if until else "")
    if kind == "children":
        return "its child runs to finish" + (f" (or until {until})" if until else "")
    if until is not None:
        return f"a time: {until}"
    if info.status is durable.Status.PENDING:
        return f"a worker of queue {info.queue!r} that registers {info.workflow!r}"
    return None


def plural(n: int, noun: str) -> str:
    """``1 workflow``, ``2 workflows``, ``0 steps``: a count and its noun, in agreement."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def fmt_eta(info: durable.RunInfo) -> str:
    """A run's time left for people (``~3m20s``), or ``""`` without an estimate or once it
    has ended."""
    if info.eta is None or info.status.is_terminal:
        return ""
    return "~" + fmt_seconds(info.eta)


def fmt_doing(info: durable.RunInfo) -> str:
    """What an unfinished run does now: ``stage/step``, ``stage``, ``step`` or ``""``."""
    if info.status.is_terminal:
        return ""
    return "/".join(x for x in (info.stage, info.step) if x)


def fmt_seconds(s: float | None) -> str:
    """A duration for people: ``850ms``, ``12.5s``, ``3m20s``, ``2h05m``."""
    if s is None:
        return "-"
    if s < 1:
        return f"{s * 1000:.0f}ms"
    if s < 60:
        return f"{s:.1f}s"
    if s < 3600:
        return f"{int(s // 60)}m{int(s % 60):02d}s"
    return f"{int(s // 3600)}h{int(s % 3600 // 60):02d}m"


def _cell(value: Any) -> str:
    text = "" if value is None else str(value)
    text = text.replace("\n", " ")
    return text if len(text) <= MAX_CELL else text[: MAX_CELL - 1] + "…"


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]], out: TextIO | None = None) -> None:
    """Print rows under headers in aligned columns, cut to the terminal's width."""
    out = out or sys.stdout
    cells = [[_cell(v) for v in row] for row in rows]
    widths = [len(h) for h in headers]
    for row in cells:
        for i, c in enumerate(row):
            widths[i] = max(widths[i], len(c))
    width = shutil.get_terminal_size((200, 24)).columns if out.isatty() else 10_000
    for row in [list(headers), *cells]:
        line = "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
        print(line[:width], file=out)
