"""The one place where driver and SQLAlchemy exceptions become ``DurableError``s."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import sqlalchemy.exc as sa_exc

from durable.errors import StoreError

__all__ = ["DriverErrors", "translate_errors"]


class DriverErrors:
    """The exception classes of one DBAPI driver (PEP 249: ``Error``, ``IntegrityError``).

    Statements of the hot path run on the driver's cursor directly (``log.prepared``), so
    their errors arrive unwrapped by SQLAlchemy.
    """

    __slots__ = ("error", "integrity")

    def __init__(self, dbapi: Any = None) -> None:
        self.error: tuple[type[BaseException], ...] = (dbapi.Error,) if dbapi is not None else ()
        self.integrity: tuple[type[BaseException], ...] = (
            (dbapi.IntegrityError,) if dbapi is not None else ()
        )


_NONE = DriverErrors()


@contextlib.contextmanager
def translate_errors(driver: DriverErrors = _NONE) -> Iterator[None]:
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
    except driver.integrity as exc:
        raise StoreError(f"the log refused a write: {exc}", integrity=True) from exc
    except driver.error as exc:
        raise StoreError(f"database error: {exc}", transient=True) from exc
