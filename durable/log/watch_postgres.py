"""Journal watchers on Postgres: a ``NOTIFY`` in every transaction that appends events, and
one ``LISTEN``ing connection per process that hears them.

The channel is the log's own: ``durable_watch_`` and the first 16 hex digits of the md5 of
``current_database()/current_schema()``, computed by the server on both sides, so that logs
in different schemas (or databases) of one server never hear each other. The payload is the
ids of the runs the transaction appended to, one per line; a transaction that touched more
than fit in a payload sends ``""`` (every watcher reads its run again). Workers listen on
another channel (``postgres.py``): an append never wakes them.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import Callable, Collection
from typing import Any

import sqlalchemy as sa

from durable.redact import scrub

__all__ = ["CHANNEL_SQL", "JournalListener", "notify_appended"]

log = logging.getLogger("durable.log.watch")

CHANNEL_SQL = "'durable_watch_' || left(md5(current_database() || '/' || current_schema()), 16)"
"""The SQL expression of this log's watch channel (evaluated in the session's search path)."""

_MAX_PAYLOAD = 7900
"""Bytes: Postgres refuses a ``NOTIFY`` payload of 8000 or more."""


def notify_appended(cur: Any, run_ids: Collection[str]) -> None:
    """``pg_notify`` the watch channel with ``run_ids`` (on a cursor inside the
    transaction: delivered when, and only if, it commits)."""
    payload = "\n".join(sorted(run_ids))
    if len(payload.encode()) > _MAX_PAYLOAD or any("\n" in r for r in run_ids):
        payload = ""
    cur.execute(f"SELECT pg_notify({CHANNEL_SQL}, %s)", (payload,))


class JournalListener:
    """A dedicated connection ``LISTEN``ing on the log's watch channel, reconnecting with
    backoff; ``on_append(payload)`` runs on its thread for each notification, and with
    ``""`` after every (re)connection (anything may have been missed meanwhile)."""

    def __init__(self, url: str, on_append: Callable[[str], None]) -> None:
        self._url = sa.make_url(url).set(drivername="postgresql").render_as_string(False)
        named = "application_name" in sa.make_url(url).query
        # Named like the pool's sessions, so that an operator sees (and can end) all of them.
        self._app_name = None if named else f"durable/{os.getpid()}"
        self._on_append = on_append
        self._stop = threading.Event()
        self._conn: Any = None
        self.connected = threading.Event()
        """Set while the connection listens."""
        self._thread = threading.Thread(target=self._run, name="durable-watch", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop listening and close the connection."""
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
                    row = conn.execute(f"SELECT {CHANNEL_SQL}").fetchone()
                    assert row is not None
                    conn.execute(f'LISTEN "{row[0]}"')
                    delay = 0.1
                    self.connected.set()
                    self._deliver("")  # (re)connected: anything may have been missed
                    while not self._stop.is_set():
                        for n in conn.notifies(timeout=1.0):
                            self._deliver(n.payload)
            except Exception as exc:
                self.connected.clear()
                if self._stop.is_set():
                    break
                log.warning(
                    "watch connection lost (%s); reconnecting in %.1fs",
                    scrub(str(exc), self._url),
                    delay,
                )
                self._stop.wait(delay)
                delay = min(delay * 2, 5.0)
            finally:
                self.connected.clear()
                self._conn = None

    def _deliver(self, payload: str) -> None:
        try:
            self._on_append(payload)
        except Exception:
            log.exception("a journal watcher's handler failed")
