"""SQLite specifics: WAL, ``synchronous=FULL``, a busy timeout and ``BEGIN IMMEDIATE``.

Several worker processes can share one file: every write transaction takes SQLite's write
lock at its start (``BEGIN IMMEDIATE``), so that two writers never deadlock upgrading a read
lock, and waits up to the busy timeout for it. Reads run in their own deferred transactions
and never block writers in WAL mode.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Callable, Collection
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection

from durable.clock import SYSTEM_CLOCK, Clock
from durable.errors import LogSchemaError
from durable.log.cancel_push import cancel_fifo_dir
from durable.log.dialect import Dialect, RawTx, prefix_span
from durable.log.pools import ClosingQueuePool
from durable.log.wakeup import FifoListener, FolderWaker, fifo_dir, wake_all, watch_dir

__all__ = ["SqliteDialect", "check_sqlite_file", "sqlite_path"]

BUSY_TIMEOUT_S = 60.0


def sqlite_path(url: str) -> str | None:
    """The file path of a ``sqlite:///`` URL, or ``None`` for an in-memory database."""
    u = sa.make_url(url)
    db = u.database
    if not db or db == ":memory:":
        return None
    return db


def check_sqlite_file(path: str, schema_version: int) -> None:
    """Refuse, without writing to it, a file that is not a durable log of a known version.

    A missing or empty file is fine (it becomes a new log).
    """
    if not os.path.exists(path) or os.path.getsize(path) == 0:
        return
    try:
        # A read-only connection to a WAL file creates its -wal/-shm; with no -wal (nobody has
        # it open) read it as immutable, so that refusing a file leaves no trace beside it.
        flags = "mode=ro" if os.path.exists(f"{path}-wal") else "mode=ro&immutable=1"
        con = sqlite3.connect(f"file:{path}?{flags}", uri=True)
    except sqlite3.Error as exc:
        raise LogSchemaError(f"{path} cannot be opened as a SQLite database: {exc}") from exc
    try:
        tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if not tables:
            return
        if "durable_meta" not in tables:
            raise LogSchemaError(
                f"{path} is a SQLite database but not a durable log "
                f"(it has tables {sorted(tables)[:5]} and no durable_meta); "
                "point durable at a new file"
            )
        row = con.execute("SELECT value FROM durable_meta WHERE key = 'schema_version'").fetchone()
    except sqlite3.DatabaseError as exc:
        raise LogSchemaError(f"{path} is not a SQLite database: {exc}") from exc
    finally:
        con.close()
    if row is None:
        raise LogSchemaError(f"{path} has a durable_meta table without a schema version")
    try:
        found = int(row[0])
    except ValueError:
        raise LogSchemaError(f"{path}: unreadable schema version {row[0]!r}") from None
    if found > schema_version:
        raise LogSchemaError(
            f"{path} holds a durable log of schema version {found}, newer than this "
            f"version of durable understands ({schema_version}); upgrade durable"
        )


