"""``env(app)``: an App's workflows on a temporary SQLite log, an embedded worker and a
virtual clock, for tests."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from types import TracebackType
from typing import TYPE_CHECKING, TypeVar

from durable.log.sqlstore import SqlStore
from durable.log.timeshift import shift_held, skip_to_next_due
from durable.testing.clock import VirtualClock

if TYPE_CHECKING:
    from durable.app import App, EmbeddedWorker
    from durable.client import Client

__all__ = ["TestEnv", "env"]

T = TypeVar("T")


class TestEnv:
    """A test's own log, worker and clock; ``with env(app) as t:`` starts it and ends it.

    The App's registrations (workflows, steps, queues, listeners, options) run on a fresh
    SQLite file in a temporary folder, executed by one embedded worker of the real engine,
    on a :class:`VirtualClock`. The App given is not changed: it still opens its own log
    afterwards (and before, and meanwhile).
    """

    __test__ = False  # not a test class, for pytest's collector

    def __init__(self, app: App, *, concurrency: int = 16) -> None:
        from durable.app import App

        if not isinstance(app, App):
            raise TypeError(f"durable.testing.env takes a durable.App, not {type(app).__name__}")
        if not app.registry.workflows:
            raise ValueError(
                f"App {app.name!r} has no workflows: register them (@app.workflow) "
                "before durable.testing.env(app)"
            )
        if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
            raise ValueError(f"concurrency must be a positive number of runs, not {concurrency!r}")
        self.clock = VirtualClock()
        """The virtual clock of the log and the worker: ``now()``, ``advance(seconds)``."""
        self._source = app
        self._concurrency = concurrency
        self._folder: str | None = None
        self._app: App | None = None
        self._client: Client | None = None
        self._worker: EmbeddedWorker | None = None
        self._stack = contextlib.ExitStack()

    # -- what a test uses ---------------------------------------------------------------

    @property
    def client(self) -> Client:
        """A :class:`durable.Client` of the env's log (start, signal, cancel, result...)."""
        return _started(self._client)

    @property
    def app(self) -> App:
        """The App the env runs: a copy of the given one on the env's log and clock."""
        return _started(self._app)

    @property
    def worker(self) -> EmbeddedWorker:
        """The env's embedded worker."""
        return _started(self._worker)

    @property
    def database(self) -> str:
        """The URL of the env's temporary log (``sqlite:///...``), removed when it ends."""
        return self.app.database

    # -- lifecycle ----------------------------------------------------------------------

    def start(self) -> TestEnv:
        """Create the temporary log and start the worker (``with`` does it for you)."""
        if self._folder is not None:
            raise RuntimeError("this env was started already; make a new one with env(app)")
        self._folder = tempfile.mkdtemp(prefix="durable-test-")
        try:
            url = "sqlite:///" + os.path.join(self._folder, "log.db")
            app = self._source._on_log(url, self.clock, synchronous="NORMAL")
            self._app = app
            self._stack.callback(app.close)
            store = app.store
            assert isinstance(store, SqlStore)
            hub = app._hub
            hub.wake_on_wait = True
            self.clock._attach(
                may_skip=lambda: hub.waiting > 0,
                shift=lambda seconds, move: shift_held(store.db, seconds, move),
                skip=lambda move: skip_to_next_due(store.db, self.clock.now, move),
                woken=self._clock_moved,
            )
            self._worker = self._stack.enter_context(
                app.worker(concurrency=self._concurrency, worker_id="durable-testing")
            )
            self._client = app.client()
        except BaseException:
            self.close()
            raise
        return self

    def _clock_moved(self) -> None:
        """``clock.advance()`` moved the clock: start the schedule ticks it passed before it
        returns, then wake the worker for the runs that became due."""
        worker = self._worker
        if worker is not None and worker._engine.scheduler is not None:
            worker._engine.scheduler.run_due()
        self.app._hub.work()

    def close(self) -> None:
        """Stop the worker (in-flight steps finish), close the log and remove its folder."""
        try:
            self._stack.close()
        finally:
            self._client = self._worker = None
            if self._folder is not None:
                shutil.rmtree(self._folder, ignore_errors=True)

    def __enter__(self) -> TestEnv:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "started" if self._client is not None else "not started"
        return f"TestEnv({self._source.name!r}, {state}, {self.clock!r})"


def _started(part: T | None) -> T:
    """A part of a started env (``RuntimeError`` before the start or after the end)."""
    if part is None:
        raise RuntimeError("the env is not started: use `with env(app) as t:`")
    return part


def env(app: App, *, concurrency: int = 16) -> TestEnv:
    """The App's workflows on a fresh temporary SQLite log, with an embedded worker and a
    virtual clock: ``with env(app) as t: t.client.start(...)``.

    Raises:
        TypeError: ``app`` is not a :class:`durable.App`.
        ValueError: the App has no workflows, or ``concurrency`` is not a positive int.
    """
    return TestEnv(app, concurrency=concurrency)
