"""The one place where driver and SQLAlchemy exceptions become ``DurableError``s."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import sqlalchemy.exc as sa_exc

from durable.errors import StoreError

__all__ = ["translate_errors"]


@contextlib.contextmanager
def translate_errors() -> Iterator[None]:
    """Re-raise database errors as :class:`StoreError` (``raise ... from exc``).

    Integrity errors (a broken unique constraint: a second line of defence of the journal)
    stay distinct as ``StoreError`` with ``integrity=True``.
    """
    try:
        yield
    except sa_exc.IntegrityError as exc:
        raise StoreError(f"the log refused a write: {exc.orig}", integrity=True) from exc
    except sa_exc.DBAPIError as exc:
        raise StoreError(f"database error: {exc.orig}", transient=True) from exc
