"""The command line: ``python -m benchmarks [--raw] [--repeat N] [--json PATH] ...``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from benchmarks.model import Settings
from benchmarks.registry import BACKENDS, SYSTEMS, WORKLOADS
from benchmarks.report import machine, table, write_json
from benchmarks.runner import plan, run


def parser() -> argparse.ArgumentParser:
    """The argument parser."""
    measured = [k for k, w in WORKLOADS.items() if w.reference is not None]
    p = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Benchmarks of durable, interleaved with their references.",
    )
    p.add_argument(
        "workloads",
        nargs="*",
        metavar="WORKLOAD",
        help=f"workloads to run (default: all of {', '.join(measured)})",
    )
    p.add_argument(
        "--raw",
        action="store_true",
        help="also measure the store's own single-row commit cost, the ratios' reference",
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
        choices=BACKENDS,
        help="backends to run on (repeatable; default: sqlite)",
    )
    p.add_argument("--postgres-url", default=None, help="server for --backend postgres")
    p.add_argument("--repeat", type=int, default=5, help="repetitions, interleaved (default 5)")
    p.add_argument("--runs", type=int, default=None, help="W1: timed runs per repetition")
    p.add_argument("--rows", type=int, default=None, help="raw: timed commits per repetition")
    p.add_argument("--quick", action="store_true", help="tiny counts: a smoke test, not figures")
    p.add_argument("--json", metavar="PATH", default=None, help="write the results as JSON")
    p.add_argument("--tmpdir", default=None, help="parent folder of the temporary databases")
    p.add_argument(
        "--isolate", action="store_true", help="run each measurement in a fresh subprocess"
    )
    p.add_argument("-q", "--quiet", action="store_true", help="no per-repetition progress")
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
    unknown = [w for w in args.workloads if w.lower() not in WORKLOADS]
    if unknown:
        print(f"unknown workload(s): {', '.join(unknown)}; see --list", file=sys.stderr)
        return 2
    if args.repeat < 1:
        print("--repeat must be at least 1", file=sys.stderr)
        return 2
    workloads = [w.lower() for w in args.workloads] or [
        k for k, w in WORKLOADS.items() if w.reference is not None
    ]
    backends = args.backend or ["sqlite"]
    settings = (
        Settings.quick(args.tmpdir, args.postgres_url)
        if args.quick
        else Settings(tmpdir=args.tmpdir, postgres_url=args.postgres_url)
    )
    overrides = {k: v for k, v in (("runs", args.runs), ("rows", args.rows)) if v is not None}
    if overrides:
        settings = Settings(**{**settings.to_dict(), **overrides})

    cells = plan(workloads, backends, args.raw, args.compare)
    progress = None if args.quiet else (lambda msg: print(msg, file=sys.stderr, flush=True))
    results = run(cells, settings, args.repeat, isolate=args.isolate, progress=progress)

    info = machine()
    print(
        f"durable benchmarks: {args.repeat} repetition(s), interleaved; "
        f"median, min-max and IQR over repetitions"
        + ("  [--quick: counts too small to quote]" if args.quick else "")
    )
    print(f"machine: {info['cpu']}, {info['cpus']} cpus, {info['platform']}")
    print(f"python {info['python']}, sqlite {info['sqlite']}")
    print()
    print(table(results, peers=args.compare))
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
