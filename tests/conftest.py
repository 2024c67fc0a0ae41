"""Shared fixtures: a fresh log per test, on every backend the suite runs against, and the
child processes of a test.

``db_url`` is parametrized by backend: ``sqlite`` (a new file) and ``postgres`` (a new schema
on the server named by ``DURABLE_TEST_POSTGRES_URL``; skipped, visibly, when it is unset).
``processes`` (``harness/processes.py``) starts child processes, kills and reaps them at the
end of the test, and adds their output to the report of a test that failed.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Generator, Iterator
from pathlib import Path

import pytest
from harness.processes import Processes

from durable.log import Store, open_store

pytest_plugins = ["durable.testing.plugin"]
"""The ``durable_env`` fixture, whichever copy of the package (and its entry point) is
installed: loaded once either way."""

POSTGRES_URL_ENV = "DURABLE_TEST_POSTGRES_URL"


def postgres_server_url() -> str | None:
    """The server the Postgres tests use, if configured."""
    return os.environ.get(POSTGRES_URL_ENV) or None


def _admin_engine(server: str):  # type: ignore[no-untyped-def]
    import sqlalchemy as sa

    from durable.log.postgres import normalize_url

    return sa.create_engine(normalize_url(server), isolation_level="AUTOCOMMIT")


def fresh_postgres_url(server: str) -> tuple[str, str]:
    """Create a new schema on ``server``; return (URL using it, schema name)."""
    import urllib.parse

    schema = f"durable_t_{uuid.uuid4().hex[:12]}"
    engine = _admin_engine(server)
    try:
        with engine.connect() as c:
            c.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    finally:
        engine.dispose()
    sep = "&" if "?" in server else "?"
    opt = urllib.parse.quote(f"-csearch_path={schema}")
    return f"{server}{sep}options={opt}", schema


def drop_postgres_schema(server: str, schema: str) -> None:
    """Drop a test schema (best effort: a stopped test process may still hold a lock)."""
    engine = _admin_engine(server)
    try:
        with engine.connect() as c:
            c.exec_driver_sql("SET lock_timeout = '5s'")
            c.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    except Exception:
        pass
    finally:
        engine.dispose()


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URL of a fresh, empty durable log: one parameter per backend."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/durable-{uuid.uuid4().hex[:8]}.db"
        return
    server = postgres_server_url()
    if server is None:
        pytest.skip(f"Postgres: set {POSTGRES_URL_ENV} to run the Postgres tests")
    url, schema = fresh_postgres_url(server)
    try:
        yield url
    finally:
        drop_postgres_schema(server, schema)


@pytest.fixture
def backend(db_url: str) -> str:
    """``"sqlite"`` or ``"postgres"``: the backend of this test's ``db_url``."""
    return "sqlite" if db_url.startswith("sqlite") else "postgres"


@pytest.fixture
def another_db_url(db_url: str, tmp_path: Path) -> Iterator[str]:
    """A second fresh log on the same backend as ``db_url``."""
    if db_url.startswith("sqlite"):
        yield f"sqlite:///{tmp_path}/another-{uuid.uuid4().hex[:8]}.db"
        return
    server = postgres_server_url()
    assert server is not None
    url, schema = fresh_postgres_url(server)
    try:
        yield url
    finally:
        drop_postgres_schema(server, schema)


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    """A freshly opened log, one per backend that ``db_url`` (tests/conftest.py) names."""
    s = open_store(db_url)
    try:
        yield s
    finally:
        s.close()


@pytest.fixture
def processes(tmp_path: Path) -> Iterator[Processes]:
    """The child processes of this test: every one is killed and reaped when it ends."""
    group = Processes(tmp_path / "processes")
    try:
        yield group
    finally:
        group.close()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """A failed test that started child processes reports their output."""
    report = yield
    group = getattr(item, "funcargs", {}).get("processes")
    if report.failed and report.when == "call" and isinstance(group, Processes) and group.started:
        report.sections.append(("child processes", group.describe()))
    return report
