"""The command line: ``python -m benchmarks [--raw] [--repeat N] [--json PATH] ...``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from benchmarks.model import Settings
from benchmarks.registry import BACKEND_CHOICES, BACKENDS, SYSTEMS, WORKLOADS, expand
from benchmarks.report import machine, postgres_version, table, write_json
from benchmarks.runner import BASE, baseline_root, plan, run


def parser() -> argparse.ArgumentParser:
    """The argument parser."""
    measured = [k for k, w in WORKLOADS.items() if not w.is_reference]
    p = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Benchmarks of durable, interleaved with their references.",
    )
    p.add_argument(
        "workloads",
        nargs="*",
        metavar="WORKLOAD",
        help=f"workloads to run, or w2 for all of w2-*  (default: all of {', '.join(measured)})",
    )
    p.add_argument(
        "--raw",
        action="store_true",
        help="also measure the store's own single-row commit rate (1 and 8 clients), the "
        "ratios' references",
    )
    p.add_argument(
        "--compare",
        action="append",
        default=[],
        choices=[s for s in SYSTEMS if s not in ("raw", "durable")],
        help="also measure the same workloads on this peer (needs the `bench` extra)",
    )
    p.add_argument(
        "--backend",
        action="append",
        choices=BACKEND_CHOICES,
        help="backends to run on (repeatable, or all; default: sqlite)",
    )
    p.add_argument(
        "--postgres-url",
        default=None,
        help="server for --backend postgres (default: $DURABLE_BENCH_POSTGRES_URL, else "
        "$DURABLE_TEST_POSTGRES_URL); each measurement uses a new schema, dropped after",
    )
    p.add_argument("--repeat", type=int, default=3, help="repetitions, interleaved (default 3)")
    p.add_argument("--runs", type=int, default=None, help="W1: timed runs per repetition")
    p.add_argument("--rows", type=int, default=None, help="raw: timed commits per repetition")
    p.add_argument(
        "--w2-runs", type=int, default=None, help="W2: runs started per repetition (default 500)"
    )
    p.add_argument(
        "--w5-runs", type=int, default=None, help="W5: wake-ups timed per repetition (default 50)"
    )
    p.add_argument(
        "--w10-runs", type=int, default=None, help="W10: cancels timed per repetition (default 30)"
    )
    p.add_argument(
        "--w16-runs",
        type=int,
        default=None,
        help="W16: unfinished runs in the log that each check replays (default 10000)",
    )
    # W3/W4/W6/W7
    p.add_argument(
        "--w3-children", type=int, default=None, help="W3: children of the fan-out (default 1000)"
    )
    p.add_argument(
        "--w4-runs", type=int, default=None, help="W4: runs of 10 sleeping steps (default 500)"
    )
    p.add_argument(
        "--w4-lease-timeout",
        type=float,
        default=None,
        help="W4: the App's lease_timeout in seconds (default 5)",
    )
    p.add_argument(
        "--w6-sleeping", type=int, default=None, help="W6: runs parked in sleep (default 10000)"
    )
    p.add_argument(
        "--w6-concurrent",
        type=int,
        default=None,
        help="W6: concurrent async runs in a slow step (default 1000)",
    )
    p.add_argument(
        "--w7-finished",
        type=int,
        default=None,
        help="W7: finished runs bulk-inserted into the big log (default 1000000)",
    )
    p.add_argument(
        "--w7-runs", type=int, default=None, help="W7: timed one-step runs per log (default 200)"
    )
    p.add_argument("--quick", action="store_true", help="tiny counts: a smoke test, not figures")
    p.add_argument("--json", metavar="PATH", default=None, help="write the results as JSON")
    p.add_argument("--tmpdir", default=None, help="parent folder of the temporary databases")
    p.add_argument(
        "--isolate", action="store_true", help="run each measurement in a fresh subprocess"
    )
    p.add_argument("-q", "--quiet", action="store_true", help="no per-repetition progress")
    p.add_argument(
        "--baseline",
        metavar="DIR",
        default=None,
        help="also run durable's workloads on the durable package of another checkout (a git "
        "worktree of an earlier commit), interleaved cell by cell, each in a fresh "
        "interpreter, and add a 'vs base' column (ours over theirs)",
    )
    p.add_argument("--list", action="store_true", help="list the workloads and exit")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmarks; 0 if every planned cell that has an implementation succeeded."""
    args = parser().parse_args(argv)
    if args.list:
        for key, w in WORKLOADS.items():
            impls = ", ".join(f"{s}:{b}" for s, backends in w.systems.items() for b in backends)
            print(f"{key:<6} {w.title}  [{impls}]")
        return 0
    try:
        workloads = expand([w.lower() for w in args.workloads]) or [
            k for k, w in WORKLOADS.items() if not w.is_reference
        ]
    except KeyError as exc:
        print(f"unknown workload: {exc.args[0]}; see --list", file=sys.stderr)
        return 2
    if args.repeat < 1:
        print("--repeat must be at least 1", file=sys.stderr)
        return 2
    if "dbos" in args.compare:
        from benchmarks.peer_dbos import MISSING, available

        if not available():
            print(MISSING, file=sys.stderr)
            return 2
    chosen = args.backend or ["sqlite"]
    backends = [b for b in BACKENDS if b in chosen or "all" in chosen]
    settings = (
        Settings.quick(args.tmpdir, args.postgres_url)
        if args.quick
        else Settings(tmpdir=args.tmpdir, postgres_url=args.postgres_url)
    )
    overrides = {
        k: v
        for k, v in (
            ("runs", args.runs),
            ("rows", args.rows),
            ("w2_runs", args.w2_runs),
            ("w5_runs", args.w5_runs),
            ("w10_runs", args.w10_runs),
            ("w16_runs", args.w16_runs),
            # W3/W4/W6/W7
            ("w3_children", args.w3_children),
            ("w4_runs", args.w4_runs),
            ("w4_lease_timeout", args.w4_lease_timeout),
            ("w6_sleeping", args.w6_sleeping),
            ("w6_concurrent", args.w6_concurrent),
            ("w7_finished", args.w7_finished),
            ("w7_runs", args.w7_runs),
        )
        if v is not None
    }
    if overrides:
        settings = Settings(**{**settings.to_dict(), **overrides})

    base_root = None
    if args.baseline:
        try:
            base_root = baseline_root(args.baseline)
        except ValueError as exc:
            print(exc, file=sys.stderr)
            return 2
    cells = plan(workloads, backends, args.raw, args.compare, baseline=base_root is not None)
    progress = None if args.quiet else (lambda msg: print(msg, file=sys.stderr, flush=True))
    results = run(
        cells, settings, args.repeat, isolate=args.isolate, progress=progress, base_root=base_root
    )
    peers = [*args.compare, *([BASE] if base_root else [])]

    info = machine()
    print(
        f"durable benchmarks: {args.repeat} repetition(s), interleaved; "
        f"median, min-max and IQR over repetitions"
        + ("  [--quick: counts too small to quote]" if args.quick else "")
    )
    print(f"machine: {info['cpu']}, {info['cpus']} cpus, {info['platform']}")
    print(f"python {info['python']}, sqlite {info['sqlite']}")
    if "postgres" in backends:
        print(f"postgres: {postgres_version(settings)}")
    print()
    print(table(results, peers=peers))
    if not args.raw:
        print("\n  (run with --raw for the ratio against the store's own single-row commit)")
    if args.json:
        meta = {
            "machine": info,
            "argv": list(sys.argv[1:] if argv is None else argv),
            "repeat": args.repeat,
            "quick": args.quick,
            "isolate": args.isolate,
            "settings": settings.to_dict(),
        }
        write_json(args.json, results, meta)
        print(f"\nwrote {args.json}")
    failed = [r for r in results if r.skipped and r.skipped.startswith("error:")]
    return 1 if failed else 0
