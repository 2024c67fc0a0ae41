"""Quickstart: a durable ETL pipeline that survives ``kill -9``.

Run it::

    pip install -e .
    python examples/quickstart.py

What it shows:

* A workflow is a plain decorated function; every call to a step inside it is journaled to
  an append-only log in SQLite (``durable.db`` in the current directory by default, the same
  file the ``durable`` command reads: ``durable runs list`` shows the run).
* The pipeline has three stages, ``extract``, ``transform`` and ``load``, 12 steps in all,
  each doing a little simulated work. It uses ``durable.stage``, ``durable.progress``,
  ``durable.message`` and ``durable.output``.
* The ``validate`` step has a ``Retry`` policy and fails its first attempt on purpose (it
  looks at ``durable.info().step_attempt``), so you can see a retry in the journal.
* The run has a fixed id, ``quickstart-1``. Starting a run with an id that exists returns the
  existing run, so running the script again *resumes* it instead of starting over.
* An embedded worker (``with app.worker():``) executes the run in this process while the
  script draws a live progress display from ``handle.info()`` and ``handle.events()``.

Try the crash: start the script, press Ctrl-C or ``kill -9`` it half-way, and start it again.
It says how many completed steps it found in the journal; those are replayed (their recorded
results are returned) and their bodies are not executed again. Every step body appends a line
to a small side file (``durable.db.steps.jsonl`` next to the database), which the script
reads at the end to prove it.

Once ``quickstart-1`` has completed, running the script again only prints its result. To see
the crash and the resume again, start a new run with ``--fresh``, kill it half-way, and resume
it with the command it prints (``--id`` and the new run's id: running ``--fresh`` again would
start yet another run).

Options: ``--database URL`` (or ``DURABLE_DATABASE_URL``), ``--step-seconds S``, ``--fresh``,
``--id RUN_ID``, ``--side-file PATH``; see ``--help``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import durable
from durable import App, Retry
from durable.redact import redact_url

DEFAULT_DATABASE = "sqlite:///durable.db"  # the default of durable.App and of `durable`
DEFAULT_RUN_ID = "quickstart-1"
BATCHES = 4
TOTAL_STEPS = BATCHES + 8  # extract: one step per batch; transform: 4; load: 4

# tests/test_examples.py runs every example that defines TEST_ARGS, with a temporary
# database passed as --database URL, and expects exit status 0.
TEST_ARGS = ["--step-seconds", "0.01"]


def _database_from_argv() -> str:
    """``--database URL`` on the command line, else ``$DURABLE_DATABASE_URL``, else the default.

    The App is created at import time (the decorators below need it), before ``main`` parses
    the full command line, so this looks at ``--database`` alone.
    """
    pre = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    pre.add_argument("--database")
    known, _ = pre.parse_known_args()
    return known.database or os.environ.get("DURABLE_DATABASE_URL") or DEFAULT_DATABASE


app = App("quickstart", database=_database_from_argv())

# Settings for the step bodies of this process (set by main from the command line). Step
# bodies may read anything: only the workflow function itself must be deterministic.
STEP_SECONDS = 0.3
SIDE_FILE: Path | None = None


def _work(label: str) -> None:
    """Simulated work: record that a step body runs in this process, then sleep a little."""
    info = durable.info()
    if SIDE_FILE is not None:
        line = {
            "pid": os.getpid(),
            "run": info.id,
            "step": info.step_name or label,
            "position": info.step_position,
            "attempt": info.step_attempt,
        }
        with SIDE_FILE.open("a", encoding="utf-8") as f:
            f.write(json.dumps(line) + "\n")
    time.sleep(STEP_SECONDS)


# --- steps -------------------------------------------------------------------------------


@app.step()
def fetch_batch(source: str, batch: int) -> list[dict[str, Any]]:
    """Extract: read one batch of orders from the (simulated) source."""
    _work("fetch_batch")
    return [
        {"order": f"{source}-{batch}-{i}", "amount": 10 * (batch + 1) + i, "region": "EU"}
        for i in range(5)
    ]


@app.step(retry=Retry(attempts=3, initial_delay=0.5, backoff=2.0, jitter=False))
def validate(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Transform: check the rows. Fails its first attempt in every run, to show a retry."""
    _work("validate")
    if durable.info().step_attempt == 1:
        raise ConnectionError("schema registry unavailable (simulated, first attempt only)")
    return [row for row in rows if row["amount"] > 0]


