"""The one object every part of the store is handed: the connections, the prepared
statements, the dialect and the database's clock.

Parts (runs, journal, leases, signals, maintenance) never open a connection by other means
and share nothing else; what they need of one another they ask through public methods.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from durable.log._dberrors import DriverErrors, translate_errors
from durable.log.dialect import Dialect, RawTx
from durable.log.prepared import Prepared

__all__ = ["Db"]

_USED = "durable_used"
"""Key in a pooled connection's ``info``: when a transaction last ended on it (monotonic)."""

_NOTIFIED = "durable_notified"
"""Key in a pooled connection's ``info``: its transaction asked for a wake-up."""

_APPENDED = "durable_appended"
"""Key in a connection's ``info``: the runs whose journals its transaction appended to."""

_FINAL = "durable_appended_final"
"""Key in a connection's ``info``: one of them ended in this transaction."""


class Db:
    """Transactions on the log's database, its prepared statements and its clock."""

    def __init__(self, url: str, dialect: Dialect) -> None:
        self.url = url
        """The URL the store was opened with."""
        self.dialect = dialect
        """What differs between SQLite and Postgres in engines, clock and SQL."""
        self.prep = Prepared(dialect.write_engine.dialect)
        """The hot path's statements, compiled once per shape."""
        self.now: Callable[[Connection | RawTx], float] = dialect.now
        """The database's clock, read inside a transaction (Unix seconds)."""
        self._errors = DriverErrors(dialect.write_engine.dialect.dbapi)

    def close(self) -> None:
        """Close every pooled connection."""
        self.dialect.dispose()

    @contextlib.contextmanager
    def write(self) -> Iterator[Connection]:
        """A write transaction on a SQLAlchemy ``Connection`` (the paths that are not hot)."""
        notified = announced = False
        appended: set[str] = set()
        with translate_errors(self._errors):
            with self.dialect.write_engine.begin() as conn:
                try:
                    yield conn
                    appended = conn.info.get(_APPENDED) or set()
                    now = bool(conn.info.get(_FINAL) or conn.info.get(_NOTIFIED))
                    announced = bool(appended) and now and self.dialect.announce(conn, appended)
                finally:
                    notified = bool(conn.info.pop(_NOTIFIED, None))
                    conn.info.pop(_APPENDED, None)
                    conn.info.pop(_FINAL, None)
            if notified:
                self.dialect.committed(True)
            if appended and not announced:
                self.dialect.announced(appended)

    @contextlib.contextmanager
    def read(self) -> Iterator[Connection]:
        """A read on a SQLAlchemy ``Connection``."""
        with translate_errors(self._errors), self.dialect.read_engine.connect() as conn:
            yield conn

    def notify(self, c: Connection | RawTx, queue: str) -> None:
        """Wake other processes' idle workers once this transaction commits (once per
        transaction and queue)."""
        sent: set[str] = c.notified if isinstance(c, RawTx) else c.info.setdefault(_NOTIFIED, set())
        if queue not in sent:
            sent.add(queue)
            self.dialect.notify(c, queue)

    def appended(self, c: Connection | RawTx, run_id: str, *, final: bool = False) -> None:
        """This transaction appended to ``run_id``'s journal (``final``: an event that ends
        the run): its watchers learn of it when the transaction commits.

        Where the store's wake-ups are transactional (Postgres ``NOTIFY``), a transaction
        that ends a run, or wakes workers anyway, tells the watchers in the transaction, so
        that no crash can lose that wake-up. Any other is told after its commit, off the
        committing thread (``NOTIFY`` makes concurrent commits wait for one another: on
        every append it would halve their rate); a crash in between delays the wake-up
        until the run's next append, never loses an event."""
        if isinstance(c, RawTx):
            c.appended.add(run_id)
            c.announce_now = c.announce_now or final
        else:
            c.info.setdefault(_APPENDED, set()).add(run_id)
            if final:
                c.info[_FINAL] = True

    @contextlib.contextmanager
    def raw(self, write: bool = True) -> Iterator[RawTx]:
        """A transaction on a pooled DBAPI connection, for the hot path's prepared
        statements: no SQLAlchemy ``Connection``, events or result objects around it.
        Committed if the block ends normally, rolled back otherwise; a connection that
        failed is discarded rather than pooled again."""
        d = self.dialect
        with translate_errors(self._errors):
            engine = d.fast_engine if write else d.fast_read_engine
            pooled = self._checkout(engine)
            tx = RawTx(pooled, d.write_engine.dialect)
            announced = False
            try:
                if write:
                    d.begin_raw(pooled.driver_connection)
                yield tx
                now = tx.announce_now or bool(tx.notified)
                announced = bool(tx.appended) and now and d.announce(tx, tx.appended)
                pooled.commit()
                pooled.info[_USED] = time.monotonic()
            except BaseException:
                try:
                    pooled.rollback()
                except Exception:
                    pooled.invalidate()
                if d.is_broken(pooled.driver_connection):
                    # The server went away (a restart, a failover): every idle connection of
                    # this pool is as dead; start afresh rather than fail on each in turn.
                    pooled.invalidate()
                    engine.dispose()
                raise
            finally:
                pooled.close()
            if tx.notified:
                d.committed(True)
            if tx.appended and not announced:
                d.announced(tx.appended)

    def _checkout(self, engine: sa.Engine) -> Any:
        """A pooled DBAPI connection; one idle for longer than the dialect's
        ``ping_idle_after`` is checked first (a busy one is not: no round trip on the hot
        path), and replaced, with its idle pool-mates, if the server dropped it."""
        pooled = engine.raw_connection()
        after = self.dialect.ping_idle_after
        if after is None or time.monotonic() - pooled.info.get(_USED, 0.0) < after:
            return pooled
        try:
            dbapi: Any = pooled.driver_connection
            dbapi.cursor().execute("SELECT 1")
            pooled.rollback()
            return pooled
        except Exception:
            pooled.invalidate()
            pooled.close()
            engine.dispose()
            return engine.raw_connection()
