"""The printed table and the JSON file, both written from the same :class:`Result` list."""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import sqlite3
import sys
from collections.abc import Sequence
from typing import Any

from benchmarks.model import Result, Settings, Summary

SCHEMA_VERSION = 1


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {
        "platform": platform.platform(),
        "cpu": cpu,
        "cpus": os.cpu_count(),
        "python": sys.version.split()[0],
        "implementation": platform.python_implementation(),
        "sqlite": sqlite3.sqlite_version,
        "packages": _versions("durable-pipelines", "sqlalchemy", "msgspec", "psycopg", "dbos"),
    }


def postgres_version(settings: Settings) -> str:
    """The server's version and durability settings, or why they could not be read."""
    try:
        import psycopg

        from benchmarks.logs import libpq_url, postgres_server

        with psycopg.connect(libpq_url(postgres_server(settings)), connect_timeout=5) as c:
            row = c.execute(
                "SELECT current_setting('server_version'), current_setting('synchronous_commit'),"
                " current_setting('fsync'), current_setting('max_connections')"
            ).fetchone()
    except Exception as exc:
        return f"unavailable ({type(exc).__name__}: {exc})"
    assert row is not None
    return f"{row[0]}, synchronous_commit={row[1]}, fsync={row[2]}, max_connections={row[3]}"


def _versions(*names: str) -> dict[str, str | None]:
    from importlib import metadata

    out: dict[str, str | None] = {}
    for name in names:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def to_json(results: Sequence[Result], meta: dict[str, Any]) -> dict[str, Any]:
    """The JSON document: ``{"schema", "created_at", "meta", "results": [...]}``."""
    return {
        "schema": SCHEMA_VERSION,
        "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "meta": meta,
        "results": [r.to_dict() for r in results],
    }


def write_json(path: str, results: Sequence[Result], meta: dict[str, Any]) -> None:
    """Write :func:`to_json` to ``path`` (its folder is created)."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        json.dump(to_json(results, meta), f, indent=2)
        f.write("\n")


def _num(x: float) -> str:
    if x >= 10_000:
        return f"{x:,.0f}"
    if x >= 100:
        return f"{x:.0f}"
    if x >= 10:
        return f"{x:.1f}"
    return f"{x:.2f}"


def _x(x: float) -> str:
    return f"{x:.2f}" if x >= 0.995 else f"{x:.2g}"


def _ratio(s: Summary | None) -> str:
    if s is None:
        return "-"
    if s.n == 1:
        return f"{_x(s.median)}x"
    return f"{_x(s.median)}x ({_x(s.min)}-{_x(s.max)})"


HEADERS = (
    "workload",
    "system",
    "backend",
    "µs/op median",
    "min-max",
    "IQR",
    "ops/s median",
    "cpu µs/op",
    "n",
)


def table(results: Sequence[Result], peers: Sequence[str] = ()) -> str:
    """The results as a fixed-width text table, one row per cell.

    Costs are wall microseconds per op (the op is the ``unit`` shown beside the figure),
    rates are ops per second of wall time, and ``vs X`` is this row's primary figure over
    X's, median of the per-repetition ratios with their min-max.
    """
    refs = [k for k in ("raw", "raw8") if any(k in r.references for r in results)] or ["raw"]
    ratio_cols = [*refs, *peers]
    headers = [*HEADERS, *(f"vs {c}" for c in ratio_cols)]
    rows: list[list[str]] = []
    notes: list[str] = []
    for r in results:
        head = [r.workload, r.system, r.backend]
        if r.skipped or not r.measurements:
            rows.append([*head, "skipped", *([""] * (len(headers) - 4))])
            notes.append(f"{r.workload}/{r.system}/{r.backend}: {r.skipped or 'no measurement'}")
            continue
        cost, rate, cpu = r.costs(), r.rates(), r.cpu_costs()
        unit = r.unit
        ratios = [
            "1.00x (ref)" if (c == r.workload and r.system == "raw") else _ratio(r.ratios.get(c))
            for c in ratio_cols
        ]
        rows.append(
            [
                *head,
                f"{_num(cost.median)} µs/{unit}",
                f"{_num(cost.min)}-{_num(cost.max)}",
                f"{_num(cost.q1)}-{_num(cost.q3)}",
                f"{_num(rate.median)} {unit}s/s",
                "-" if cpu is None else _num(cpu.median),
                str(cost.n),
                *ratios,
            ]
        )
    widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(headers)]
    numeric = set(range(3, len(headers)))

    def fmt(cells: Sequence[str]) -> str:
        parts = [
            c.rjust(w) if i in numeric else c.ljust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ]
        return "  ".join(parts).rstrip()

    lines = [fmt(headers), fmt(["-" * w for w in widths])]
    lines += [fmt(row) for row in rows]
    titles = {r.workload: r.title for r in results}
    lines.append("")
    lines += [f"  {key}: {title}" for key, title in titles.items()]
    shown = [
        (r, key, s)
        for r in results
        if r.measurements and not r.skipped
        for key in r.show
        if (s := r.extra(key)) is not None
    ]
    if shown:
        lines.append("")
        for r, key, s in shown:
            span = "" if s.n == 1 else f"  ({_num(s.min)}-{_num(s.max)} over repetitions)"
            lines.append(f"  {r.workload}/{r.system}/{r.backend} {key}: {_num(s.median)}{span}")
    if notes:
        lines.append("")
        lines += [f"  skipped {n}" for n in notes]
    return "\n".join(lines)
