"""Bad input: values msgspec cannot encode, payloads over the size limit, and databases that
are not a durable log (or are newer than this code)."""

from __future__ import annotations

import sqlite3
import sys
import threading
from pathlib import Path

import pytest
from harness.processes import run

import durable
from durable import PayloadTooLargeError, RunFailedError, SerializationError, Status
from durable.errors import LogSchemaError


class Opaque:
    """Not a type msgspec knows how to encode."""


def _no_runs(db_url: str) -> None:
    assert durable.Client(db_url).list_runs() == []


# ---------------------------------------------------------------- not encodable


@pytest.mark.parametrize(
    "bad", [Opaque(), threading.Lock(), lambda: 1, {1, Opaque()}, {"k": [Opaque()]}]
)
def test_unencodable_argument_is_refused_before_anything_is_written(app, client, db_url, bad):
    @app.workflow()
    def flow(x: object) -> None:
        return None

    with pytest.raises(SerializationError) as err:
        client.start(flow, bad)
    assert isinstance(err.value, TypeError)
    assert isinstance(err.value, durable.DurableError)
    _no_runs(db_url)


def test_unencodable_argument_with_an_id_writes_nothing(app, client, db_url):
    @app.workflow()
    def flow(x: object) -> None:
        return None

    with pytest.raises(SerializationError):
        client.start(flow, Opaque(), id="bad-run")
    with pytest.raises(durable.RunNotFoundError):
        client.get("bad-run")
    _no_runs(db_url)


def test_code_free_client_refuses_unencodable_argument(app, db_url):
    with pytest.raises(SerializationError):
        durable.Client(db_url).start("anything", Opaque())
    _no_runs(db_url)


def test_unencodable_step_result_fails_the_run(app, client):
    calls = []

    @app.step(retry=durable.Retry(attempts=3, initial_delay=0.01))
    def make() -> object:
        calls.append(1)
        return Opaque()

    @app.workflow()
    def flow() -> None:
        make()

    with app.worker():
        h = client.start(flow)
        with pytest.raises(RunFailedError) as err:
            h.result(timeout=10)
    assert err.value.error_type == "SerializationError"
    assert h.status() == Status.FAILED
    assert not any(e.type == "step_completed" for e in h.events())
    assert len(calls) >= 1


def test_unencodable_workflow_result_fails_the_run(app, client):
    @app.workflow()
    def flow() -> object:
        return Opaque()

    with app.worker():
        h = client.start(flow)
        with pytest.raises(RunFailedError) as err:
            h.result(timeout=10)
    assert err.value.error_type == "SerializationError"
    assert h.events()[-1].type == "run_failed"


def test_unencodable_signal_payload_writes_nothing(app, client):
    @app.workflow()
    def flow() -> object:
        return durable.wait_signal("go", timeout=0.5)

    h = client.start(flow)
    n_events = len(h.events())
    with pytest.raises(SerializationError):
        client.signal(h.id, "go", Opaque())
    assert len(h.events()) == n_events
    with app.worker():
        assert h.result(timeout=10) is None  # the refused signal was never stored


def test_unencodable_output_fails_the_run(app, client):
    @app.workflow()
    def flow() -> None:
        durable.output("bad", Opaque())

    with app.worker():
        h = client.start(flow)
        with pytest.raises(RunFailedError) as err:
            h.result(timeout=10)
    assert err.value.error_type == "SerializationError"


# ---------------------------------------------------------------- too large


def test_payload_too_large_at_start(make_app, db_url):
    app = make_app(max_payload_bytes=1024)

    @app.workflow()
    def flow(blob: bytes) -> int:
        return len(blob)

    client = app.client()
    with pytest.raises(PayloadTooLargeError) as err:
        client.start(flow, b"x" * 4096)
    assert isinstance(err.value, durable.DurableError)
    _no_runs(db_url)
    with app.worker():
        assert client.start(flow, b"x" * 100).result(timeout=10) == 100


def test_payload_too_large_at_signal(make_app):
    app = make_app(max_payload_bytes=1024)

    @app.workflow()
    def flow() -> object:
        return durable.wait_signal("go", timeout=0.5)

    client = app.client()
    h = client.start(flow)
    n_events = len(h.events())
    with pytest.raises(PayloadTooLargeError):
        client.signal(h.id, "go", "y" * 4096)
    assert len(h.events()) == n_events
    with app.worker():
        assert h.result(timeout=10) is None


