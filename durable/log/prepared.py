"""Statements of the hot path, compiled once per shape and run on the driver's cursor.

The SQL of a ``Prepared`` statement is built from the one Core schema and compiled once per
key; each execution then goes straight to the DBAPI cursor of the transaction's connection,
without SQLAlchemy's per-call statement building, caching and result wrapping. Rows come back
as plain tuples.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from typing import Any

from sqlalchemy.engine import Connection, Dialect

from durable.log.dialect import RawTx, cursor

__all__ = ["Prepared"]


class Prepared:
    """A cache of compiled statements for one SQLAlchemy dialect."""

    def __init__(self, dialect: Dialect) -> None:
        self._dialect = dialect
        self._cache: dict[Hashable, tuple[str, tuple[str, ...] | None, dict[str, Any]]] = {}

    def _compiled(
        self, key: Hashable, build: Callable[[], Any]
    ) -> tuple[str, tuple[str, ...] | None, dict[str, Any]]:
        """The SQL, the order of its positional parameters (``None``: named), and the
        values of the parameters that the statement fixed itself (``values(seq=1)``)."""
        hit = self._cache.get(key)
        if hit is None:
            compiled = build().compile(dialect=self._dialect)
            if "POSTCOMPILE" in compiled.string:  # an IN list of values: not compiled once
                raise TypeError(f"prepared statement {key!r} has an expanding IN parameter")
            names = tuple(compiled.positiontup or ()) if compiled.positional else None
            fixed = {k: b.effective_value for k, b in compiled.binds.items() if not b.required}
            hit = self._cache[key] = (compiled.string, names, fixed)
        return hit

    def run(
        self,
        conn: Connection | RawTx,
        key: Hashable,
        build: Callable[[], Any],
        params: dict[str, Any] | Sequence[dict[str, Any]],
    ) -> Any:
        """Execute the statement ``build()`` makes (compiled once under ``key``) with
        ``params`` (one dict, or a list of dicts for an executemany); returns the DBAPI
        cursor, its rows plain tuples."""
        sql, names, fixed = self._compiled(key, build)
        cur = cursor(conn)
        if fixed:
            params = (
                {**fixed, **params}
                if isinstance(params, dict)
                else [{**fixed, **p} for p in params]
            )
        if isinstance(params, dict):
            cur.execute(sql, tuple(params[n] for n in names) if names is not None else params)
        elif names is not None:
            cur.executemany(sql, [tuple(p[n] for n in names) for p in params])
        else:
            cur.executemany(sql, list(params))
        return cur

    def first(
        self,
        conn: Connection | RawTx,
        key: Hashable,
        build: Callable[[], Any],
        params: dict[str, Any],
    ) -> Any:
        """The first row of the statement's result, or ``None``."""
        return self.run(conn, key, build, params).fetchone()

    def all(
        self,
        conn: Connection | RawTx,
        key: Hashable,
        build: Callable[[], Any],
        params: dict[str, Any],
    ) -> list[Any]:
        """Every row of the statement's result."""
        rows: list[Any] = self.run(conn, key, build, params).fetchall()
        return rows
