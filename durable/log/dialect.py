"""What differs between the databases :class:`~durable.log.sqlstore.SqlStore` runs on, in
connections and SQL: engines, transactions, the clock, the upsert, wake-ups.

``sqlite.py`` and ``postgres.py`` each subclass :class:`Dialect`. How each backend takes runs
and appends is not here but in strategies (``leasing_*.py``, ``appending.py``).
"""

from __future__ import annotations

import abc
from collections import namedtuple
from collections.abc import Callable, Collection, Iterator
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

__all__ = ["Dialect", "RawTx", "Rows", "cursor", "prefix_span"]


class RawTx:
    """A pooled DBAPI connection inside a transaction that :meth:`Db.raw` began itself.

    Shaped like a SQLAlchemy ``Connection`` where the prepared statements look
    (``.connection.driver_connection``), so that they run on either; :meth:`execute` runs a
    Core statement too (compiled on each call: for the paths that are not hot).
    """

    __slots__ = ("announce_now", "appended", "connection", "dialect", "notified")

    def __init__(self, connection: Any, dialect: sa.Dialect) -> None:
        self.connection = connection
        self.dialect = dialect
        self.notified: set[str] = set()
        """The queues this transaction asked to wake other processes' workers for."""
        self.appended: set[str] = set()
        """The runs whose journals this transaction appended to (for their watchers)."""
        self.announce_now = False
        """One of them ended: tell their watchers in the transaction, where that is possible."""

    def execute(self, stmt: Any, params: list[dict[str, Any]] | None = None) -> Rows:
        """Run a Core statement (``params``: rows of an executemany ``INSERT``)."""
        compiled = stmt.compile(
            dialect=self.dialect,
            column_keys=list(params[0]) if params else None,
            compile_kwargs={"render_postcompile": True},
        )
        names = compiled.positiontup if compiled.positional else None
        cur = cursor(self)
        if params:
            fixed = compiled.construct_params()
            many = [{**fixed, **p} for p in params]
            cur.executemany(
                compiled.string, [tuple(p[n] for n in names) for p in many] if names else many
            )
        else:
            values = compiled.construct_params()
            cur.execute(
                compiled.string, tuple(values[n] for n in names) if names is not None else values
            )
        return Rows(cur)


class Rows:
    """The rows of a :meth:`RawTx.execute`, readable by position or column name (as
    SQLAlchemy's result rows)."""

    def __init__(self, cur: Any) -> None:
        self._rows: list[Any] = []
        if cur.description is not None:
            shape = namedtuple("Row", [d[0] for d in cur.description], rename=True)  # type: ignore[misc]
            self._rows = [shape(*r) for r in cur.fetchall()]

    def __iter__(self) -> Iterator[Any]:
        return iter(self._rows)

    def all(self) -> list[Any]:
        """Every row."""
        return list(self._rows)

    def first(self) -> Any:
        """The first row, or ``None``."""
        return self._rows[0] if self._rows else None

    def scalar(self) -> Any:
        """The first column of the first row, or ``None``."""
        return self._rows[0][0] if self._rows else None

    def scalar_one(self) -> Any:
        """The first column of the only row."""
        if len(self._rows) != 1:
            raise LookupError(f"{len(self._rows)} rows where one was expected")
        return self._rows[0][0]


def cursor(conn: Connection | RawTx) -> Any:
    """A DBAPI cursor on the connection under ``conn``."""
    return conn.connection.driver_connection.cursor()  # type: ignore[union-attr]


def prefix_span(column: Any, prefix: str) -> list[Any]:
    """The range of ``column`` that holds every text starting with ``prefix``, where texts
    compare code point by code point: ``column >= prefix`` and ``column <`` the least text
    past them all (none past a prefix of the last code points)."""
    span = [column >= prefix]
    for i in range(len(prefix) - 1, -1, -1):
        code = ord(prefix[i]) + 1
        if 0xD800 <= code <= 0xDFFF:  # surrogates are no text
            code = 0xE000
        if code <= 0x10FFFF:
            span.append(column < prefix[:i] + chr(code))
            break
    return span


