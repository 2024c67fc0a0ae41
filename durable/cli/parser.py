"""The ``durable`` command's arguments: one sub-parser per command, each with its help."""

from __future__ import annotations

import argparse
import textwrap
from collections.abc import Callable

from durable.cli import check, manage, new, ops, runs, schedules, ui, watch, workers
from durable.cli.context import Context
from durable.cli.errors import EXIT_CODES, CliError
from durable.cli.loading import parse_duration
from durable.types import Status

__all__ = ["Handler", "build_parser"]

Handler = Callable[[Context], int]

_STATUSES = [s.value for s in Status]


def _epilog() -> str:
    codes = "\n".join(f"  {code:>3}  {meaning}" for code, meaning in EXIT_CODES)
    return (
        "The database is --database URL, else $DURABLE_DATABASE_URL, else sqlite:///durable.db.\n"
        f"\nexit codes:\n{codes}"
    )


def _positive_float(text: str) -> float:
    """An argument that is a number above 0 (argparse exits 2 with its message if not)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a number above 0, not {text!r}")
    return value


def _int_from(least: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
        if value < least:
            raise argparse.ArgumentTypeError(f"must be {least} or more, not {text!r}")
        return value

    parse.__name__ = "integer"  # argparse names the type in some messages
    return parse


_non_negative_int = _int_from(0)
_positive_int = _int_from(1)


def _window(text: str) -> float | None:
    """``stats --window``: a duration above 0 in seconds, or ``None`` for ``all``."""
    if text == "all":
        return None
    try:
        seconds = parse_duration(text)
    except CliError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    if seconds <= 0:
        raise argparse.ArgumentTypeError(f"must be a duration above 0 or 'all', not {text!r}")
    return seconds


class _Formatter(argparse.RawDescriptionHelpFormatter):
    def __init__(self, prog: str) -> None:
        super().__init__(prog, max_help_position=32)


def _common(json: bool) -> argparse.ArgumentParser:
    """Options every command accepts after its name too (``durable runs list --json``)."""
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument(
        "--database",
        metavar="URL",
        default=argparse.SUPPRESS,
        help="the log: sqlite:///FILE or postgresql://... (default: $DURABLE_DATABASE_URL)",
    )
    if json:
        p.add_argument("--json", action="store_true", help="print JSON (for scripts)")
    return p


def _add(
    sub: argparse._SubParsersAction[argparse.ArgumentParser],
    name: str,
    handler: Handler,
    help: str,
    description: str,
    *,
    json: bool = True,
    creates: bool = False,
) -> argparse.ArgumentParser:
    p = sub.add_parser(
        name,
        help=help,
        description=textwrap.fill(description, 88),
        epilog=_epilog(),
        formatter_class=_Formatter,
        parents=[_common(json)],
    )
    p.set_defaults(handler=handler, creates=creates)
    return p


def _group(
    sub: argparse._SubParsersAction[argparse.ArgumentParser],
    name: str,
    help: str,
    description: str,
    commands: str,
) -> argparse._SubParsersAction[argparse.ArgumentParser]:
    """A command of sub-commands (``durable runs list``); returns its sub-parsers."""
    p = sub.add_parser(
        name,
        help=help,
        description=description,
        epilog=_epilog(),
        formatter_class=_Formatter,
        parents=[_common(json=False)],  # `durable runs --database URL list` too
    )
    group = p.add_subparsers(dest=f"{name}_command", metavar=commands)
    group.required = True
    return group


def _run_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    rs = _group(
        sub,
        "runs",
        "list runs, show one, read its journal, watch it, export it",
        "Read runs: `runs list`, `runs show ID`, `runs events ID`, `runs watch ID`, "
        "`runs export ID`.",
        "{list,show,events,watch,export}",
    )
    lst = _add(rs, "list", runs.runs_list, "list runs, newest first", "List runs, newest first.")
    lst.add_argument("--status", choices=_STATUSES, help="only runs in this status")
    lst.add_argument("--workflow", help="only runs of this workflow")
    lst.add_argument("--queue", help="only runs on this queue")
    lst.add_argument(
        "--limit", type=_positive_int, default=100, help="at most this many (default 100)"
    )
    lst.add_argument(
        "--before",
        metavar="ID",
        help="only runs older than run ID in this order: the last ID of a page gives the next",
    )
    show = _add(
        rs, "show", runs.runs_show, "one run and its outputs", "Show one run and its outputs."
    )
    show.add_argument("id", help="the run's id")
    ev = _add(
        rs,
        "events",
        runs.runs_events,
        "a run's journal",
        "Print a run's journal (its events), oldest first.",
    )
    ev.add_argument("id", help="the run's id")
    w = _add(
        rs,
        "watch",
        watch.runs_watch,
        "follow a run until it ends",
        "Follow a run until it ends: live progress bars on a terminal, one line per event "
        "into a pipe, JSON lines with --json. Exits 0 if the run completed, 1 if it failed, "
        "4 if it was cancelled.",
    )
    w.add_argument("id", help="the run's id")
    w.add_argument(
        "--interval",
        type=_positive_float,
        default=0.25,
        help="not used any more: events are pushed as they are committed (accepted for "
        "scripts that pass it)",
    )
    ex = _add(
        rs,
        "export",
        runs.runs_export,
        "write a run as a JSON journal (a test fixture)",
        "Write one run, its row and every event of its journal, as a JSON document: a "
        "golden journal that durable.testing.assert_replays(app, path) replays against "
        "the code in a test. To stdout, or to FILE with -o (its folders are created).",
        json=False,
    )
    ex.add_argument("id", help="the run's id")
    ex.add_argument("-o", "--output", metavar="FILE", help="write to FILE (default: stdout)")


def _action_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    st = _add(
        sub,
        "start",
        manage.start,
        "start a run of a workflow",
        "Start a run of WORKFLOW (by name; no code needed: the run waits, pending, for a "
        "worker that registers it). ARGS_JSON is a JSON array of the positional arguments; "
        "any other JSON value is the one argument.",
        creates=True,
    )
    st.add_argument("workflow", help="the workflow's registered name")
    st.add_argument("args_json", nargs="?", metavar="ARGS_JSON", help="e.g. '[\"o-1\", 100]'")
    st.add_argument("--kwargs", metavar="JSON", help="keyword arguments, a JSON object")
    st.add_argument("--id", help="the run's id, also its idempotency key")
    st.add_argument("--queue", help="the queue (default: the workflow's, else 'default')")
    st.add_argument("--priority", type=int, default=0, help="higher runs first (default 0)")
    st.add_argument("--delay", metavar="DURATION", help="start no sooner than this (30s, 5m)")
    st.add_argument("--wait", action="store_true", help="wait for the result and print it")
    st.add_argument("--timeout", metavar="DURATION", help="with --wait: give up after this")
    st.add_argument(
        "--run-timeout",
        metavar="DURATION",
        help="the run's own timeout, from its first start, over the workflow's (30s, 2h)",
    )
    st.add_argument(
        "--retries",
        type=_non_negative_int,
        metavar="N",
        help="retry the run's workflow code N times after a failure, over the workflow's "
        "policy (0: never)",
    )
    st.add_argument("--app", metavar="MODULE:APP", help="check the name and arguments")
    st.add_argument(
        "--dedup-key",
        metavar="KEY",
        help="refuse the start while an unfinished run holds KEY (the id stays free)",
    )
    for name, fn, text, which in (
        (
            "resume",
            manage.resume,
            "continue a failed or cancelled run, or retry a blocked one",
            "failed, cancelled and blocked",
        ),
        ("cancel", manage.cancel, "cancel a run and its unfinished children", "unfinished"),
    ):
        p = _add(
            sub,
            name,
            fn,
            text,
            text[0].upper() + text[1:] + ". Without ID, every "
            f"{which} run that matches every filter given (--status, --workflow, --queue), "
            "or with --all every one; prints how many.",
        )
        p.add_argument("id", nargs="?", help="the run's id")
        p.add_argument("--status", choices=_STATUSES, help="without ID: only runs in this status")
        p.add_argument("--workflow", help="without ID: only runs of this workflow")
        p.add_argument("--queue", help="without ID: only runs on this queue")
        p.add_argument(
            "--all", action="store_true", help=f"without ID or a filter: every {which} run"
        )
    rp = _add(
        sub,
        "replay",
        manage.replay,
        "check today's code against a run's journal",
        "Re-run a run's workflow code against its journal, executing no step. Needs the "
        "code: --app MODULE:APP. Exits 5 if the code no longer matches the journal.",
    )
    rp.add_argument("id", help="the run's id")
    rp.add_argument("--app", metavar="MODULE:APP", required=True, help="the App with the code")
    ck = _add(
        sub,
        "check",
        check.check,
        "check the App's code against every unfinished run, before deploying it",
        "Replay every unfinished run (and with --finished N the N newest finished ones) "
        "against the code of MODULE:APP, executing no step and writing nothing, in --jobs "
        "processes. Prints the runs that a worker of this code would park blocked (where its "
        "code and the run's journal part: what the code calls, what the journal holds) or "
        "fail, and a summary per workflow. Exits 0 if the code replays every run, 5 if some "
        "run would block, 1 if the code of some run would raise.",
    )
    ck.add_argument("--app", metavar="MODULE:APP", required=True, help="the App with the code")
    ck.add_argument("--status", choices=_STATUSES, help="only runs in this status")
    ck.add_argument("--workflow", help="only runs of this workflow")
    ck.add_argument(
        "--finished",
        type=_non_negative_int,
        default=0,
        metavar="N",
        help="also the N newest finished runs (default 0)",
    )
    ck.add_argument(
        "--jobs",
        type=_positive_int,
        metavar="N",
        help="processes that replay the runs (default: the CPU count)",
    )
    sg = _add(
        sub,
        "signal",
        manage.signal,
        "send a signal to a run",
        "Send signal NAME with an optional JSON payload; the run's wait_signal(NAME) gets it.",
    )
    sg.add_argument("id", help="the run's id")
    sg.add_argument("name", help="the signal's name")
    sg.add_argument("payload", nargs="?", metavar="JSON", help="the payload, as JSON")


def _ops_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    wk = _add(
        sub,
        "worker",
        ops.worker,
        "run a worker for an App",
        "Import MODULE:APP (from the current directory) and run a worker until SIGTERM or "
        "SIGINT, then drain: in-flight steps finish, other runs are handed back.",
        json=False,
        creates=True,
    )
    wk.add_argument("app", metavar="MODULE:APP", help="e.g. shop.workers:app")
    wk.add_argument("--queue", action="append", help="a queue to serve (repeat; default all)")
    wk.add_argument(
        "--concurrency", type=_positive_int, default=16, help="runs at once (default 16)"
    )
    wk.add_argument(
        "--processes",
        type=_positive_int,
        default=None,
        help='the process pool of executor="process" steps (default: the CPU count)',
    )
    wk.add_argument("--worker-id", help="the worker's identity (default host/pid)")
    wk.add_argument("--drain-timeout", type=float, default=30.0, help="seconds (default 30)")
    wk.add_argument(
        "--log-level",
        default="info",
        choices=["debug", "info", "warning", "error"],
        help="the level of the log records printed on stderr (default info)",
    )
    pr = _add(
        sub,
        "prune",
        ops.prune,
        "delete old finished runs",
        "Delete whole finished runs (row, journal, signals) beyond the limits given; a run "
        "goes when every limit given lets it go. Never deletes a run that is not finished, "
        "nor a child whose parent has not completed.",
    )
    pr.add_argument(
        "--keep-completed", type=_non_negative_int, metavar="N", help="keep the newest N completed"
    )
    pr.add_argument(
        "--keep-failed",
        type=_non_negative_int,
        metavar="N",
        help="keep the newest N failed or cancelled",
    )
    pr.add_argument(
        "--older-than", metavar="DURATION", help="delete only runs that ended longer ago (7d)"
    )
    pr.add_argument("--workflow", action="append", help="only this workflow (repeat)")
    pr.add_argument("--dry-run", action="store_true", help="delete nothing; list what would go")
    pr.add_argument("--verbose", "-v", action="store_true", help="list the deleted ids")
    sts = _add(
        sub,
        "stats",
        ops.stats,
        "processing time, success and queue depth per workflow",
        "Per workflow and queue: processing time (p50, p95, first taken to end) and success "
        "rate of the runs that ended in the window, failed runs per hour and the most "
        "frequent error, and the runs pending (the queue depth), running, sleeping and "
        "blocked now.",
    )
    sts.add_argument("--window", type=_window, default="24h", help="a duration (24h, 7d) or 'all'")
    _add(
        sub,
        "workers",
        workers.workers,
        "the live workers: who is working, on what",
        "List the live workers of the log (those whose last heartbeat is within their lease "
        "timeout): id, host, pid, the queues they serve, the workflows they register, their "
        "App's code version, how many runs they hold, when they started and were last seen.",
    )


def build_parser() -> argparse.ArgumentParser:
    """The parser of ``durable``: global options and one sub-command per action."""
    from durable import __version__

    parser = argparse.ArgumentParser(
        prog="durable",
        description="Manage durable runs from a shell: run workers, start, inspect, "
        "watch, cancel, resume, replay and signal runs, check new code against the runs "
        "before a deploy, prune old ones, see statistics; write a new project (durable new).",
        epilog=_epilog(),
        formatter_class=_Formatter,
    )
    parser.add_argument("--version", action="version", version=f"durable {__version__}")
    parser.add_argument("--database", metavar="URL", help="the log (default $DURABLE_DATABASE_URL)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    _ops_commands(sub)
    _action_commands(sub)
    _run_commands(sub)
    schedules.register(sub, _add, _group)
    ui.register(sub, _add)
    new.register(sub)
    return parser