def _engine(
    url: str,
    *,
    immediate: bool,
    synchronous: str,
    busy_s: float = BUSY_TIMEOUT_S,
    pool_size: int = 8,
    max_overflow: int = 32,
) -> sa.Engine:
    engine = sa.create_engine(
        url,
        connect_args={"isolation_level": None, "check_same_thread": False, "timeout": 5.0},
        pool_size=pool_size,
        max_overflow=max_overflow,
        pool_timeout=BUSY_TIMEOUT_S,
        # Last in, first out: the connection that wrote last is taken again, with its page
        # cache still valid; FIFO would alternate between connections, and each would find
        # its cache stale (another connection wrote since) and read the pages again.
        pool_use_lifo=True,
        poolclass=ClosingQueuePool,
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        cur = dbapi_conn.cursor()
        cur.execute(f"PRAGMA busy_timeout = {int(busy_s * 1000)}")
        # Switching a new file to WAL can fail at once with "locked" (no busy handler) while
        # other connections open it too: retry within the busy timeout.
        deadline = time.monotonic() + BUSY_TIMEOUT_S
        while True:
            try:
                cur.execute("PRAGMA journal_mode = WAL")
                break
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(0.01)
        cur.execute(f"PRAGMA synchronous = {synchronous}")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


class SqliteDialect(Dialect):
    """Engines and SQL that differ on SQLite."""

    planner_has_statistics = False

    def __init__(self, url: str, *, synchronous: str = "FULL", clock: Clock = SYSTEM_CLOCK) -> None:
        self.clock = clock
        """The database's clock: the OS clock, or a test's virtual one (``durable.testing``)."""
        if synchronous.upper() not in ("FULL", "NORMAL", "EXTRA"):
            raise ValueError("synchronous must be FULL, NORMAL or EXTRA")
        self.write_engine = _engine(url, immediate=True, synchronous=synchronous.upper())
        self.read_engine = _engine(url, immediate=False, synchronous=synchronous.upper())
        # The hot path waits for the write lock itself (``begin_raw``), in steps far finer
        # than SQLite's busy handler (1, 2, 5, 10, 15, 20, 25 ms...): with several worker
        # processes on one file, most waits are a few hundred microseconds.
        # One connection: SQLite has one writer at a time anyway, and threads that take
        # turns on one connection find its page cache warm, where each of several would
        # find its own stale (another wrote since) and read the pages again.
        self._fast = _engine(
            url,
            immediate=True,
            synchronous=synchronous.upper(),
            busy_s=0,
            pool_size=1,
            max_overflow=0,
        )
        path = sqlite_path(url)
        self._wake_dir = fifo_dir(path) if path is not None else None
        self._cancel_dir = cancel_fifo_dir(path) if path is not None else None
        folder = watch_dir(path) if path is not None else None
        self._watchers = FolderWaker(folder) if folder is not None else None

    @property
    def fast_engine(self) -> sa.Engine:
        return self._fast

    def dispose(self) -> None:
        super().dispose()
        self._fast.dispose()

    def begin_raw(self, dbapi_conn: Any) -> None:
        """``BEGIN IMMEDIATE``, retried while another connection writes: from 50 µs,
        doubling up to 2 ms, for at most ``BUSY_TIMEOUT_S``."""
        delay, deadline = 5e-5, 0.0
        while True:
            try:
                dbapi_conn.execute("BEGIN IMMEDIATE")
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) and "busy" not in str(exc):
                    raise
                now = time.monotonic()
                deadline = deadline or now + BUSY_TIMEOUT_S
                if now > deadline:
                    raise
            time.sleep(delay)
            delay = min(delay * 2, 0.002)

    def now(self, conn: Connection | RawTx) -> float:
        # SQLite runs on this machine: its clock is this process's (the OS clock unless a
        # test's virtual one was handed in), read inside the write lock.
        return self.clock.now()

    def insert_ignore(self, table: sa.Table, index: list[str] | None = None) -> Any:
        return sqlite_insert(table).on_conflict_do_nothing(index_elements=index)

    def id_prefix(self, column: Any, prefix: str) -> tuple[Any, list[Any]]:
        """SQLite's ``LIKE`` ignores case, so the test is ``substr``; text compares by code
        point here, so the ids with ``prefix`` are also a range of the primary key."""
        return sa.func.substr(column, 1, len(prefix)) == prefix, prefix_span(column, prefix)

    def notify(self, conn: Connection | RawTx, queue: str) -> None:
        """Wake-ups go out after the commit (``committed``), through the FIFOs of
        ``log.wakeup``: a worker woken earlier would not see the rows yet."""

    def committed(self, notified: bool) -> None:
        if notified and self._wake_dir is not None:
            wake_all(self._wake_dir)  # never raises

    def listen(self, on_notify: Callable[[str], None]) -> FifoListener | None:
        """A FIFO that other processes' commits write wake-ups into (none in memory)."""
        if self._wake_dir is None:
            return None
        return FifoListener(self._wake_dir, on_notify)

    def cancels_committed(self) -> None:
        if self._cancel_dir is not None:
            wake_all(self._cancel_dir)  # never raises

    def listen_cancels(self, on_cancel: Callable[[str], None]) -> FifoListener | None:
        """A FIFO of its own that cancel requests of other processes wake."""
        if self._cancel_dir is None:
            return None
        return FifoListener(self._cancel_dir, on_cancel)

    def announced(self, run_ids: Collection[str]) -> None:
        """After the commit: the run ids into the journal watchers' FIFOs (``log.wakeup``)."""
        if self._watchers is not None:
            self._watchers.wake(run_ids)  # never raises

    def listen_journals(self, on_append: Callable[[str], None]) -> FifoListener | None:
        """A FIFO of the watchers' folder, which appending commits write run ids into."""
        if self._watchers is None:
            return None
        return FifoListener(self._watchers.folder, on_append, lines=True)
