"""The connection pool of every engine the log opens.

SQLAlchemy's ``engine.dispose()`` closes the idle connections and starts a new pool; a
connection checked out at that moment goes back, when its holder is done, into the *old*
pool, which nothing closes any more: the DBAPI connection is left to the garbage collector
(psycopg warns that it "was deleted while still open", and the server keeps the session
until then). The log disposes its engines while other threads may hold a connection: at
``close()``, and after a connection broke (the server restarted, every idle sibling is as
dead). :class:`ClosingQueuePool` closes, instead of keeping, a connection handed back to a
pool that was disposed.
"""

from __future__ import annotations

from sqlalchemy.pool import ConnectionPoolEntry, QueuePool

__all__ = ["ClosingQueuePool"]


class ClosingQueuePool(QueuePool):
    """A ``QueuePool`` that closes the connections returned to it after its ``dispose()``."""

    _disposed = False

    def dispose(self) -> None:
        """Close the idle connections, and from now on each one handed back."""
        self._disposed = True
        super().dispose()

    def _do_return_conn(self, record: ConnectionPoolEntry) -> None:
        super()._do_return_conn(record)
        if self._disposed:
            # Put back first, then drained: a return that races ``dispose()`` is closed by
            # one or the other (the flag is set before ``dispose()`` drains).
            super().dispose()
