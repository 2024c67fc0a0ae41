"""The push of a cancel request to the worker that holds the run, across processes.

A client that asks a run's holder to stop it (:meth:`~durable.log.store.Store.cancel` on a
run that a live lease holds) records the request in the run's row, then pushes it:

- **Postgres**: a ``NOTIFY`` on a channel of this log alone (named after the database and the
  schema, so that logs sharing a server do not hear each other), sent in the transaction that
  records the request; its payload is the run's id, nothing else.
- **SQLite**: a wake-up through FIFOs (as ``log.wakeup`` does for new work) in a folder of
  their own, so that cancel pushes and work wake-ups never wake each other's listeners; the
  worker then reads which runs have an open request (one indexed read).

Either way the listener calls ``on_cancel(run_id)``, with ``""`` when it does not know which
run (a SQLite wake-up, a Postgres listener that reconnected and may have missed some).
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa

from durable.log.wakeup import fifo_dir
from durable.log.watch_postgres import LISTEN_STOP_CHECK
from durable.redact import scrub

__all__ = ["CHANNEL_SQL", "PgCancelListener", "cancel_fifo_dir"]

log = logging.getLogger("durable.log.cancel_push")

CHANNEL_SQL = (
    "SELECT 'durable_cancel_' || substr(md5(current_database() || '/' || current_schema()), 1, 16)"
)
"""The ``NOTIFY`` channel of this log's cancel pushes: one per database and schema, an
identifier that needs no quoting."""


def cancel_fifo_dir(db_path: str) -> str | None:
    """The folder of the cancel FIFOs of the SQLite log at ``db_path`` (``None`` where there
    are no FIFOs): beside the wake-up folder of ``log.wakeup``, not inside it."""
    wake = fifo_dir(db_path)
    if wake is None:
        return None
    head, tail = os.path.split(wake)
    return os.path.join(head, tail.replace("durable-wake-", "durable-cancel-", 1))


class PgCancelListener:
    """A dedicated connection ``LISTEN``ing on the log's cancel channel, reconnecting with
    backoff; calls ``on_cancel(run_id)`` per request, and ``on_cancel("")`` after each
    (re)connection (a request may have been missed meanwhile)."""

    def __init__(self, url: str, on_cancel: Callable[[str], None]) -> None:
        self._url = sa.make_url(url).set(drivername="postgresql").render_as_string(False)
        self._on_cancel = on_cancel
        self._stop = threading.Event()
        self._conn: Any = None
        self._thread = threading.Thread(target=self._run, name="durable-cancels", daemon=True)
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
                with psycopg.connect(
                    self._url,
                    autocommit=True,
                    connect_timeout=10,
                    application_name=f"durable/{os.getpid()}",
                ) as conn:
                    self._conn = conn
                    row = conn.execute(CHANNEL_SQL).fetchone()
                    assert row is not None
                    conn.execute(f"LISTEN {row[0]}")
                    delay = 0.1
                    self._call("")
                    while not self._stop.is_set():
                        for n in conn.notifies(timeout=LISTEN_STOP_CHECK):
                            self._call(n.payload)
            except Exception as exc:
                if self._stop.is_set():
                    break
                log.warning(
                    "cancel LISTEN connection lost (%s); reconnecting in %.1fs",
                    scrub(str(exc), self._url),
                    delay,
                )
                self._stop.wait(delay)
                delay = min(delay * 2, 5.0)
            finally:
                self._conn = None

    def _call(self, run_id: str) -> None:
        try:
            self._on_cancel(run_id)
        except Exception:
            log.exception("a cancel handler failed")
