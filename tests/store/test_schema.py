"""The log's schema: its version row, its printed DDL, refusing what is not ours, racing opens."""

from __future__ import annotations

import hashlib
import sqlite3
import sys
import threading
from pathlib import Path

import pytest
import sqlalchemy as sa
from harness.processes import Processes, run

import durable
from durable.log import NewRun, open_store
from durable.log.schema import SCHEMA_VERSION, meta

# ---------------------------------------------------------------- a fresh log


def test_a_fresh_log_records_the_schema_version(db_url: str) -> None:
    open_store(db_url).close()
    from durable.log.postgres import normalize_url

    engine = sa.create_engine(db_url if db_url.startswith("sqlite") else normalize_url(db_url))
    try:
        with engine.connect() as c:
            rows = c.execute(sa.select(meta.c.key, meta.c.value)).all()
    finally:
        engine.dispose()
    assert dict(rows) == {"schema_version": str(SCHEMA_VERSION)}


def test_reopening_a_log_keeps_its_runs(db_url: str) -> None:
    s = open_store(db_url)
    s.create_run(NewRun(id="r1", workflow="wf", queue="q", input=b"\x90"))
    s.close()
    s = open_store(db_url)
    try:
        row = s.get_run("r1")
        assert row is not None and row.status == "pending"
    finally:
        s.close()


@pytest.mark.parametrize("dialect", ["sqlite", "postgresql"])
def test_the_schema_module_prints_ddl(dialect: str) -> None:
    done = run([sys.executable, "-m", "durable.log.schema", dialect], timeout=60)
    assert done.returncode == 0, done.describe()
    out = done.stdout
    for table in ("durable_runs", "durable_events", "durable_signals", "durable_meta"):
        assert f"CREATE TABLE {table}" in out
    assert "CREATE UNIQUE INDEX uq_durable_events_outcome" in out
    assert "WHERE outcome IS NOT NULL" in out


# ---------------------------------------------------------------- refusing files (SQLite)


def _fingerprint(path: Path) -> dict[str, str | None]:
    """sha256 of the file and of its -wal/-shm/-journal companions (None: absent)."""
    out: dict[str, str | None] = {}
    for suffix in ("", "-wal", "-shm", "-journal"):
        p = Path(f"{path}{suffix}")
        out[suffix] = hashlib.sha256(p.read_bytes()).hexdigest() if p.exists() else None
    return out


def _foreign_sqlite(path: Path) -> None:
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)")
    con.execute("INSERT INTO users (name) VALUES ('ada')")
    con.commit()
    con.close()


def _text(path: Path) -> None:
    path.write_text("id,name\n1,ada\n" * 200)


def _tiny_text(path: Path) -> None:
    path.write_text("hello\n")


def _newer_log(path: Path) -> None:
    open_store(f"sqlite:///{path}").close()
    con = sqlite3.connect(path)
    con.execute("UPDATE durable_meta SET value = ? WHERE key = 'schema_version'", (99,))
    con.commit()
    con.close()


def _tables_without_meta(path: Path) -> None:
    open_store(f"sqlite:///{path}").close()
    con = sqlite3.connect(path)
    con.execute("DROP TABLE durable_meta")
    con.commit()
    con.close()


@pytest.mark.parametrize(
    "make",
    [_foreign_sqlite, _text, _tiny_text, _newer_log, _tables_without_meta],
    ids=["foreign-sqlite", "text", "tiny-text", "newer-version", "no-meta"],
)
def test_what_is_not_a_durable_log_is_refused_untouched(tmp_path: Path, make: object) -> None:
    path = tmp_path / "other.db"
    make(path)  # type: ignore[operator]
    before = _fingerprint(path)
    assert before["-wal"] is None and before["-shm"] is None
    with pytest.raises(durable.LogSchemaError):
        open_store(f"sqlite:///{path}")
    assert _fingerprint(path) == before


def test_an_unsupported_url_is_a_value_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        open_store("sqlite://")  # in memory: no worker could share it
    with pytest.raises(ValueError):
        open_store("mysql://u@h/db")
    with pytest.raises(ValueError):
        open_store("not a url")


def test_an_unopenable_file_is_a_durable_error(tmp_path: Path) -> None:
    with pytest.raises(durable.DurableError):
        open_store(f"sqlite:///{tmp_path}/no-such-dir/x.db")


# ---------------------------------------------------------------- racing opens


def _racers_url(tmp_path: Path, start: str) -> tuple[str, Path]:
    path = tmp_path / "race.db"
    if start == "empty":
        path.write_bytes(b"")
    return f"sqlite:///{path}", path


def _check_one_log(url: str) -> None:
    s = open_store(url)
    try:
        row, created = s.create_run(NewRun(id="after", workflow="wf", queue="q", input=b"\x90"))
        assert created and row.last_seq == 1
    finally:
        s.close()
    con = sqlite3.connect(url.removeprefix("sqlite:///"))
    try:
        assert con.execute("SELECT key, value FROM durable_meta").fetchall() == [
            ("schema_version", str(SCHEMA_VERSION))
        ]
    finally:
        con.close()


@pytest.mark.parametrize("start", ["empty", "missing"])
def test_many_threads_opening_a_new_log_at_once_all_succeed(tmp_path: Path, start: str) -> None:
    url, _ = _racers_url(tmp_path, start)
    n = 12
    barrier = threading.Barrier(n)
    errors: list[BaseException] = []

    def opener() -> None:
        try:
            barrier.wait()
            open_store(url).close()
        except BaseException as exc:  # collected and reported below
            errors.append(exc)

    threads = [threading.Thread(target=opener) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=90)
    assert errors == []
    _check_one_log(url)


_OPENER = """
import os, sys, time
from durable.log import open_store
url, go = sys.argv[1], sys.argv[2]
print("ready", flush=True)
while not os.path.exists(go):
    time.sleep(0.001)
open_store(url).close()
print("ok")
"""


@pytest.mark.parametrize("start", ["empty", "missing"])
def test_many_processes_opening_a_new_log_at_once_all_succeed(
    tmp_path: Path, start: str, processes: Processes
) -> None:
    url, _ = _racers_url(tmp_path, start)
    go = tmp_path / "go"
    procs = [
        processes.start(
            [sys.executable, "-c", _OPENER, url, str(go)], name="opener", separate_stderr=True
        )
        for _ in range(8)
    ]
    for p in procs:  # every interpreter has imported durable: release them together
        first = p.wait_for(lambda p=p: "\n" in p.output() and p.output(), 90, "its first line")
        assert first.splitlines()[0].strip() == "ready", p.describe()
    go.touch()
    results = [p.result(timeout=90) for p in procs]
    failures = [r.stderr for r in results if r.returncode != 0]
    assert failures == []
    assert all(r.stdout.split("\n", 1)[1].strip() == "ok" for r in results), results
    _check_one_log(url)
