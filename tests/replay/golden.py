"""Golden journals: dump a log's runs to JSON, load them back into a fresh SQLite log.

A golden file keeps, for each run of a log, its ``durable_runs`` row and its journal rows
(seq, type, position, name, attempt, epoch, at, and ``data`` as base64 of the stored bytes),
exactly as the store wrote them. Loading inserts those rows with SQLAlchemy Core into a new
log (schema from ``durable.log.schema``), so that today's code can replay or continue a run
recorded by an older version.

Usage::

    python tests/replay/golden.py generate [DIR [NAME ...]]   # record (those) scenarios
    python tests/replay/golden.py dump URL RUN_ID    # print one run (and its children)
"""

from __future__ import annotations

import base64
import json
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import sqlalchemy as sa

import durable
from durable.events import OUTCOME_KIND
from durable.log import open_store
from durable.log.schema import SCHEMA_VERSION, events, runs
from durable.log.store import JournalRow, RunRow, Store
from durable.states import WaitFor

__all__ = ["SCENARIOS", "dump", "dump_runs", "generate", "load", "read", "write"]

FORMAT = 1
JOURNALS = Path(__file__).resolve().parent / "journals"
_BYTES_FIELDS = frozenset({"input", "output", "trace_context", "options"})
_EVENT_FIELDS = ("seq", "type", "position", "name", "attempt", "epoch", "at", "data")


def _b64(data: bytes | None) -> str | None:
    return None if data is None else base64.b64encode(data).decode("ascii")


def _unb64(text: str | None) -> bytes | None:
    return None if text is None else base64.b64decode(text.encode("ascii"), validate=True)


def _row_doc(row: RunRow) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for f in RunRow.__slots__:
        v = getattr(row, f)
        if v is None and f in _LATER_FIELDS:
            continue  # a column newer than the golden files: kept out while empty
        if isinstance(v, WaitFor):
            v = v.column()  # stored as the column's text
        out[f] = _b64(v) if f in _BYTES_FIELDS else v
    return out


_LATER_FIELDS = {
    "started_at",
    "options",
    "version",
    "cancel_requested_at",
    "step",
    "step_progress",
    "blocked_versions",
    "dedup_key",
}
"""Run columns added after the golden journals were recorded (schema v2, v4, v5, v7, v8,
v9)."""


def _event_doc(r: JournalRow) -> dict[str, Any]:
    return {
        "seq": r.seq,
        "type": r.type,
        "position": r.position,
        "name": r.name,
        "attempt": r.attempt,
        "epoch": r.epoch,
        "at": r.at,
        "data": _b64(r.data),
    }


def dump_runs(store: Store, run_ids: list[str], main: str, scenario: str = "") -> dict[str, Any]:
    """The JSON document of ``run_ids`` (rows and journals) of ``store``."""
    docs = []
    for rid in run_ids:
        row = store.get_run(rid)
        if row is None:
            raise LookupError(f"no run {rid!r}")
        docs.append(
            {"row": _row_doc(row), "events": [_event_doc(r) for r in store.read_journal(rid)]}
        )
    return {
        "format": FORMAT,
        "schema_version": SCHEMA_VERSION,
        "durable_version": durable.__version__,
        "scenario": scenario,
        "main": main,
        "runs": docs,
    }


def dump(store: Store, run_id: str, scenario: str = "") -> dict[str, Any]:
    """The JSON document of ``run_id`` and of its child runs (recursively)."""
    ids = [run_id]
    i = 0
    while i < len(ids):
        for r in store.read_journal(ids[i]):
            if r.type == "child_started" and r.position is not None:
                ids.append(f"{ids[i]}:{r.position}")
        i += 1
    return dump_runs(store, ids, run_id, scenario)


def load(doc: dict[str, Any], url: str) -> str:
    """Insert the runs of ``doc`` into the (new or empty) log at ``url``; return the main
    run's id."""
    if doc.get("format") != FORMAT:
        raise ValueError(f"unknown golden format {doc.get('format')!r}")
    open_store(url).close()  # creates the schema and its version row
    engine = sa.create_engine(url)
    try:
        with engine.begin() as c:
            for run in doc["runs"]:
                row = dict(run["row"])
                for f in _BYTES_FIELDS:
                    if f in row:
                        row[f] = _unb64(row[f])
                c.execute(runs.insert().values(**row))
                rows = [
                    {
                        "run_id": row["id"],
                        **{f: e[f] for f in _EVENT_FIELDS if f != "data"},
                        "data": _unb64(e["data"]),
                        "outcome": OUTCOME_KIND.get(e["type"]),
                    }
                    for e in run["events"]
                ]
                if rows:
                    c.execute(events.insert(), rows)
    finally:
        engine.dispose()
    return str(doc["main"])


