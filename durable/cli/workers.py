"""``durable workers``: who is working, from the workers' rows of the log."""

from __future__ import annotations

import durable
from durable.cli.context import Context
from durable.cli.output import dump_json, fmt_time, table

__all__ = ["not_served", "workers"]

HEADERS = ("ID", "HOST", "PID", "QUEUES", "WORKFLOWS", "VERSION", "RUNNING", "STARTED", "SEEN")


def _names(names: tuple[str, ...] | None) -> str:
    return "(all)" if names is None else ", ".join(names)


def workers(ctx: Context) -> int:
    """``workers``: the live workers, by id (``--json``: one object per worker)."""
    live = ctx.client().workers()
    if ctx.json:
        dump_json(live)
        return 0
    if not live:
        print("no live worker")
        return 0
    table(
        HEADERS,
        [
            (
                w.id,
                w.host,
                w.pid,
                _names(w.queues),
                _names(w.workflows),
                w.version or "",
                len(w.running),
                fmt_time(w.started_at),
                fmt_time(w.last_seen),
            )
            for w in live
        ],
    )
    return 0


def not_served(client: durable.Client, info: durable.RunInfo) -> bool:
    """Whether ``info`` waits for a worker and no live worker takes its workflow and queue."""
    if info.status.is_terminal or info.status is durable.Status.RUNNING:
        return False
    return not any(w.serves(info.workflow, info.queue) for w in client.workers())
