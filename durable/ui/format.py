"""How the dashboard writes times, durations and values (also its template filters)."""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import enum
import json
import re
from typing import Any

from durable.types import Status

__all__ = [
    "ago",
    "call",
    "clock",
    "compact",
    "duration",
    "jsonable",
    "pretty",
    "short",
    "stamp",
    "why_blocked",
]

_MISMATCH = re.compile(
    r"at position (\d+): the code calls (.+?) but the journal records (.+?)\.(?:\s|$)", re.DOTALL
)
_RUN_PREFIX = re.compile(r"^run '.*?'(?: at position (\d+))?:? ", re.DOTALL)


def duration(seconds: float | None) -> str:
    """``"320 ms"``, ``"2.4 s"``, ``"3 m 12 s"``, ``"1 h 4 m"``, ``"2 d 3 h"``; ``"-"``."""
    if seconds is None:
        return "-"
    s = max(float(seconds), 0.0)
    if s < 1:
        return f"{s * 1000:.0f} ms"
    if s < 60:
        return f"{s:.1f} s" if s < 10 else f"{s:.0f} s"
    if s < 3600:
        big, small = f"{int(s // 60)} m", int(s % 60)
        return f"{big} {small} s" if small else big
    if s < 86400:
        big, small = f"{int(s // 3600)} h", int(s % 3600 // 60)
        return f"{big} {small} m" if small else big
    big, small = f"{int(s // 86400)} d", int(s % 86400 // 3600)
    return f"{big} {small} h" if small else big


def clock(t: float | dt.datetime | None) -> str:
    """A UTC time of day with milliseconds: ``"14:03:07.250"``."""
    if t is None:
        return "-"
    when = t if isinstance(t, dt.datetime) else dt.datetime.fromtimestamp(t, dt.UTC)
    return when.astimezone(dt.UTC).strftime("%H:%M:%S.%f")[:-3]


def stamp(t: dt.datetime | None) -> str:
    """A UTC date and time: ``"2026-12-02 14:03:07"``."""
    if t is None:
        return "-"
    return t.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S")


def ago(t: dt.datetime | None, now: dt.datetime | None = None) -> str:
    """How long ago: ``"3 m 12 s ago"``."""
    if t is None:
        return "-"
    now = now or dt.datetime.now(dt.UTC)
    seconds = (now - t).total_seconds()
    if seconds < 0:
        return "in " + duration(-seconds)
    return duration(seconds) + " ago"


def short(run_id: str, n: int = 22) -> str:
    """A long id cut in its middle, its start and end kept (the full id stays in links
    and tooltips): ``"01a23648…6283747353d8"``, ``"01a23648…353d8:4"``."""
    if len(run_id) <= n:
        return run_id
    tail = 8 if ":" not in run_id[-8:] else len(run_id) - run_id.rindex(":") + 5
    return run_id[:8] + "…" + run_id[-tail:]


def jsonable(value: Any) -> Any:
    """``value`` made of JSON types: datetimes as ISO text, bytes as base64 in a dict,
    dataclasses as dicts, anything else unknown as its ``repr``."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if value == value and value not in (float("inf"), float("-inf")) else None
    if isinstance(value, enum.Enum):
        return jsonable(value.value)
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, bytes | bytearray | memoryview):
        return {"base64": base64.b64encode(bytes(value)).decode()}
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [jsonable(v) for v in value]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    return repr(value)


def pretty(value: Any, limit: int = 20_000) -> str:
    """Indented JSON of ``value`` (cut at ``limit`` characters)."""
    text = json.dumps(jsonable(value), indent=2, ensure_ascii=False, sort_keys=False)
    return text if len(text) <= limit else text[:limit] + "\n… (cut)"


def compact(value: Any, limit: int = 140) -> str:
    """One line of JSON of ``value``, cut at ``limit`` characters."""
    text = json.dumps(jsonable(value), ensure_ascii=False, separators=(", ", ": "))
    return text if len(text) <= limit else text[: limit - 1] + "…"


def call(name: str, args: Any, limit: int = 160) -> str:
    """A recorded call as Python would write it: ``fetch("orders", 20, flaky=1)``, each
    argument as compact JSON, cut at ``limit`` characters; ``args`` is the recorded
    ``[positional, keyword]`` pair (anything else is shown as it is)."""
    if (
        isinstance(args, list | tuple)
        and len(args) == 2
        and isinstance(args[0], list | tuple)
        and isinstance(args[1], dict)
    ):
        parts = [compact(a, limit) for a in args[0]]
        parts += [f"{k}={compact(v, limit)}" for k, v in args[1].items()]
    else:
        parts = [compact(args, limit)]
    text = f"{name}({', '.join(parts)})"
    return text if len(text) <= limit else text[: limit - 2] + "…)"


def why_blocked(message: str | None) -> str:
    """A blocked run's reason in a few words, from its error message:
    ``"#2: calls step 'fraud', journal has sleep"``; another message without
    the run's id and the advice after its first sentence."""
    if not message:
        return Status.BLOCKED.value
    found = _MISMATCH.search(message)
    if found:
        pos, called, recorded = found.groups()
        return f"#{pos}: calls {called}, journal has {recorded}"
    prefix = _RUN_PREFIX.match(message)
    rest = message[prefix.end() :] if prefix else message
    first = rest.split(". ")[0]
    return f"#{prefix.group(1)}: {first}" if prefix and prefix.group(1) else first
