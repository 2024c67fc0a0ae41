"""Where a DBOS measurement journals: a fresh system database, and DBOS's configuration.

SQLite: a new file in a temp folder (DBOS opens it with its own settings: ``BEGIN
IMMEDIATE`` transactions, a 30 s busy timeout, SQLite's default rollback journal and
``synchronous=FULL``; DBOS sets no ``journal_mode``). Postgres: a new schema on the
configured server (DBOS's ``dbos_system_schema``, which DBOS creates), dropped afterwards,
so DBOS needs no database of its own.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from benchmarks.logs import libpq_url, postgres_server
from benchmarks.model import Settings
from benchmarks.timing import temp_dir

if TYPE_CHECKING:
    from dbos import DBOSClient, DBOSConfig

APP = "bench"
"""DBOS application name of every process of a measurement (it owns the queues)."""
VERSION = "bench"
"""Fixed ``application_version``: every process dequeues what the others enqueue, whatever
DBOS would compute from the source."""
QUEUE = "bench_queue"
"""The queue the benchmark process enqueues on and the worker processes dequeue from."""


@dataclass(frozen=True, slots=True)
class SystemDb:
    """One fresh DBOS system database."""

    url: str
    """``system_database_url``."""
    schema: str | None
    """``dbos_system_schema`` on Postgres; ``None`` on SQLite (no schemas)."""

    def table(self, name: str) -> str:
        """A DBOS table's name, qualified by the schema where there is one."""
        return name if self.schema is None else f'"{self.schema}".{name}'


@contextmanager
def fresh_system_db(settings: Settings, backend: str, prefix: str) -> Iterator[SystemDb]:
    """A new, empty DBOS system database on ``backend``, created (migrated) with
    ``DBOS.migrate`` before it is yielded, and removed afterwards."""
    from dbos import DBOS

    if backend == "sqlite":
        with temp_dir(settings.tmpdir, f"dbos-{prefix}") as folder:
            db = SystemDb(f"sqlite:///{os.path.join(folder, 'dbos.sqlite')}", None)
            DBOS.migrate(db.url)
            yield db
    elif backend == "postgres":
        server = libpq_url(postgres_server(settings))
        db = SystemDb(server, f"dbos_bench_{prefix}_{uuid.uuid4().hex[:10]}")
        try:
            DBOS.migrate(db.url, schema=db.schema or "dbos")
            yield db
        finally:
            with contextlib.suppress(Exception):
                _drop_schema(server, db.schema or "")
    else:
        raise ValueError(f"unknown backend {backend!r}")


def _drop_schema(server: str, schema: str) -> None:
    import psycopg

    with psycopg.connect(server, autocommit=True, connect_timeout=10) as conn:
        conn.execute("SET lock_timeout = '10s'")
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'.encode())  # generated name


def config(db: SystemDb, executor_id: str) -> DBOSConfig:
    """The configuration of one DBOS process on ``db``: DBOS's defaults except the name,
    the fixed version, a distinct ``executor_id`` per process (DBOS's docs require one
    wherever several processes share a system database and a queue has a
    ``worker_concurrency``), and warnings-only logs."""
    cfg: DBOSConfig = {
        "name": APP,
        "system_database_url": db.url,
        "application_version": VERSION,
        "executor_id": executor_id,
        "log_level": "WARNING",
    }
    if db.schema is not None:
        cfg["dbos_system_schema"] = db.schema
    return cfg


def client(db: SystemDb) -> DBOSClient:
    """A ``DBOSClient`` on ``db``: how DBOS enqueues from a process that runs no workflows."""
    from dbos import DBOSClient

    return DBOSClient(
        system_database_url=db.url,
        dbos_system_schema=db.schema or "dbos",
        application_name=APP,
    )


def register_queue(db_client: DBOSClient, settings: Settings, **limits: Any) -> None:
    """Declare :data:`QUEUE` (from the client, before any worker starts) with
    ``limits`` (e.g. ``worker_concurrency``) and the benchmark's polling interval."""
    db_client.register_queue(
        QUEUE,
        polling_interval_sec=settings.dbos_polling_interval,
        application_name=APP,
        **limits,
    )


def enqueue_options(workflow_name: str) -> Any:
    """``EnqueueOptions`` for one run of ``workflow_name`` on :data:`QUEUE`."""
    from dbos import EnqueueOptions

    opts: EnqueueOptions = {
        "workflow_name": workflow_name,
        "queue_name": QUEUE,
        "app_version": VERSION,
    }
    return opts