@app.step()
def clean(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Transform: normalise the fields."""
    _work("clean")
    return [{**row, "region": row["region"].lower()} for row in rows]


@app.step()
def enrich(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Transform: add a computed field (tax)."""
    _work("enrich")
    return [{**row, "tax": round(row["amount"] * 0.2, 2)} for row in rows]


@app.step()
def aggregate(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Transform: compute the totals."""
    _work("aggregate")
    return {
        "orders": len(rows),
        "revenue": float(sum(row["amount"] for row in rows)),
        "tax": round(sum(row["tax"] for row in rows), 2),
    }


@app.step()
def create_table(name: str) -> str:
    """Load: create the (simulated) destination table."""
    _work("create_table")
    return name


@app.step()
def load_rows(table: str, rows: list[dict[str, Any]]) -> int:
    """Load: write rows to the destination; returns how many were written."""
    _work("load_rows")
    return len(rows)


@app.step()
def publish_report(totals: dict[str, Any]) -> str:
    """Load: publish a one-line report."""
    _work("publish_report")
    orders, revenue, tax = int(totals["orders"]), totals["revenue"], totals["tax"]
    return f"{orders} orders, revenue {revenue:.2f}, tax {tax:.2f}"


# --- the workflow ------------------------------------------------------------------------


@app.workflow()
def etl_pipeline(source: str, batches: int) -> dict[str, Any]:
    """Extract, transform and load a few batches of orders, one journaled step at a time."""
    with durable.stage("extract"):
        rows: list[dict[str, Any]] = []
        for batch in range(batches):
            rows += fetch_batch(source, batch)
            durable.progress((batch + 1) / batches)
            durable.message(f"extracted batch {batch + 1}/{batches} ({len(rows)} rows so far)")
        durable.output("rows_extracted", len(rows))

    with durable.stage("transform"):
        rows = validate(rows)
        durable.progress(0.25)
        durable.message(f"validated {len(rows)} rows")
        rows = clean(rows)
        durable.progress(0.5)
        rows = enrich(rows)
        durable.progress(0.75)
        totals = aggregate(rows)
        durable.progress(1.0)
        durable.message(f"aggregated {int(totals['orders'])} orders")
        durable.output("totals", totals)

    with durable.stage("load"):
        table = create_table(f"{source}_facts")
        half = len(rows) // 2
        written = load_rows(table, rows[:half])
        durable.progress(0.5)
        written += load_rows(table, rows[half:])
        durable.progress(0.75)
        durable.message(f"loaded {written} rows into {table}")
        report = publish_report(totals)
        durable.progress(1.0)
        durable.output("report", report)

    return {"table": table, "rows_loaded": written, "report": report}


# --- the live display ---------------------------------------------------------------------


def _message_text(event: durable.LogEvent) -> str:
    data = event.data or {}
    for key in ("text", "message", "msg"):
        if isinstance(data.get(key), str):
            return data[key]
    return event.name or ""


def _error_text(error: Any) -> str:
    if isinstance(error, dict):
        return f"{error.get('type', 'Error')}: {error.get('message', '')}"
    return str(error or "")


class Progress:
    """A one-line progress display fed from a run's info and journal.

    On a terminal it redraws one line with ``\\r``; otherwise (a pipe, a log file, a test) it
    prints one line each time the stage, the step count or the last message changes.
    """

    BAR_WIDTH = 24

    def __init__(self, total: int, stream: Any = sys.stdout) -> None:
        self.total = total
        self.stream = stream
        self.tty = bool(getattr(stream, "isatty", lambda: False)())
        encoding = (getattr(stream, "encoding", None) or "").lower().replace("-", "")
        self.unicode = self.tty and encoding == "utf8"
        self.last: tuple[Any, ...] | None = None
        self.drawn = False

    def update(self, info: durable.RunInfo, events: list[durable.LogEvent]) -> None:
        stage = ""
        message = ""
        done: set[int | None] = set()
        for event in events:
            if event.type == "stage_entered":
                stage = event.name or stage
            elif event.type == "step_completed":
                done.add(event.position)
            elif event.type == "message":
                message = _message_text(event)
            elif event.type == "step_failed":
                retry = "retrying" if (event.data or {}).get("retryable") else "giving up"
                message = f"step {event.name} attempt {event.attempt} failed, {retry}"
                error = _error_text((event.data or {}).get("error"))
                if error:
                    message += f": {error}"
        stage = info.stage or stage or "-"
        status = str(info.status)
        state = (stage, len(done), message, status)
        if state == self.last:
            return
        self.last = state
        count = min(len(done), self.total)
        filled = round(self.BAR_WIDTH * count / self.total) if self.total else 0
        full, empty = ("█", "░") if self.unicode else ("#", ".")
        bar = full * filled + empty * (self.BAR_WIDTH - filled)
        extra = "" if status == "running" else f" ({status})"
        line = f"[{stage:<9}] [{bar}] {count:>2}/{self.total} steps{extra}  {message}".rstrip()
        if self.tty:
            width = _terminal_width()
            self.stream.write("\r\x1b[2K" + line[: width - 1])
            self.drawn = True
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self.tty and self.drawn:
            self.stream.write("\n")
            self.stream.flush()
            self.drawn = False


def _terminal_width() -> int:
    return shutil.get_terminal_size((100, 24)).columns or 100


def watch(handle: durable.RunHandle, progress: Progress, interval: float = 0.1) -> None:
    """Poll the run's info and journal, redrawing the display, until the run has ended."""
    while True:
        info = handle.info()
        progress.update(info, handle.events())
        if info.status.is_terminal:
            return
        time.sleep(interval)


# --- main ---------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=(
            "Run a 12-step durable ETL pipeline (extract, transform, load) with an embedded "
            "worker and a live progress display. Kill it (Ctrl-C or kill -9) and run it "
            "again: it resumes the same run from its journal, without executing completed "
            "steps again."
        ),
        epilog=(
            "The run id is fixed (quickstart-1), so running the script again resumes it; "
            "once it has completed, running again just prints its result. To crash and "
            "resume again, start a new run with --fresh, kill it, then resume it with "
            "--id and the id it printed (the script prints the whole command)."
        ),
    )
    parser.add_argument(
        "--database",
        metavar="URL",
        default=None,
        help=(
            "the log's database URL (default: $DURABLE_DATABASE_URL, else "
            f"{DEFAULT_DATABASE}, a file in the current directory)"
        ),
    )
    parser.add_argument(
        "--step-seconds",
        type=float,
        default=0.3,
        metavar="S",
        help="simulated work per step, in seconds (default: 0.3)",
    )
    group = parser.add_mutually_exclusive_group()
    group.add_argument(
        "--id",
        default=DEFAULT_RUN_ID,
        metavar="RUN_ID",
        help=f"the run's id; an existing run with this id is resumed (default: {DEFAULT_RUN_ID})",
    )
    group.add_argument(
        "--fresh",
        action="store_true",
        help=(
            "start a new run with a new id instead of resuming the fixed one "
            "(resume it later with --id and that id)"
        ),
    )
    parser.add_argument(
        "--side-file",
        metavar="PATH",
        default=None,
        help=(
            "file every step body appends a line to, to count executions "
            "(default: <database file>.steps.jsonl, or durable.steps.jsonl)"
        ),
    )
    args = parser.parse_args(argv)
    if args.step_seconds < 0:
        parser.error("--step-seconds must be >= 0")
    return args


