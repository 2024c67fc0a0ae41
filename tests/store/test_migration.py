"""Upgrading a log written by the previous schema version, on every backend, and proving
that a migrated schema equals a fresh one."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import msgspec
import pytest
import sqlalchemy as sa

import durable
from durable.events import RunStartedData, encode_data
from durable.log import open_store
from durable.log.migrate import UPGRADES
from durable.log.postgres import normalize_url
from durable.log.schema import SCHEMA_VERSION

V1 = Path(__file__).parent / "schema_v1"


def _engine(db_url: str) -> sa.Engine:
    return sa.create_engine(db_url if db_url.startswith("sqlite") else normalize_url(db_url))


def _write_v1_log(db_url: str) -> None:
    """A log exactly as version 1 of durable created it, with one pending run."""
    dialect = "sqlite" if db_url.startswith("sqlite") else "postgresql"
    ddl = (V1 / f"{dialect}.sql").read_text()
    engine = _engine(db_url)
    now = time.time()
    args = msgspec.msgpack.encode(([21], {}))
    started = RunStartedData(input=msgspec.Raw(args), workflow="double")
    with engine.begin() as c:
        for stmt in ddl.split(";"):
            if stmt.strip():
                c.exec_driver_sql(stmt)
        c.exec_driver_sql("INSERT INTO durable_meta (key, value) VALUES ('schema_version', '1')")
        c.execute(
            sa.text(
                "INSERT INTO durable_runs (id, workflow, queue, status, priority, input, due_at,"
                " lease_epoch, last_seq, attempt, steps_completed, stalls, created_at, updated_at)"
                " VALUES ('old-run', 'double', 'default', 'pending', 0, :input, :now, 0, 1, 1,"
                " 0, 0, :now, :now)"
            ),
            {"input": args, "now": now},
        )
        c.execute(
            sa.text(
                "INSERT INTO durable_events (run_id, seq, type, epoch, at, data)"
                " VALUES ('old-run', 1, 'run_started', 0, :now, :data)"
            ),
            {"now": now, "data": encode_data(started)},
        )
    engine.dispose()


def _shape(db_url: str) -> dict[str, Any]:
    engine = _engine(db_url)
    try:
        insp = sa.inspect(engine)
        out: dict[str, Any] = {}
        for table in sorted(t for t in insp.get_table_names() if t.startswith("durable_")):
            cols = sorted(
                (c["name"], str(c["type"]).split("(")[0]) for c in insp.get_columns(table)
            )
            idx = sorted(
                (i["name"], tuple(str(x) for x in i["column_names"]), bool(i["unique"]))
                for i in insp.get_indexes(table)
            )
            out[table] = {"columns": cols, "indexes": idx}
        return out
    finally:
        engine.dispose()


def test_a_v1_log_is_upgraded_and_its_runs_go_on(db_url: str) -> None:
    _write_v1_log(db_url)
    app = durable.App("migrated", database=db_url, poll_interval=0.1)

    @app.workflow(name="double")
    def double(x: int) -> int:
        return 2 * x

    try:
        with app.worker():
            assert app.client().get("old-run").result(timeout=20) == 42
        engine = _engine(db_url)
        with engine.connect() as c:
            v = c.exec_driver_sql(
                "SELECT value FROM durable_meta WHERE key = 'schema_version'"
            ).scalar()
            started = c.exec_driver_sql(
                "SELECT started_at FROM durable_runs WHERE id = 'old-run'"
            ).scalar()
        engine.dispose()
        assert int(v) == SCHEMA_VERSION == 11
        assert started is not None
    finally:
        app.close()


def test_a_migrated_schema_equals_a_fresh_one(db_url: str, another_db_url: str) -> None:
    _write_v1_log(db_url)
    open_store(db_url).close()
    open_store(another_db_url).close()
    assert _shape(db_url) == _shape(another_db_url)


def _write_log_of_version(db_url: str, version: int) -> None:
    """A log of schema ``version`` with one pending run: version 1, upgraded step by step."""
    _write_v1_log(db_url)
    engine = _engine(db_url)
    with engine.begin() as c:
        for v in range(2, version + 1):
            UPGRADES[v](c)
        c.execute(
            sa.text("UPDATE durable_meta SET value = :v WHERE key = 'schema_version'"),
            {"v": str(version)},
        )
    engine.dispose()


def _dedup_index_predicate(db_url: str) -> str:
    """The ``WHERE`` of the dedup key's partial unique index, as the database keeps it."""
    engine = _engine(db_url)
    try:
        with engine.connect() as c:
            if db_url.startswith("sqlite"):
                sql = c.exec_driver_sql(
                    "SELECT sql FROM sqlite_master WHERE name = 'uq_durable_runs_dedup_key'"
                ).scalar()
            else:
                sql = c.exec_driver_sql(
                    "SELECT indexdef FROM pg_indexes WHERE indexname = 'uq_durable_runs_dedup_key'"
                    " AND schemaname = current_schema()"
                ).scalar()
    finally:
        engine.dispose()
    assert sql is not None and "UNIQUE" in sql.upper()
    return str(sql).split("WHERE", 1)[1].strip()


def test_a_v8_log_gets_dedup_keys_and_its_runs_go_on(db_url: str, another_db_url: str) -> None:
    _write_log_of_version(db_url, 8)
    app = durable.App("migrated", database=db_url, poll_interval=0.1)

    @app.workflow(name="double")
    def double(x: int) -> int:
        return 2 * x

    try:
        client = app.client()
        old = client.get("old-run")
        assert old.info().dedup_key is None
        first = client.start(double, 1, dedup_key="invoice-7")
        with pytest.raises(durable.DuplicateRunError) as refused:
            client.start(double, 2, dedup_key="invoice-7")
        assert refused.value.run_id == first.id
        with app.worker():
            assert old.result(timeout=20) == 42
            assert first.result(timeout=20) == 2
        again = client.start(double, 3, dedup_key="invoice-7")  # the first one has ended
        assert again.id != first.id and again.info().dedup_key == "invoice-7"
    finally:
        app.close()
    open_store(another_db_url).close()
    assert _dedup_index_predicate(db_url) == _dedup_index_predicate(another_db_url)
    assert _shape(db_url) == _shape(another_db_url)
