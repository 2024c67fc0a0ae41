"""Open the store a URL names: ``sqlite:///path`` or ``postgresql://...``."""

from __future__ import annotations

import os

import sqlalchemy as sa

from durable.errors import DurableError, StoreError
from durable.log._dberrors import translate_errors
from durable.log.migrate import ensure_schema
from durable.log.schema import SCHEMA_VERSION
from durable.log.sqlstore import SqlStore

__all__ = ["open_store"]


def open_store(
    url: str,
    *,
    synchronous: str = "FULL",
    max_stalls: int = 10,
    pool_size: int = 8,
    lease_timeout: float = 30.0,
    create: bool = True,
) -> SqlStore:
    """Open (creating if needed, unless ``create`` is false) the durable log at ``url``.

    Raises:
        LogSchemaError: the database is not a durable log, or of a newer schema; it is left
            untouched. With ``create`` false: also a database that holds no log (Postgres).
        StoreError: the database cannot be reached or opened; with ``create`` false, also a
            SQLite file that does not exist or is empty (it is not created).
        ValueError: the URL names no supported database.
    """
    try:
        backend = sa.make_url(url).get_backend_name()
    except Exception as exc:
        raise ValueError(f"not a database URL: {url!r}") from exc
    if backend == "sqlite":
        from durable.log.sqlite import SqliteDialect, check_sqlite_file, sqlite_path

        path = sqlite_path(url)
        if path is None:
            raise ValueError(
                "an in-memory SQLite database cannot be shared by a worker; use sqlite:///FILE"
            )
        if not create and (not os.path.exists(path) or os.path.getsize(path) == 0):
            raise StoreError(f"no durable log at {path}: the file does not exist or is empty")
        check_sqlite_file(path, SCHEMA_VERSION)
        dialect = SqliteDialect(url, synchronous=synchronous)
    elif backend in ("postgresql", "postgres"):
        from durable.log.postgres import PostgresDialect

        dialect = PostgresDialect(  # type: ignore[assignment]
            url, synchronous=synchronous, pool_size=pool_size, lease_timeout=lease_timeout
        )
    else:
        raise ValueError(
            f"unsupported database {backend!r} in {url!r}: use sqlite:///FILE or postgresql://..."
        )
    try:
        with translate_errors():
            ensure_schema(
                dialect.write_engine, dialect.lock_schema, dialect.read_engine, create=create
            )
    except DurableError:
        dialect.dispose()
        raise
    return SqlStore(url, dialect, max_stalls=max_stalls)
