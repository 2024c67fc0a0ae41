"""``durable runs list | show | events | export``: reading runs and their journals."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import durable
from durable import journal_file
from durable.cli.context import Context
from durable.cli.errors import USAGE, CliError
from durable.cli.output import (
    dump_json,
    event_dict,
    event_summary,
    fmt_doing,
    fmt_eta,
    fmt_time,
    plural,
    run_dict,
    table,
    waits_for,
)
from durable.cli.workers import not_served

__all__ = ["runs_events", "runs_export", "runs_list", "runs_show"]


def _progress(p: float | None) -> str:
    return "" if p is None else f"{p:.0%}"


def runs_list(ctx: Context) -> int:
    """``runs list``: runs matching the filters, newest first."""
    a = ctx.args
    infos = ctx.client().list_runs(
        status=a.status, workflow=a.workflow, queue=a.queue, limit=a.limit
    )
    if ctx.json:
        dump_json([run_dict(i) for i in infos])
        return 0
    table(
        [
            "ID",
            "WORKFLOW",
            "STATUS",
            "QUEUE",
            "ATTEMPT",
            "VERSION",
            "PROGRESS",
            "ETA",
            "DOING",
            "CREATED",
            "ERROR",
        ],
        [
            (
                i.id,
                i.workflow,
                i.status.value,
                i.queue,
                i.attempt,
                i.version or "",
                _progress(i.progress),
                fmt_eta(i),
                fmt_doing(i),
                fmt_time(i.created_at),
                i.error or "",
            )
            for i in infos
        ],
    )
    return 0


def runs_show(ctx: Context) -> int:
    """``runs show ID``: one run, its outputs and (once completed) its result."""
    client = ctx.client()
    h = client.get(ctx.args.id)
    info = h.info()
    outputs = h.outputs()
    unserved = not_served(client, info)
    if ctx.json:
        dump_json({"run": run_dict(info), "outputs": outputs, "no_live_worker": unserved})
        return 0
    fields = [
        ("id", info.id),
        ("workflow", info.workflow),
        ("status", info.status.value),
        ("queue", info.queue),
        ("priority", info.priority),
        ("attempt", info.attempt),
        ("version", info.version),
        ("parent", info.parent_id),
        ("stage", info.stage),
        ("progress", _progress(info.progress)),
        ("time left", fmt_eta(info)),
        ("step", info.step),
        ("steps completed", info.steps_completed),
        ("created", fmt_time(info.created_at)),
        ("updated", fmt_time(info.updated_at)),
        ("waits for", waits_for(info)),
        ("workers", "no live worker registers its workflow on its queue" if unserved else None),
        ("error", info.error),
    ]
    for name, value in fields:
        if value not in (None, ""):
            print(f"{name + ':':<17}{value}")
    if outputs:
        print("outputs:")
        for path, value in _leaves(outputs):
            print(f"  {path} = {value!r}")
    return 0


def _leaves(tree: dict[str, dict[str, Any]]) -> list[tuple[str, Any]]:
    """The outputs tree as ``stage.key`` and, for a step call, ``stage.step.key`` lines."""
    out: list[tuple[str, Any]] = []
    for stage, values in tree.items():
        for name, value in values.items():
            if isinstance(value, durable.StepOutputs):
                out.extend((f"{stage}.{name}.{k}", v) for k, v in value.items())
            else:
                out.append((f"{stage}.{name}", value))
    return out


def runs_events(ctx: Context) -> int:
    """``runs events ID``: the run's journal, oldest first."""
    evs = ctx.client().events(ctx.args.id)
    if ctx.json:
        dump_json([event_dict(e) for e in evs])
        return 0
    table(
        ["SEQ", "AT", "TYPE", "POS", "NAME", "ATTEMPT", "DETAILS"],
        [
            (e.seq, fmt_time(e.at), e.type, e.position, e.name, e.attempt, event_summary(e))
            for e in evs
        ],
    )
    return 0


def runs_export(ctx: Context) -> int:
    """``runs export ID [-o FILE]``: the run as a JSON journal, to stdout or to a file."""
    target = ctx.args.output
    if target not in (None, "-") and Path(target).is_dir():
        raise CliError(
            f"{target} is a folder: name the file, e.g. {Path(target) / 'run.json'}", USAGE
        )
    doc = ctx.client().export_run(ctx.args.id)
    text = journal_file.dumps(doc)
    if target in (None, "-"):
        sys.stdout.write(text)
        return 0
    _write_whole(Path(target), text)
    print(f"exported run {ctx.args.id} ({plural(len(doc['events']), 'event')}) to {target}")
    return 0


def _write_whole(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` all at once: a reader never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
