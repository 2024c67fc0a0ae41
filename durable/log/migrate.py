"""The schema version of a log: create a fresh one, check an existing one.

Version 1 is the first schema; later versions add ordered upgrade functions to
``UPGRADES`` (each runs in the write transaction that bumps the version row).
"""

from __future__ import annotations

from collections.abc import Callable

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from durable.errors import LogSchemaError
from durable.log.schema import (
    LIST_INDEX,
    SCHEMA_VERSION,
    events,
    meta,
    metadata,
    runs,
    schedules,
    workers,
)
from durable.states import Status

__all__ = ["UPGRADES", "ensure_schema"]


def _add_column(conn: Connection, table: sa.Table, name: str) -> None:
    col = table.c[name]
    kind = col.type.compile(dialect=conn.dialect)
    conn.exec_driver_sql(f"ALTER TABLE {table.name} ADD COLUMN {col.name} {kind}")


def _to_v2(conn: Connection) -> None:
    """``durable_runs.started_at`` and the queue indexes (rate and concurrency limits)."""
    _add_column(conn, runs, "started_at")
    conn.execute(
        sa.update(runs)
        .where(runs.c.status != Status.PENDING.value)
        .values(started_at=runs.c.created_at)
    )
    next(i for i in runs.indexes if i.name == "ix_durable_runs_queue_started_at").create(conn)
    conn.exec_driver_sql(f"CREATE INDEX {_V2_QUEUE_STATUS} ON durable_runs (queue, status)")


_V2_QUEUE_STATUS = "ix_durable_runs_queue_status"
"""The index of a queue's runs by status from version 2 to 6 (replaced in version 7)."""


def _to_v3(conn: Connection) -> None:
    """``durable_events.append_id`` (recognising a retried append)."""
    _add_column(conn, events, "append_id")


def _to_v4(conn: Connection) -> None:
    """``durable_runs.options`` and ``.version``; the ``durable_workers`` table."""
    _add_column(conn, runs, "options")
    _add_column(conn, runs, "version")
    workers.create(conn)


def _to_v5(conn: Connection) -> None:
    """``durable_runs.cancel_requested_at`` and the index of the open cancel requests;
    ``durable_runs.step`` and ``.step_progress``; a workflow's completed runs by end."""
    _add_column(conn, runs, "cancel_requested_at")
    next(i for i in runs.indexes if i.name == "ix_durable_runs_cancel_requested").create(conn)
    _add_column(conn, runs, "step")
    _add_column(conn, runs, "step_progress")
    name = "ix_durable_runs_workflow_status_finished_at"
    next(i for i in runs.indexes if i.name == name).create(conn)


def _to_v6(conn: Connection) -> None:
    """``durable_runs.watched_until``."""
    _add_column(conn, runs, "watched_until")


def _to_v7(conn: Connection) -> None:
    """The queue index by ``(queue, status, started_at)`` in place of ``(queue, status)``
    (counting a bounded queue's runs not yet started from the index alone)."""
    conn.exec_driver_sql(f"DROP INDEX IF EXISTS {_V2_QUEUE_STATUS}")
    name = "ix_durable_runs_queue_status_started_at"
    next(i for i in runs.indexes if i.name == name).create(conn)


def _to_v8(conn: Connection) -> None:
    """``durable_runs.blocked_versions``."""
    _add_column(conn, runs, "blocked_versions")


def _to_v9(conn: Connection) -> None:
    """``durable_runs.dedup_key`` and its partial unique index (the unfinished runs)."""
    _add_column(conn, runs, "dedup_key")
    next(i for i in runs.indexes if i.name == "uq_durable_runs_dedup_key").create(conn)


def _to_v10(conn: Connection) -> None:
    """The ``durable_schedules`` table (and its index)."""
    schedules.create(conn)


def _to_v11(conn: Connection) -> None:
    """The index of a status's runs in the runs list's order, ``(status, created_at, id)``."""
    next(i for i in runs.indexes if i.name == LIST_INDEX).create(conn)


UPGRADES: dict[int, Callable[[Connection], None]] = {
    2: _to_v2,
    3: _to_v3,
    4: _to_v4,
    5: _to_v5,
    6: _to_v6,
    7: _to_v7,
    8: _to_v8,
    9: _to_v9,
    10: _to_v10,
    11: _to_v11,
}
"""``UPGRADES[n]`` upgrades a log of version ``n - 1`` to version ``n``, inside the one write
transaction that also bumps the version row (DDL is transactional on SQLite and Postgres)."""


def _version(conn: Connection) -> int | None:
    insp = sa.inspect(conn)
    if not insp.has_table(meta.name):
        tables = [t for t in insp.get_table_names() if t.startswith("durable_")]
        if tables:
            raise LogSchemaError(f"the database has durable tables {tables} but no durable_meta")
        return None
    v = conn.execute(sa.select(meta.c.value).where(meta.c.key == "schema_version")).scalar()
    if v is None:
        raise LogSchemaError("durable_meta holds no schema_version")
    return int(v)


def ensure_schema(
    engine: sa.Engine,
    lock: Callable[[Connection], None] = lambda _conn: None,
    probe_engine: sa.Engine | None = None,
    *,
    create: bool = True,
) -> int:
    """Create the log in an empty database, or upgrade an older one; return its version.

    Runs in one write transaction, so that workers starting together on an empty database do
    not race: one creates, the others find it created.

    Raises:
        LogSchemaError: the log is of a newer version than this code knows; or ``create`` is
            false and the database holds no log.
    """
    with (probe_engine or engine).connect() as probe:  # a read: takes no write lock
        try:
            found = _version(probe)
        except LogSchemaError:
            # Unlocked, its statements may straddle another process's creation of the log
            # (no durable_meta yet, then every table): decide under the lock instead.
            found = None
    if found == SCHEMA_VERSION:
        return found
    with engine.begin() as conn:
        lock(conn)
        found = _version(conn)
        if found is None and not create:
            raise LogSchemaError("the database holds no durable log (no durable tables)")
        if found is None:
            metadata.create_all(conn)
            conn.execute(meta.insert().values(key="schema_version", value=str(SCHEMA_VERSION)))
            return SCHEMA_VERSION
        if found > SCHEMA_VERSION:
            raise LogSchemaError(
                f"the log is of schema version {found}, newer than this durable "
                f"understands ({SCHEMA_VERSION}); upgrade durable"
            )
        for v in range(found + 1, SCHEMA_VERSION + 1):
            UPGRADES[v](conn)
        conn.execute(
            sa.update(meta).where(meta.c.key == "schema_version").values(value=str(SCHEMA_VERSION))
        )
        return SCHEMA_VERSION
