"""``durable worker | prune | stats``: running and looking after the log."""

from __future__ import annotations

import logging
import os
import sys

import durable
from durable.cli.context import Context
from durable.cli.errors import USAGE, CliError
from durable.cli.loading import parse_duration
from durable.cli.output import dump_json, fmt_seconds, jsonable, plural, table
from durable.redact import scrub

__all__ = ["ScrubbingFormatter", "prune", "stats", "worker"]

STATS_HEADERS = (
    *("WORKFLOW", "QUEUE", "DONE", "FAILED", "SUCCESS", "ERR/H", "P50", "P95"),
    *("PENDING", "RUNNING", "SLEEPING", "BLOCKED", "TOP ERROR"),
)


LOG_FORMAT = "%(asctime)s.%(msecs)03d %(levelname)s %(name)s: %(message)s"


class ScrubbingFormatter(logging.Formatter):
    """Formats log records with the password of every URL in ``urls`` hidden."""

    def __init__(self, fmt: str, urls: tuple[str, ...]) -> None:
        super().__init__(fmt, datefmt="%Y-%m-%d %H:%M:%S")
        self.urls = urls

    def format(self, record: logging.LogRecord) -> str:
        """The record as a line, passwords hidden (its traceback too)."""
        return scrub(super().format(record), *self.urls)


def worker(ctx: Context) -> int:
    """``worker MODULE:APP``: run a worker until SIGTERM or SIGINT, then drain."""
    a = ctx.args
    app = ctx.app(a.app)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(ScrubbingFormatter(LOG_FORMAT, urls=ctx.urls))
    logging.basicConfig(level=getattr(logging, a.log_level.upper()), handlers=[handler])
    queues = a.queue or None
    print(
        f"durable worker: {plural(len(app.registry.workflows), 'workflow')} of {app.name!r}, "
        f"queues {', '.join(queues) if queues else '(all)'}, concurrency {a.concurrency}, "
        f"process pool {a.processes or os.cpu_count() or 1}; "
        "SIGTERM or Ctrl-C drains and stops",
        file=sys.stderr,
        flush=True,
    )
    app.run_worker(
        queues=queues,
        concurrency=a.concurrency,
        worker_id=a.worker_id,
        drain_timeout=a.drain_timeout,
        processes=a.processes,
    )
    print("durable worker: stopped", file=sys.stderr, flush=True)
    return 0


def prune(ctx: Context) -> int:
    """``prune``: delete whole finished runs beyond the limits given."""
    a = ctx.args
    if a.keep_completed is None and a.keep_failed is None and a.older_than is None:
        raise CliError("prune needs --keep-completed, --keep-failed or --older-than", USAGE)
    retention = durable.Retention(
        keep_completed=a.keep_completed,
        keep_failed=a.keep_failed,
        max_age=parse_duration(a.older_than) if a.older_than else None,
    )
    policy = dict.fromkeys(a.workflow, retention) if a.workflow else retention
    ids = ctx.client().prune(policy, dry_run=a.dry_run)
    if ctx.json:
        dump_json({"dry_run": a.dry_run, "count": len(ids), "ids": ids})
    else:
        verb = "would delete" if a.dry_run else "deleted"
        print(f"{verb} {plural(len(ids), 'finished run')}")
        for run_id in ids if a.verbose or a.dry_run else ():
            print(f"  {run_id}")
    return 0


def stats(ctx: Context) -> int:
    """``stats``: per workflow and queue, processing time, success, errors, queue depth."""
    rows = ctx.client().stats(ctx.args.window)  # seconds, or None for all (the parser's)
    if ctx.json:
        dump_json(
            [
                {
                    **jsonable(s),
                    "success_rate": s.success_rate,
                    "errors_per_hour": s.errors_per_hour,
                    "finished": s.finished,
                }
                for s in rows
            ]
        )
        return 0
    table(
        STATS_HEADERS,
        [
            (
                s.workflow,
                s.queue,
                s.completed,
                s.failed,
                "-" if s.success_rate is None else f"{s.success_rate:.0%}",
                "-" if s.errors_per_hour is None else f"{s.errors_per_hour:.2f}",
                fmt_seconds(s.p50_seconds),
                fmt_seconds(s.p95_seconds),
                s.pending,
                s.running,
                s.sleeping,
                s.blocked,
                f"{s.top_errors[0][0]} ×{s.top_errors[0][1]}" if s.top_errors else "",
            )
            for s in rows
        ],
    )
    return 0