def test_step_result_too_large_fails_permanently(make_app):
    app = make_app(max_payload_bytes=1024)
    calls = []

    @app.step(name="big", retry=durable.Retry(attempts=5, initial_delay=0.01))
    def big() -> bytes:
        calls.append(1)
        return b"z" * 4096

    @app.workflow()
    def flow() -> int:
        return len(big())

    client = app.client()
    with app.worker():
        h = client.start(flow)
        with pytest.raises(RunFailedError) as err:
            h.result(timeout=10)
    assert calls == [1]  # retrying would repeat the side effect
    assert err.value.error_type == "PayloadTooLargeError"
    failed = [e for e in h.events() if e.type == "step_failed"]
    assert len(failed) == 1
    assert failed[0].data.get("retryable") is False
    assert not any(e.type == "step_completed" for e in h.events())


def test_default_limit_is_two_mebibytes(app, client, db_url):
    @app.workflow()
    def flow(blob: bytes) -> int:
        return len(blob)

    with pytest.raises(PayloadTooLargeError):
        client.start(flow, b"x" * (2 * 1024 * 1024 + 1))
    _no_runs(db_url)
    with app.worker():
        assert client.start(flow, b"x" * (1024 * 1024)).result(timeout=20) == 1024 * 1024


# ---------------------------------------------------------------- not a durable log


def _entry_points(db_url: str):
    """Every way a user first touches a database; each must refuse a foreign file."""

    def code_free_list() -> None:
        durable.Client(db_url).list_runs()

    def code_free_start() -> None:
        durable.Client(db_url).start("anything")

    def app_start() -> None:
        app = durable.App("foreign", database=db_url)

        @app.workflow()
        def flow() -> int:
            return 1

        app.client().start(flow)

    def app_worker() -> None:
        app = durable.App("foreign", database=db_url)
        with app.worker():
            pass

    return [code_free_list, code_free_start, app_start, app_worker]


def _assert_refused_untouched(db_url: str, db_path: Path, *, no_new_files: bool = True) -> None:
    before = db_path.read_bytes()
    siblings = sorted(p.name for p in db_path.parent.iterdir())
    for touch in _entry_points(db_url):
        with pytest.raises(LogSchemaError):
            touch()
        assert db_path.read_bytes() == before, f"{touch.__name__} changed the file"
    if no_new_files:  # e.g. no -wal/-shm/-journal left beside a foreign file
        assert sorted(p.name for p in db_path.parent.iterdir()) == siblings


def test_sqlite_file_of_another_application_is_refused_untouched(db_url, db_path):
    con = sqlite3.connect(db_path)
    con.execute("CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT)")
    con.execute("INSERT INTO customers (name) VALUES ('ada')")
    con.commit()
    con.close()
    _assert_refused_untouched(db_url, db_path)
    con = sqlite3.connect(db_path)
    assert con.execute("SELECT name FROM customers").fetchall() == [("ada",)]
    tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    con.close()
    assert tables == {"customers"}


def test_text_file_is_refused_untouched(db_url, db_path):
    db_path.write_text("this is not a database\n" * 50)
    _assert_refused_untouched(db_url, db_path)


def _make_log_in_subprocess(db_url: str) -> None:
    code = (
        "import durable, sys\n"
        "h = durable.Client(sys.argv[1]).start('made-by-a-newer-version')\n"
        "print(h.id)\n"
    )
    done = run([sys.executable, "-c", code, db_url], timeout=60)
    assert done.returncode == 0, done.describe()


def _bump_schema_version(db_path: Path) -> int:
    """Set every schema-version value in the log far ahead; return how many rows changed."""
    con = sqlite3.connect(db_path)
    changed = 0
    tables = [r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")]
    for table in tables:
        cols = [r[1] for r in con.execute(f'PRAGMA table_info("{table}")')]
        if "key" in cols and "value" in cols:
            cur = con.execute(f"UPDATE \"{table}\" SET value = '999' WHERE key LIKE '%version%'")
            changed += cur.rowcount
        elif "version" in table.lower():
            for col in cols:
                if "version" in col.lower():
                    changed += con.execute(f'UPDATE "{table}" SET "{col}" = 999').rowcount
    con.commit()
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    con.close()
    return changed


def test_log_of_a_newer_schema_version_is_refused_untouched(db_url, db_path):
    _make_log_in_subprocess(db_url)
    assert _bump_schema_version(db_path) >= 1, "found no schema version row to bump"
    _assert_refused_untouched(db_url, db_path, no_new_files=False)


def test_fresh_log_is_created_and_reopened(db_url, db_path):
    _make_log_in_subprocess(db_url)
    assert db_path.exists()
    runs = durable.Client(db_url).list_runs()
    assert [r.workflow for r in runs] == ["made-by-a-newer-version"]