def _default_side_file(database: str) -> Path:
    prefix = "sqlite:///"
    if database.startswith(prefix) and database[len(prefix) :] not in ("", ":memory:"):
        return Path(database[len(prefix) :].split("?", 1)[0] + ".steps.jsonl")
    return Path("durable.steps.jsonl")


def _script() -> str:
    """This file's path as the user would type it from the current directory."""
    here = Path(__file__)
    try:
        return str(here.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(here)


def _again(args: argparse.Namespace, run_id: str) -> str:
    """The command that resumes ``run_id``: this script, the same database, that id."""
    words = ["python", _script()]
    if args.database:
        words += ["--database", redact_url(args.database)]
    if args.step_seconds != 0.3:
        words += ["--step-seconds", f"{args.step_seconds:g}"]
    if args.side_file:
        words += ["--side-file", args.side_file]
    if run_id != DEFAULT_RUN_ID:
        words += ["--id", run_id]
    return " ".join(words)


def _durable_command(database: str) -> str:
    """``durable`` (or ``durable --database URL`` when the command would look elsewhere)."""
    cli_default = os.environ.get("DURABLE_DATABASE_URL") or DEFAULT_DATABASE
    return "durable" if database == cli_default else f"durable --database {redact_url(database)}"


def _executions(side_file: Path, run_id: str, pid: int) -> list[dict[str, Any]]:
    """The step bodies that process ``pid`` executed for ``run_id``, from the side file."""
    if not side_file.exists():
        return []
    found = []
    for line in side_file.read_text(encoding="utf-8").splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue  # a line cut short by kill -9
        if entry.get("pid") == pid and entry.get("run") == run_id:
            found.append(entry)
    return found


def _short(value: Any, limit: int = 72) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def main(argv: list[str] | None = None) -> int:
    global STEP_SECONDS, SIDE_FILE
    args = parse_args(argv)
    database = args.database or os.environ.get("DURABLE_DATABASE_URL") or DEFAULT_DATABASE
    STEP_SECONDS = args.step_seconds
    SIDE_FILE = Path(args.side_file) if args.side_file else _default_side_file(database)
    run_id = f"quickstart-{uuid.uuid4().hex[:8]}" if args.fresh else args.id

    client = app.client()
    print(f"database: {redact_url(database)}")
    print(f"side file: {SIDE_FILE}")

    # What does the journal hold before this process executes anything?
    replayed: set[int | None] = set()
    try:
        existing = client.get(run_id)
    except durable.RunNotFoundError:
        existing = None
    if existing is None:
        print(f"run {run_id}: new run ({TOTAL_STEPS} steps to execute)")
    else:
        replayed = {e.position for e in existing.events() if e.type == "step_completed"}
        status = existing.status()
        if status == durable.Status.COMPLETED:
            print(
                f"run {run_id}: already completed, all {len(replayed)} steps are in the journal; "
                f"to see a crash and a resume again, run `python {_script()} --fresh`, kill "
                "it half-way, then run the command it prints to resume that run"
            )
        else:
            print(
                f"run {run_id}: resumed run (status {status}); replaying {len(replayed)} of "
                f"{TOTAL_STEPS} steps from the journal, they will not be executed again"
            )
        if status in (durable.Status.FAILED, durable.Status.CANCELLED):
            print(f"run {run_id} had ended {status}; resuming it from its journal")
            client.resume(run_id)

    handle = client.start(etl_pipeline, "orders", BATCHES, id=run_id)
    if not handle.status().is_terminal:
        print(
            f"tip: press Ctrl-C or kill -9 this process, then run `{_again(args, run_id)}` "
            f"to resume run {run_id} from its journal"
        )

    progress = Progress(TOTAL_STEPS)
    started = time.monotonic()
    interrupted = False
    try:
        with app.worker():
            try:
                watch(handle, progress)
            except KeyboardInterrupt:
                interrupted = True
                progress.close()
                print("\ninterrupted: stopping the worker (press Ctrl-C again to quit at once)")
    except KeyboardInterrupt:
        # Quitting without a drain is like a crash: the journal has all it needs to resume.
        print("\nquit at once", flush=True)
        os._exit(130)
    progress.close()
    if interrupted:
        status = handle.status()
        print(f"worker stopped; run {run_id} is {status}")
        if not status.is_terminal:
            print(f"run `{_again(args, run_id)}` to resume run {run_id} from its journal")
        return 130

    try:
        result = handle.result(timeout=60)
    except durable.RunFailedError as exc:
        print(f"run {run_id} failed: {exc.error_type}: {exc.error_message}")
        return 1
    except durable.RunCancelledError:
        print(f"run {run_id} was cancelled")
        return 1
    elapsed = time.monotonic() - started

    print(f"\nrun {run_id} completed ({elapsed:.1f} s in this process)")
    print(f"result: {json.dumps(result, sort_keys=True, default=str)}")
    print("outputs:")
    for stage, values in handle.outputs().items():
        print(f"  {stage}:")
        for key, value in values.items():
            print(f"    {key}: {_short(value)}")

    executed = _executions(SIDE_FILE, run_id, os.getpid())
    again = [e for e in executed if e.get("position") in replayed]
    retries = sum(1 for e in executed if (e.get("attempt") or 1) > 1)
    print(
        f"step bodies executed in this process: {len(executed)} "
        f"({len(executed) - retries} steps + {retries} retries)"
    )
    print(
        f"replayed {len(replayed)} steps from the journal; "
        f"replayed steps executed again: {len(again)}"
    )
    cli = _durable_command(database)
    print(f"see it from the shell: `{cli} runs show {run_id}`, `{cli} runs events {run_id}`")
    return 0 if not again else 2


if __name__ == "__main__":
    sys.exit(main())
