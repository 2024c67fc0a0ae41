"""Postgres specifics: psycopg 3, the server's clock, ``LISTEN/NOTIFY`` wake-ups, and session
limits so that a stalled worker's session cannot hold locks forever.

``postgresql://`` URLs are accepted as users write them and run on psycopg 3.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections.abc import Callable, Collection
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.engine import Connection

from durable.log.cancel_push import CHANNEL_SQL, PgCancelListener
from durable.log.dialect import Dialect, RawTx, cursor
from durable.log.pools import ClosingQueuePool
from durable.log.watch_postgres import (
    LISTEN_STOP_CHECK,
    Announcer,
    JournalListener,
    notify_appended,
)
from durable.redact import scrub

__all__ = ["CHANNEL", "Listener", "PostgresDialect", "normalize_url"]

log = logging.getLogger("durable.log.postgres")

CLOCK_RESYNC = 5.0
"""Seconds between two reads of the server's clock (see :meth:`PostgresDialect.now`)."""

CODE_POINT_COLLATIONS = frozenset({"c", "posix", "c.utf-8", "c.utf8"})
"""Collations of the C library whose text order is the code points' order."""

CHANNEL = "durable_wake"
"""The ``NOTIFY`` channel: payloads carry a queue name only, never user data."""


def normalize_url(url: str) -> str:
    """``postgresql://`` and ``postgres://`` become ``postgresql+psycopg://``."""
    u = sa.make_url(url.replace("postgres://", "postgresql://", 1))
    if u.drivername in ("postgresql", "postgresql+psycopg"):
        u = u.set(drivername="postgresql+psycopg")
    return u.render_as_string(hide_password=False)


class PostgresDialect(Dialect):
    """Engines and SQL that differ on Postgres."""

    ping_idle_after = 1.0

    def is_broken(self, dbapi_conn: Any) -> bool:
        return bool(getattr(dbapi_conn, "broken", False) or getattr(dbapi_conn, "closed", False))

    def __init__(
        self,
        url: str,
        *,
        synchronous: str = "FULL",
        pool_size: int = 8,
        lease_timeout: float = 30.0,
    ) -> None:
        url = normalize_url(url)
        self.url = url
        # No transaction of durable's waits on user code: one idle for a third of a lease is
        # stuck (its process stopped). Ending it frees its row locks, so that a takeover
        # (which skips locked rows) is not held up past the lease.
        idle_ms = int(max(2.0, lease_timeout / 3) * 1000)
        own = f"-c idle_in_transaction_session_timeout={idle_ms} -c lock_timeout=30000"
        if synchronous.upper() != "FULL":  # the documented opt-in: commits may be lost on a crash
            own += " -c synchronous_commit=off"
        user = sa.make_url(url).query.get("options")
        user_opts = user if isinstance(user, str) else " ".join(user or ())
        args: dict[str, Any] = {"options": f"{user_opts} {own}".strip(), "connect_timeout": 10}
        if "application_name" not in sa.make_url(url).query:
            args["application_name"] = f"durable/{os.getpid()}"
        self.write_engine = sa.create_engine(
            url,
            pool_size=pool_size,
            max_overflow=max(4, pool_size),
            pool_pre_ping=True,
            poolclass=ClosingQueuePool,
            connect_args=args,
        )
        self.read_engine = self.write_engine
        # The hot path's connections skip the ping on checkout (a round trip per
        # transaction); one that broke is thrown away on its error (``Db.raw``), and
        # the committer retries the append on a fresh one.
        self._fast = sa.create_engine(
            url,
            pool_size=min(pool_size, 4),
            max_overflow=pool_size,
            poolclass=ClosingQueuePool,
            connect_args=args,
        )
        # Reads of the hot path: autocommit, so that a read is one round trip (no COMMIT).
        self._fast_read = sa.create_engine(
            url,
            pool_size=min(pool_size, 4),
            max_overflow=pool_size,
            poolclass=ClosingQueuePool,
            connect_args=args,
            isolation_level="AUTOCOMMIT",
        )
        self._clock_offset = 0.0
        self._clock_synced = -CLOCK_RESYNC
        self._cancel_channel: str | None = None
        self._announcer = Announcer(self._fast_read)
        self._code_point: bool | None = None

    @property
    def fast_engine(self) -> sa.Engine:
        return self._fast

    def ids_by_code_point(self) -> bool:
        """The database's collation is ``C``, ``POSIX`` or ``C.UTF-8`` of the C library
        (read once): its text order is the code points' (an id prefix is then a range)."""
        if self._code_point is None:
            with self.read_engine.connect() as c:
                row = c.exec_driver_sql(
                    "SELECT datcollate, to_jsonb(d) ->> 'datlocprovider' FROM pg_database d "
                    "WHERE datname = current_database()"
                ).first()
            collate, provider = (row[0], row[1]) if row is not None else ("", None)
            by_libc = provider in (None, "c")
            self._code_point = by_libc and str(collate).lower() in CODE_POINT_COLLATIONS
        return self._code_point

    @property
    def fast_read_engine(self) -> sa.Engine:
        return self._fast_read

    def dispose(self) -> None:
        self._announcer.stop()
        self.write_engine.dispose()
        self._fast.dispose()
        self._fast_read.dispose()

    def now(self, conn: Connection | RawTx) -> float:
        """The server's clock: read from the server every ``CLOCK_RESYNC`` seconds and
        followed on this machine's monotonic clock in between, so that most transactions
        make no extra round trip. The estimate errs ahead, by at most the read's round trip,
        never behind (behind, a lease written from it would end early)."""
        mono = time.monotonic()
        if mono - self._clock_synced >= CLOCK_RESYNC:
            cur = cursor(conn)
            cur.execute("SELECT extract(epoch from clock_timestamp())::float8")
            server = float(cur.fetchone()[0])
            self._clock_offset = server - mono
            self._clock_synced = mono
        return mono + self._clock_offset

    def insert_ignore(self, table: sa.Table, index: list[str] | None = None) -> Any:
        return pg_insert(table).on_conflict_do_nothing(index_elements=index)

    def lock_schema(self, conn: Connection) -> None:
        """Serialize schema creation and upgrades among workers starting together."""
        conn.exec_driver_sql("SELECT pg_advisory_xact_lock(7210562849)")

    def lock_pending(self, conn: Connection | RawTx, queues: list[str]) -> None:
        """A transaction-scoped advisory lock per bounded queue, keyed by the schema and
        the queue (apart from the leases' lock of the queue, which starts never wait for)."""
        cur = cursor(conn)
        for queue in queues:
            cur.execute(
                "SELECT pg_advisory_xact_lock(hashtext('durable_pending:' || current_schema()"
                " || ':' || %s))",
                (queue,),
            )

    def notify(self, conn: Connection | RawTx, queue: str) -> None:
        cursor(conn).execute("SELECT pg_notify(%s, %s)", (CHANNEL, queue[:200]))

    def listen(self, on_notify: Callable[[str], None]) -> Listener | None:
        """Start a thread that calls ``on_notify(queue)`` for every wake-up."""
        return Listener(self.url, on_notify)

    def notify_cancel(self, conn: Connection | RawTx, run_id: str) -> None:
        """``NOTIFY`` the log's own cancel channel (its name read once), payload the id."""
        cur = cursor(conn)
        if self._cancel_channel is None:
            cur.execute(CHANNEL_SQL)
            self._cancel_channel = str(cur.fetchone()[0])
        cur.execute("SELECT pg_notify(%s, %s)", (self._cancel_channel, run_id))

    def listen_cancels(self, on_cancel: Callable[[str], None]) -> PgCancelListener:
        """Start a thread that calls ``on_cancel(run_id)`` for every cancel request."""
        return PgCancelListener(self.url, on_cancel)

    def announce(self, conn: Connection | RawTx, run_ids: Collection[str]) -> bool:
        """``NOTIFY`` the log's watch channel in the transaction (``watch_postgres.py``)."""
        notify_appended(cursor(conn), run_ids)
        return True

    def announced(self, run_ids: Collection[str]) -> None:
        """Queue the ``NOTIFY`` for the announcer thread (after the commit, off this one)."""
        self._announcer.send(run_ids)

    def listen_journals(self, on_append: Callable[[str], None]) -> JournalListener:
        """A thread ``LISTEN``ing on the log's watch channel."""
        return JournalListener(self.url, on_append)


