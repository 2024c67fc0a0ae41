"""Journal watchers on Postgres: a ``NOTIFY`` for every transaction that appends events, and
one ``LISTEN``ing connection per process that hears them.

A transaction that ends a run, or that wakes workers anyway, sends it inside (delivered if,
and only if, it commits). Any other append is announced after its commit by the store's
:class:`Announcer` thread, in an autocommit statement of its own: a ``NOTIFY`` inside the
transaction would take Postgres's cluster-wide notification lock until the commit's flush,
which makes concurrent committers wait for one another (measured: four writers fell from
about 1,100-1,500 to 530-590 commits per second on the development VM). The thread also
merges the run ids of the commits that queued meanwhile into one notification.

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

__all__ = ["CHANNEL_SQL", "Announcer", "JournalListener", "notify_appended"]

log = logging.getLogger("durable.log.watch")

CHANNEL_SQL = "'durable_watch_' || left(md5(current_database() || '/' || current_schema()), 16)"
"""The SQL expression of this log's watch channel (evaluated in the session's search path)."""

LISTEN_STOP_CHECK = 0.2
"""Seconds a ``LISTEN`` thread waits for a notification before it looks whether it was told
to stop (a cancel does not interrupt psycopg's wait for notifications): what stopping a
worker or a client waits for its listeners, at most."""

_MAX_PAYLOAD = 7900
"""Bytes: Postgres refuses a ``NOTIFY`` payload of 8000 or more."""


def notify_appended(cur: Any, run_ids: Collection[str]) -> None:
    """``pg_notify`` the watch channel with ``run_ids`` (on a cursor inside the
    transaction: delivered when, and only if, it commits)."""
    payload = "\n".join(sorted(run_ids))
    if len(payload.encode()) > _MAX_PAYLOAD or any("\n" in r for r in run_ids):
        payload = ""
    cur.execute(f"SELECT pg_notify({CHANNEL_SQL}, %s)", (payload,))


class Announcer:
    """Sends the ``NOTIFY`` of committed appends from a thread of its own, on a pooled
    autocommit connection of ``engine``, merging the run ids queued while it sends."""

    def __init__(self, engine: sa.Engine) -> None:
        self._engine = engine
        self._cond = threading.Condition()
        self._pending: set[str] = set()
        self._stopped = False
        self._thread: threading.Thread | None = None

    def send(self, run_ids: Collection[str]) -> None:
        """Queue a notification of ``run_ids`` (never blocks on the database)."""
        with self._cond:
            if self._stopped:
                return
            self._pending.update(run_ids)
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="durable-announce", daemon=True
                )
                self._thread.start()
            self._cond.notify()

    def stop(self) -> None:
        """Send what is queued, then stop the thread."""
        with self._cond:
            self._stopped = True
            self._cond.notify()
            thread = self._thread
        if thread is not None:
            thread.join(5)

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._pending and not self._stopped:
                    self._cond.wait()
                if not self._pending:
                    return
                ids, self._pending = self._pending, set()
            for attempt in (1, 2):
                try:
                    self._notify(ids)
                    break
                except Exception as exc:  # a lost wake-up delays watchers, loses nothing
                    if attempt == 2:
                        log.warning("a watch notification failed: %s", scrub(str(exc), ""))

    def _notify(self, ids: set[str]) -> None:
        pooled = self._engine.raw_connection()
        try:
            notify_appended(pooled.driver_connection.cursor(), ids)  # type: ignore[union-attr]
            pooled.commit()
        except Exception:
            pooled.invalidate()
            raise
        finally:
            pooled.close()


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
                        for n in conn.notifies(timeout=LISTEN_STOP_CHECK):
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