def write(doc: dict[str, Any], path: Path) -> None:
    path.write_text(json.dumps(doc, indent=1, sort_keys=True) + "\n", encoding="utf-8")


def read(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))  # type: ignore[no-any-return]


# ---------------------------------------------------------------------------- recording


def _wait(predicate: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("the scenario did not reach its state in time")
        time.sleep(0.01)


def _status(client: durable.Client, run_id: str) -> str:
    return str(client.get(run_id).status().value)


def _pipeline(app: durable.App) -> str:
    c = app.client()
    h = c.start("golden.pipeline", 4, id="golden-pipeline")
    with app.worker(worker_id="golden"):
        h.result(timeout=20)
    return h.id


def _fanout(app: durable.App) -> str:
    c = app.client()
    h = c.start("golden.fanout", 5, id="golden-fanout")
    with app.worker(worker_id="golden"):
        h.result(timeout=20)
    return h.id


def _caught(app: durable.App) -> str:
    c = app.client()
    h = c.start("golden.caught", 3, id="golden-caught")
    with app.worker(worker_id="golden"):
        h.result(timeout=20)
    return h.id


def _parent(app: durable.App) -> str:
    c = app.client()
    h = c.start("golden.parent", 2, id="golden-parent")
    with app.worker(worker_id="golden"):
        h.result(timeout=20)
    return h.id


def _signal(app: durable.App) -> str:
    c = app.client()
    h = c.start("golden.signal", 5, id="golden-signal")
    with app.worker(worker_id="golden"):
        _wait(lambda: _status(c, h.id) == "sleeping")
        c.signal(h.id, "go", {"n": 10})
        h.result(timeout=20)
    return h.id


def _resumed(app: durable.App) -> str:
    c = app.client()
    app.toggles.fail_maybe = True  # type: ignore[attr-defined]
    h = c.start("golden.resumed", 2, id="golden-resumed")
    with app.worker(worker_id="golden"):
        _wait(lambda: _status(c, h.id) == "failed")
        app.toggles.fail_maybe = False  # type: ignore[attr-defined]
        c.resume(h.id)
        h.result(timeout=20)
    return h.id


def _patched(app: durable.App) -> str:
    c = app.client()
    h = c.start("golden.patched", 3, id="golden-patched")
    with app.worker(worker_id="golden"):
        h.result(timeout=20)
    return h.id


def _sleeping(app: durable.App) -> str:
    c = app.client()
    h = c.start("golden.sleeping", 1, id="golden-sleeping")
    with app.worker(worker_id="golden"):
        _wait(lambda: _status(c, h.id) == "sleeping")
    return h.id


SCENARIOS: dict[str, Callable[[durable.App], str]] = {
    "pipeline": _pipeline,
    "fanout": _fanout,
    "caught": _caught,
    "parent": _parent,
    "signal": _signal,
    "resumed": _resumed,
    "sleeping": _sleeping,
    "patched": _patched,
}
"""Each records one run (and its children) on a fresh log; the file is ``{name}.json``."""


def generate(out: Path = JOURNALS, names: list[str] | None = None) -> list[Path]:
    """Record every scenario (or those ``names``) on a fresh log and write its golden file
    into ``out``."""
    from golden_app import make_app

    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, scenario in SCENARIOS.items():
        if names and name not in names:
            continue
        with tempfile.TemporaryDirectory() as d:
            app = make_app(f"sqlite:///{d}/golden.db")
            try:
                run_id = scenario(app)
                doc = dump(app.store, run_id, name)
            finally:
                app.close()
        path = out / f"{name}.json"
        write(doc, path)
        written.append(path)
    return written


def main(argv: list[str]) -> int:
    if argv[:1] == ["generate"]:
        out = Path(argv[1]) if len(argv) > 1 else JOURNALS
        for p in generate(out, argv[2:]):
            print(p)
        return 0
    if argv[:1] == ["dump"] and len(argv) == 3:
        store = open_store(argv[1])
        try:
            print(json.dumps(dump(store, argv[2]), indent=1, sort_keys=True))
        finally:
            store.close()
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
