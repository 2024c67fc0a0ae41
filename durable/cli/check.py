"""``durable check --app MODULE:APP``: replay the unfinished runs against the App's code,
executing nothing and writing nothing, before that code is deployed.

Exits 0 when the code replays every run it looked at, 5 when some run would be parked
``BLOCKED`` (the table names where and why), 1 when the replayed code of some run raises.
"""

from __future__ import annotations

import os

from durable.cli.context import Context
from durable.cli.errors import FAILED, NONDETERMINISM, OK, USAGE, CliError
from durable.cli.output import dump_json

__all__ = ["check"]


def check(ctx: Context) -> int:
    """``check --app MODULE:APP [--status S] [--workflow W] [--finished N] [--jobs N]``."""
    a = ctx.args
    app = ctx.app(a.app)
    if not app.registry.workflows:
        raise CliError(
            f"{a.app!r} registers no workflow: there is no code to check the runs against",
            USAGE,
        )
    jobs = a.jobs if a.jobs is not None else os.cpu_count() or 1
    try:
        report = ctx.client().check(a.status, a.workflow, a.finished, jobs=jobs)
    except ValueError as exc:
        raise CliError(str(exc), USAGE) from None
    if ctx.json:
        dump_json(report.to_dict())
    else:
        print(report.render())
    if report.blocked:
        return NONDETERMINISM
    return FAILED if report.failing else OK