class Listener:
    """A dedicated connection ``LISTEN``ing on :data:`CHANNEL`, reconnecting with backoff."""

    def __init__(self, url: str, on_notify: Callable[[str], None]) -> None:
        self._url = sa.make_url(url).set(drivername="postgresql").render_as_string(False)
        named = "application_name" in sa.make_url(url).query
        # Named like the pool's sessions, so that an operator sees (and can end) all of them.
        self._app_name = None if named else f"durable/{os.getpid()}"
        self._on_notify = on_notify
        self._stop = threading.Event()
        self._conn: Any = None
        self._thread = threading.Thread(target=self._run, name="durable-listen", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop listening."""
        self._stop.set()
        conn = self._conn
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.cancel()
        self._thread.join(5)

    def _run(self) -> None:
        import psycopg

        delay = 0.1
        while not self._stop.is_set():
            try:
                extra: dict[str, Any] = {}
                if self._app_name:
                    extra["application_name"] = self._app_name
                with psycopg.connect(
                    self._url, autocommit=True, connect_timeout=10, **extra
                ) as conn:
                    self._conn = conn
                    conn.execute(f"LISTEN {CHANNEL}")
                    delay = 0.1
                    self._on_notify("")  # (re)connected: anything may have been missed
                    while not self._stop.is_set():
                        for n in conn.notifies(timeout=LISTEN_STOP_CHECK):
                            self._on_notify(n.payload)
            except Exception as exc:
                if self._stop.is_set():
                    break
                log.warning(
                    "LISTEN connection lost (%s); reconnecting in %.1fs",
                    scrub(str(exc), self._url),
                    delay,
                )
                self._stop.wait(delay)
                delay = min(delay * 2, 5.0)
            finally:
                self._conn = None
