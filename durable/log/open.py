"""Open the store a URL names: ``sqlite:///path`` or ``postgresql://...``.

The backend's strategies (how it takes runs, how it appends) are chosen here, once.
"""

from __future__ import annotations

import os
from collections.abc import Callable

import sqlalchemy as sa

from durable.clock import SYSTEM_CLOCK, Clock
from durable.errors import DurableError, StoreError, StoreOpenError, StoreUnreachableError
from durable.log._dberrors import translate_errors
from durable.log.appending import Appender, PostgresAppender, SqliteAppender
from durable.log.db import Db
from durable.log.dialect import Dialect
from durable.log.leasing import Leasing
from durable.log.migrate import ensure_schema
from durable.log.runs import Runs
from durable.log.schema import SCHEMA_VERSION
from durable.log.sqlstore import SqlStore
from durable.redact import redact_url, scrub, userinfo_password

__all__ = ["open_store"]


def _parse(url: str) -> sa.URL:
    """The parsed URL, or a :class:`StoreOpenError` that says what is wrong with it."""
    shown = redact_url(url)
    try:
        u = sa.make_url(url)
    except Exception as exc:
        raise StoreOpenError(
            f"not a database URL: {shown!r} ({scrub(str(exc), url)}); "
            "use sqlite:///FILE or postgresql://USER:PASSWORD@HOST:PORT/DATABASE"
        ) from None
    written = userinfo_password(url)
    if written is not None and written != u.password:
        raise StoreOpenError(
            f"the password in {shown!r} does not parse: percent-encode the characters "
            "'@', ':', '/', '?', '#' and '%' in it (e.g. '@' as %40)"
        )
    return u


def open_store(
    url: str,
    *,
    synchronous: str = "FULL",
    max_stalls: int = 10,
    pool_size: int = 8,
    lease_timeout: float = 30.0,
    create: bool = True,
    clock: Clock = SYSTEM_CLOCK,
) -> SqlStore:
    """Open (creating if needed, unless ``create`` is false) the durable log at ``url``.

    Raises:
        StoreOpenError: the URL is malformed, names no supported database (or an in-memory
            SQLite one), or its password does not parse; the server cannot be reached or
            refused the connection; a SQLite file's folder does not exist. The message names
            the URL, its password hidden, or the file, and the cause.
        LogSchemaError: the database is not a durable log, or of a newer schema; it is left
            untouched. With ``create`` false: also a database that holds no log (Postgres).
        StoreError: with ``create`` false, a SQLite file that does not exist or is empty (it
            is not created).
        ValueError: ``synchronous`` is none of ``FULL``, ``NORMAL``, ``EXTRA``; a ``clock``
            other than the system's on Postgres (whose clock is the server's).
    """
    shown = redact_url(url)
    u = _parse(url)
    backend = u.get_backend_name()
    dialect: Dialect
    leasing: Callable[[Db, Runs, int], Leasing]
    appender: Callable[[Db], Appender]
    if backend == "sqlite":
        from durable.log.leasing_sqlite import SqliteLeasing
        from durable.log.sqlite import SqliteDialect, check_sqlite_file, sqlite_path

        path = sqlite_path(url)
        if path is None:
            raise StoreOpenError(
                "an in-memory SQLite database cannot be shared by a worker; use sqlite:///FILE"
            )
        folder = os.path.dirname(os.path.abspath(path))
        if not os.path.isdir(folder):
            raise StoreOpenError(
                f"cannot open the SQLite log {path}: its folder {folder} does not exist"
            )
        if not create and (not os.path.exists(path) or os.path.getsize(path) == 0):
            raise StoreError(f"no durable log at {path}: the file does not exist or is empty")
        check_sqlite_file(path, SCHEMA_VERSION)
        dialect = SqliteDialect(url, synchronous=synchronous, clock=clock)
        leasing, appender = SqliteLeasing, SqliteAppender
        where = path
    elif backend in ("postgresql", "postgres"):
        from durable.log.leasing_postgres import PostgresLeasing
        from durable.log.postgres import PostgresDialect

        if clock is not SYSTEM_CLOCK:
            raise ValueError("a virtual clock needs a SQLite log (Postgres keeps its own clock)")

        dialect = PostgresDialect(
            url, synchronous=synchronous, pool_size=pool_size, lease_timeout=lease_timeout
        )
        leasing, appender = PostgresLeasing, PostgresAppender
        where = shown
    else:
        raise StoreOpenError(
            f"unsupported database {backend!r} in {shown!r}: use sqlite:///FILE or postgresql://..."
        )
    try:
        with translate_errors():
            ensure_schema(
                dialect.write_engine, dialect.lock_schema, dialect.read_engine, create=create
            )
    except StoreError as exc:
        dialect.dispose()
        cause = exc.__cause__
        text = str(getattr(cause, "orig", None) or cause or exc)
        first = scrub(text, url).strip().splitlines()[0] if text.strip() else "unknown error"
        raise StoreUnreachableError(f"cannot open the log at {where}: {first}") from None
    except DurableError:
        dialect.dispose()
        raise
    return SqlStore(url, dialect, leasing=leasing, appender=appender, max_stalls=max_stalls)
