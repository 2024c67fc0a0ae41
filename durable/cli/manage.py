"""``durable start | resume | cancel | signal | replay``: acting on runs."""

from __future__ import annotations

from typing import Any

import durable
from durable.cli.context import Context
from durable.cli.errors import NONDETERMINISM, USAGE, CliError
from durable.cli.loading import parse_duration, parse_json
from durable.cli.output import dump_json, jsonable, run_dict
from durable.cli.watch import exit_code_of

__all__ = ["cancel", "replay", "resume", "signal", "start"]


def _report(ctx: Context, info: durable.RunInfo, verb: str) -> None:
    if ctx.json:
        dump_json(run_dict(info))
    else:
        print(f"{verb} {info.id} ({info.workflow}): {info.status.value}")


def _arguments(ctx: Context) -> tuple[list[Any], dict[str, Any]]:
    """ARGS_JSON (an array is the argument list, any other value the one argument) and
    ``--kwargs`` (an object)."""
    a = ctx.args
    args: list[Any] = []
    if a.args_json is not None:
        value = parse_json(a.args_json, "ARGS_JSON")
        args = value if isinstance(value, list) else [value]
    kwargs: dict[str, Any] = {}
    if a.kwargs is not None:
        kwargs = parse_json(a.kwargs, "--kwargs")
        if not isinstance(kwargs, dict):
            raise CliError("--kwargs must be a JSON object", USAGE)
    return args, kwargs


def start(ctx: Context) -> int:
    """``start WORKFLOW [ARGS_JSON]``: start a run; with ``--wait``, wait for its result."""
    a = ctx.args
    args, kwargs = _arguments(ctx)
    delay = parse_duration(a.delay) if a.delay else 0.0
    run_timeout = parse_duration(a.run_timeout) if a.run_timeout else None
    retry = durable.Retry(attempts=a.retries + 1) if a.retries is not None else None
    client = ctx.client()
    try:
        h = client.start(
            a.workflow,
            *args,
            id=a.id,
            queue=a.queue,
            priority=a.priority,
            delay=delay,
            timeout=run_timeout,
            retry=retry,
            dedup_key=a.dedup_key,
            **kwargs,
        )
    except (TypeError, ValueError) as exc:
        if isinstance(exc, durable.DurableError) and not isinstance(
            exc, durable.InvalidOptionError
        ):
            raise
        raise CliError(str(exc), USAGE) from None
    if not a.wait:
        _report(ctx, h.info(), "started")
        return 0
    timeout = parse_duration(a.timeout) if a.timeout else None
    try:
        result = h.result(timeout=timeout)
    except (durable.RunFailedError, durable.RunCancelledError):
        info = h.info()
        _report(ctx, info, "ended")
        return exit_code_of(info.status)
    if ctx.json:
        dump_json({**run_dict(h.info()), "result": jsonable(result)})
    else:
        dump_json(result)
    return 0


def _left_as_is(ctx: Context, info: durable.RunInfo, why: str) -> None:
    if ctx.json:
        dump_json(run_dict(info))
    else:
        print(f"{info.id} ({info.workflow}) {why}: left as it is")


def _many(ctx: Context, verb: str) -> int | None:
    """``cancel``/``resume`` without an ID: the runs that the filters (or ``--all``) pick,
    through ``client.cancel_many`` / ``resume_many``; ``None`` when an ID is given."""
    a = ctx.args
    filters = a.status is not None or a.workflow is not None or a.queue is not None
    if a.id is not None:
        if filters or a.all:
            raise CliError(f"{verb} takes a run's ID, or filters (or --all), not both", USAGE)
        return None
    if not filters and not a.all:
        raise CliError(
            f"{verb} needs a run's ID, or filters (--status, --workflow, --queue), or --all",
            USAGE,
        )
    client = ctx.client()
    bulk = client.cancel_many if verb == "cancel" else client.resume_many
    try:
        n = bulk(a.status, a.workflow, a.queue, all_runs=a.all)
    except durable.InvalidOptionError as exc:
        raise CliError(str(exc), USAGE) from None
    done = "cancelled" if verb == "cancel" else "resumed"
    if ctx.json:
        dump_json({done: n})
    else:
        print(f"{done} {n} run{'' if n == 1 else 's'}")
    return 0


def resume(ctx: Context) -> int:
    """``resume ID``: continue a failed or cancelled run from its journal, or retry a
    blocked one (a run in any other state is left as it is, and said so; exit 0 either
    way). Without ID, the runs that the filters pick (``client.resume_many``)."""
    many = _many(ctx, "resume")
    if many is not None:
        return many
    client = ctx.client()
    before = client.get(ctx.args.id).info().status
    h = client.resume(ctx.args.id)
    info = h.info()
    if before is durable.Status.COMPLETED:
        _left_as_is(ctx, info, "is already completed")
    elif before not in (durable.Status.FAILED, durable.Status.CANCELLED, durable.Status.BLOCKED):
        _left_as_is(ctx, info, f"has not ended ({before.value}), nothing to resume")
    else:
        _report(ctx, info, "resumed")
    return 0


def cancel(ctx: Context) -> int:
    """``cancel ID``: cancel a run and its unfinished children (a run that a worker executes
    is asked to stop and ends within its App's cancel grace; a finished run is left as it
    is, and said so; exit 0 either way). Without ID, the runs that the filters pick
    (``client.cancel_many``)."""
    many = _many(ctx, "cancel")
    if many is not None:
        return many
    client = ctx.client()
    before = client.get(ctx.args.id).info().status
    outcome = client.cancel(ctx.args.id)
    info = client.get(ctx.args.id).info()
    if outcome is durable.CancelOutcome.FINISHED:
        _left_as_is(ctx, info, f"had already finished ({before.value})")
    elif outcome is durable.CancelOutcome.REQUESTED:
        _report(ctx, info, "asked to stop")
    else:
        _report(ctx, info, "cancelled")
    return 0


def signal(ctx: Context) -> int:
    """``signal ID NAME [JSON]``: send a signal to a run."""
    a = ctx.args
    payload = parse_json(a.payload, "the signal's JSON payload") if a.payload is not None else None
    ctx.client().signal(a.id, a.name, payload)
    if ctx.json:
        dump_json({"id": a.id, "signal": a.name, "payload": payload})
    else:
        print(f"signalled {a.id}: {a.name}")
    return 0


def replay(ctx: Context) -> int:
    """``replay ID --app MODULE:APP``: run today's code against the journal, executing no
    step; exit 5 if the code no longer matches, 1 if the replayed code fails."""
    try:
        result = ctx.client().replay(ctx.args.id)
    except durable.NonDeterminismError as exc:
        raise CliError(
            f"replay of {ctx.args.id} does not match its journal: NonDeterminismError: {exc}",
            NONDETERMINISM,
        ) from exc
    info = ctx.client().get(ctx.args.id).info()
    finished = info.status is durable.Status.COMPLETED
    if ctx.json:
        dump_json({"id": info.id, "matches": True, "finished": finished, "result": result})
    elif finished:
        print(f"replay of {info.id} matches its journal; result:")
        dump_json(result)
    else:
        print(f"replay of {info.id} matches its journal so far ({info.status.value})")
    return 0
