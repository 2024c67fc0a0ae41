"""``client.export_run`` and ``durable runs export``: one run as a JSON journal, on both
backends; read back, it gives the run's row and journal rows exactly as the log held them."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from harness.processes import run

import durable
from durable.journal_file import FORMAT, FORMAT_VERSION, dumps, read_export
from durable.log.schema import SCHEMA_VERSION
from durable.log.store import RunRow

PROCS = Path(__file__).resolve().parent / "procs"
sys.path.insert(0, str(PROCS))
import deployapp  # noqa: E402

SCRIPT = Path(sys.executable).parent / "durable"
COMMAND = [str(SCRIPT)] if SCRIPT.exists() else [sys.executable, "-m", "durable.cli"]

pytestmark = pytest.mark.timeout(120)

EXPORTED_ROW_FIELDS = (
    *("id", "workflow", "queue", "status", "priority", "input", "output", "error_type"),
    *("error_message", "parent_id", "deadline_at", "timeout", "lease_epoch", "last_seq"),
    *("attempt", "progress", "stage", "steps_completed", "created_at", "updated_at"),
    *("finished_at", "started_at", "options", "version"),
)
"""The fields of a run's row that an export keeps (the others say which worker holds it
and when it is due, which a replay does not read)."""


@pytest.fixture
def v1(db_url: str) -> Iterator[durable.App]:
    app = deployapp.make_app("v1", db_url)
    yield app
    app.close()


def record(app: durable.App, monkeypatch: pytest.MonkeyPatch, wait_status: Any, wait: float) -> str:
    """A run of ``order`` under ``app``: asleep for ``wait`` seconds, or completed (0)."""
    monkeypatch.setattr(deployapp, "SLEEP", wait)
    client = app.client()
    with app.worker():
        h = client.start("order", 4)
        if wait:
            wait_status(h, durable.Status.SLEEPING)
        else:
            assert h.result(timeout=20) == "charged 5"
    return h.id


def cli(*args: str) -> Any:
    return run([*COMMAND, *args], cwd=PROCS, timeout=60)


def keys_sorted(value: Any) -> bool:
    if isinstance(value, dict):
        return list(value) == sorted(value) and all(keys_sorted(v) for v in value.values())
    if isinstance(value, list):
        return all(keys_sorted(v) for v in value)
    return True


def test_an_export_reads_back_as_the_log_holds_the_run(
    db_url: str, v1: durable.App, monkeypatch: pytest.MonkeyPatch, wait_status: Any, tmp_path: Path
) -> None:
    sleeping = record(v1, monkeypatch, wait_status, 3600)
    completed = record(v1, monkeypatch, wait_status, 0)
    client = v1.client()
    for run_id in (sleeping, completed):
        doc = client.export_run(run_id)
        assert (doc["format"], doc["format_version"]) == (FORMAT, FORMAT_VERSION)
        assert doc["schema_version"] == SCHEMA_VERSION
        path = tmp_path / f"{run_id}.json"
        path.write_text(dumps(doc), encoding="utf-8")
        back = read_export(path)
        row = v1.store.get_run(run_id)
        assert row is not None
        assert {f: getattr(back.row, f) for f in EXPORTED_ROW_FIELDS} == {
            f: getattr(row, f) for f in EXPORTED_ROW_FIELDS
        }
        assert back.events == v1.store.read_journal(run_id)  # every byte, every instant
        assert len(back.events) == row.last_seq > 4
    assert set(EXPORTED_ROW_FIELDS) < set(RunRow.__slots__)


def test_an_export_is_readable_and_stable(
    db_url: str, v1: durable.App, monkeypatch: pytest.MonkeyPatch, wait_status: Any
) -> None:
    run_id = record(v1, monkeypatch, wait_status, 0)
    client = v1.client()
    doc = client.export_run(run_id)
    assert dumps(doc) == dumps(client.export_run(run_id))  # a finished run: the same text
    assert keys_sorted(doc) and dumps(doc).endswith("}\n")
    run_doc = doc["run"]
    assert run_doc["id"] == run_id and run_doc["workflow"] == "order"
    assert run_doc["status"] == "completed" and run_doc["version"] == v1.version
    assert run_doc["input"]["data"] == [[4], {}]
    assert json.loads(json.dumps(run_doc["output"]["data"])) == "charged 5"
    assert run_doc["created_at"] <= run_doc["started_at"] <= run_doc["finished_at"]
    types = [(e["seq"], e["type"], e["position"], e["name"]) for e in doc["events"]]
    assert types[0] == (1, "run_started", None, None)
    assert (4, "step_completed", 1, "reserve") in types
    assert types[-1][1] == "run_completed"
    completed = next(e for e in doc["events"] if e["type"] == "step_completed")
    assert completed["data"]["result"] == 5 and isinstance(completed["payload"], str)


def test_the_command_writes_the_same_document(
    db_url: str, v1: durable.App, monkeypatch: pytest.MonkeyPatch, wait_status: Any, tmp_path: Path
) -> None:
    run_id = record(v1, monkeypatch, wait_status, 0)
    expected = dumps(v1.client().export_run(run_id))
    out = cli("--database", db_url, "runs", "export", run_id)
    assert out.returncode == 0, out.describe()
    assert out.stdout == expected
    target = tmp_path / "tests" / "journals" / "order.json"  # its folders are created
    out = cli("runs", "export", run_id, "-o", str(target), "--database", db_url)
    assert out.returncode == 0, out.describe()
    events = len(json.loads(expected)["events"])
    assert out.stdout == f"exported run {run_id} ({events} events) to {target}\n"
    assert target.read_text(encoding="utf-8") == expected
    assert [p.name for p in target.parent.iterdir()] == ["order.json"]  # no file left aside
    out = cli("--database", db_url, "runs", "export", run_id, "-o", str(target.parent))
    assert out.returncode == 2, out.describe()
    assert out.stderr == (
        f"durable: {target.parent} is a folder: name the file, e.g. {target.parent}/run.json\n"
    )


def test_exporting_an_unknown_run_exits_3(
    db_url: str, v1: durable.App, monkeypatch: pytest.MonkeyPatch, wait_status: Any, tmp_path: Path
) -> None:
    record(v1, monkeypatch, wait_status, 0)
    target = tmp_path / "nope.json"
    out = cli("--database", db_url, "runs", "export", "nope", "-o", str(target))
    assert out.returncode == 3, out.describe()
    assert out.stderr == "durable: no run with id 'nope'\n" and out.stdout == ""
    assert not target.exists()
    with pytest.raises(durable.RunNotFoundError, match="'nope'"):
        v1.client().export_run("nope")


def test_a_run_exported_while_a_worker_appends_is_one_consistent_state(
    db_url: str, tmp_path: Path
) -> None:
    app = durable.App("busy", database=db_url, poll_interval=0.05)

    @app.step(name="tick")
    def tick(i: int) -> int:
        return i

    @app.workflow(name="ticks")
    def ticks(n: int) -> int:
        return sum(tick(i) for i in range(n))

    try:
        h = app.client().start(ticks, 60)
        seen: set[int] = set()
        with app.worker():
            while h.status() is not durable.Status.COMPLETED:
                path = tmp_path / "busy.json"
                path.write_text(dumps(app.client().export_run(h.id)), encoding="utf-8")
                back = read_export(path)  # refuses events past the row's last_seq
                assert [e.seq for e in back.events] == list(range(1, back.row.last_seq + 1))
                seen.add(back.row.last_seq)
        assert len(seen) > 1  # exported at several points of the run
    finally:
        app.close()


def test_the_async_client_exports_too(
    db_url: str, v1: durable.App, monkeypatch: pytest.MonkeyPatch, wait_status: Any
) -> None:
    run_id = record(v1, monkeypatch, wait_status, 0)
    doc = asyncio.run(asyncio.wait_for(v1.async_client().export_run(run_id), timeout=30))
    assert doc == v1.client().export_run(run_id)