class Dialect(abc.ABC):
    """What differs between stores: engines, transactions, the clock, the upsert."""

    write_engine: Engine
    read_engine: Engine

    @property
    def fast_engine(self) -> Engine:
        """The engine whose pooled DBAPI connections the hot path borrows (``RawTx``)."""
        return self.write_engine

    @property
    def fast_read_engine(self) -> Engine:
        """The engine whose pooled DBAPI connections the hot path's reads borrow."""
        return self.read_engine

    def begin_raw(self, dbapi_conn: Any) -> None:  # noqa: B027 - a no-op by default
        """Begin a write transaction on a DBAPI connection (where the driver does not
        begin one by itself)."""

    @abc.abstractmethod
    def now(self, conn: Connection | RawTx) -> float:
        """The database's clock, in Unix seconds, read inside the transaction."""

    @abc.abstractmethod
    def insert_ignore(self, table: sa.Table, index: list[str] | None = None) -> Any:
        """An ``INSERT`` that does nothing when the key in ``index`` exists (``None``: when
        any unique key of the table does, partial unique indexes included)."""

    def dispose(self) -> None:
        """Close every pooled connection."""
        self.write_engine.dispose()
        self.read_engine.dispose()

    def lock_pending(self, conn: Connection | RawTx, queues: list[str]) -> None:  # noqa: B027
        """Serialize the starts into these bounded queues (sorted) until the transaction
        ends: a no-op where write transactions already are serialized (SQLite)."""

    def lock_schema(self, conn: Connection) -> None:  # noqa: B027 - a no-op by default
        """Serialize schema creation among processes (a no-op where writes already are)."""

    planner_has_statistics: bool = True
    """Whether the database's planner picks an index from statistics of the data (Postgres,
    which ``ANALYZE``s by itself); SQLite's guesses without them (durable never runs
    ``ANALYZE``), so the runs list steers it with a few reads (``durable.log.listing``)."""

    def id_prefix(self, column: Any, prefix: str) -> tuple[Any, list[Any]]:
        """``column`` starts with ``prefix``, exactly (case and all): ``LIKE`` with the
        pattern's wildcards escaped, a bound parameter; and the range of the index that
        holds those values, where the database compares text by code point
        (:meth:`ids_by_code_point`), else ``[]`` (a collation's order may put them apart)."""
        escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        like = column.like(escaped + "%", escape="\\")
        return like, prefix_span(column, prefix) if self.ids_by_code_point() else []

    def ids_by_code_point(self) -> bool:
        """Whether the database orders ids code point by code point."""
        return False

    ping_idle_after: float | None = None
    """Seconds after which an idle pooled connection is pinged before use (a server that
    restarts may have dropped it); ``None``: never (SQLite)."""

    def is_broken(self, dbapi_conn: Any) -> bool:
        """Whether a DBAPI connection lost its server after an error."""
        return False

    def notify(self, conn: Connection | RawTx, queue: str) -> None:  # noqa: B027 - a no-op by default
        """Wake idle workers of other processes when this transaction commits (if the
        store can push; elsewhere they find the work at their next poll)."""

    def committed(self, notified: bool) -> None:  # noqa: B027 - a no-op by default
        """After a transaction committed; ``notified``: it called :meth:`notify` (a store
        whose wake-ups are not transactional sends them now)."""

    def listen(self, on_notify: Callable[[str], None]) -> Any:
        """Start pushing wake-ups to ``on_notify``; ``None`` if the store cannot."""
        return None

    # -- cancel pushes (``log.cancel_push``) ---------------------------------------------

    def notify_cancel(self, conn: Connection | RawTx, run_id: str) -> None:  # noqa: B027 - a no-op by default
        """Push a cancel request of ``run_id`` to its holder when this transaction commits
        (where the store pushes it inside the transaction)."""

    def cancels_committed(self) -> None:  # noqa: B027 - a no-op by default
        """After a transaction that recorded cancel requests committed (a store whose
        pushes are not transactional sends them now)."""

    def listen_cancels(self, on_cancel: Callable[[str], None]) -> Any:
        """Start pushing cancel requests to ``on_cancel`` (a run id, ``""``: look them up);
        an object with ``stop()``, or ``None`` if the store cannot push them."""
        return None

    # -- journal watchers (``client.watch``): separate from the workers' wake-ups ---------

    def announce(self, conn: Connection | RawTx, run_ids: Collection[str]) -> bool:
        """Inside a transaction that appended to the journals of ``run_ids`` and that must
        tell their watchers reliably (it ends a run, or wakes workers anyway), just before
        its commit: whether this did (Postgres ``NOTIFY``), else :meth:`announced` will."""
        return False

    def announced(self, run_ids: Collection[str]) -> None:  # noqa: B027 - a no-op by default
        """After a transaction that appended to ``run_ids`` committed, unless
        :meth:`announce` told their watchers already."""

    def listen_journals(self, on_append: Callable[[str], None]) -> Any:
        """Start pushing journal growth to ``on_append`` from a thread: the ids of the runs
        whose journals grew, one per line, or ``""`` (any run may have: after a reconnect).
        Returns an object with ``stop()``, or ``None`` if the store cannot push."""
        return None
