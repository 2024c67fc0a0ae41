"""Statements of the hot path, compiled once per shape and run without SQLAlchemy's
per-call compilation: the SQL of a ``Prepared`` statement is built from the one Core schema,
then executed with ``exec_driver_sql``."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from typing import Any

from sqlalchemy.engine import Connection, CursorResult, Dialect

__all__ = ["Prepared"]


class Prepared:
    """A cache of compiled statements for one SQLAlchemy dialect."""

    def __init__(self, dialect: Dialect) -> None:
        self._dialect = dialect
        self._cache: dict[Hashable, tuple[str, tuple[str, ...] | None]] = {}

    def _compiled(
        self, key: Hashable, build: Callable[[], Any]
    ) -> tuple[str, tuple[str, ...] | None]:
        hit = self._cache.get(key)
        if hit is None:
            compiled = build().compile(dialect=self._dialect)
            names = tuple(compiled.positiontup or ()) if compiled.positional else None
            hit = self._cache[key] = (compiled.string, names)
        return hit

    def run(
        self,
        conn: Connection,
        key: Hashable,
        build: Callable[[], Any],
        params: dict[str, Any] | Sequence[dict[str, Any]],
    ) -> CursorResult[Any]:
        """Execute the statement ``build()`` makes (compiled once under ``key``) with
        ``params``: one dict, or a list of dicts for an executemany."""
        sql, names = self._compiled(key, build)
        if isinstance(params, dict):
            args: Any = tuple(params[n] for n in names) if names is not None else params
        elif names is not None:
            args = [tuple(p[n] for n in names) for p in params]
        else:
            args = list(params)
        return conn.exec_driver_sql(sql, args)
