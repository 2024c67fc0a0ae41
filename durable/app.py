"""``App``: configuration, the registry of workflows and steps, and the decorators.

The App wires the pieces together and holds no SQL or replay logic of its own.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import logging
import os
import signal
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar, overload

from durable.client import AsyncClient, Client
from durable.clock import SYSTEM_CLOCK, Clock
from durable.codec import DEFAULT_MAX_PAYLOAD, Codec
from durable.consumers import WorkerHook, WorkerHooks, add_hook, check_queue, register_consumer
from durable.engine.policy import Retry
from durable.engine.pool_child import refuse_while_importing_main
from durable.engine.presence import FORGET_WORKERS_AFTER
from durable.engine.registry import Registry, StepDef, WorkflowDef
from durable.engine.runtime import current_or_none, current_step
from durable.engine.scheduler import Scheduler
from durable.engine.ticks import TickRuns
from durable.engine.versions import check_version, code_fingerprint
from durable.engine.worker import Worker
from durable.hub import LocalHub
from durable.log import open_store
from durable.log.schedule_store import NewSchedule
from durable.log.store import QueueLimit, RunRow, Store
from durable.queue_bounds import check_max_pending
from durable.redact import passwords_hidden, redact_url
from durable.retention import Retention, RetentionPolicy
from durable.schedule_defs import define_schedule, first_tick
from durable.sequences import SequenceFailure, define_sequence
from durable.telemetry import Backlog, Telemetry
from durable.telemetry.logs import fields
from durable.types import WorkerEvent
from durable.watching import Watches

__all__ = ["App", "EmbeddedWorker", "QueueConfig", "WorkerEventInfo"]

log = logging.getLogger("durable")

F = TypeVar("F", bound=Callable[..., Any])
C = TypeVar("C", bound=type)


@dataclass(frozen=True, slots=True)
class QueueConfig:
    """Limits of one queue across every worker (see ``App.queue``)."""

    name: str
    concurrency: int | None = None
    rate_limit: tuple[int, float] | None = None
    max_pending: int | None = None
    """At most this many runs not yet started; a start past it raises ``QueueFullError``."""


@dataclass(frozen=True, slots=True)
class WorkerEventInfo:
    """What ``app.on(WorkerEvent.X, fn)`` listeners receive."""

    event: WorkerEvent
    """What happened."""
    run_id: str
    """The run it happened to."""
    workflow: str
    """The run's workflow."""
    worker_id: str
    """The worker that saw it."""
    error: BaseException | None = None
    """For ``ERROR``, ``FAILED`` (and the ``COMPLETED`` after it): the exception."""
    result: Any = None
    """For ``DONE`` (and the ``COMPLETED`` after it): the run's result."""
    queue: str = ""
    """The queue the run is on."""


def _grace(value: object) -> float:
    """``cancel_grace`` checked: a finite number of seconds, zero or more."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(
            f"cancel_grace must be a number of seconds, not {type(value).__name__} {value!r}"
        )
    grace = float(value)
    if not 0.0 <= grace < float("inf"):
        raise ValueError(f"cancel_grace must be zero or more seconds (finite), not {value!r}")
    return grace


class EmbeddedWorker:
    """The worker that ``with app.worker() as worker:`` runs in this process's background
    threads, until the block ends (and what ``on_worker_start`` / ``on_worker_stop`` hooks
    receive, for ``app.run_worker`` and ``durable worker`` too).

    It leases and executes runs of the App's workflows on its queues; ending the block
    drains it (in-flight steps finish) and hands the runs it still holds back to the log.
    """

    __slots__ = ("_engine",)

    def __init__(self, engine: Worker) -> None:
        self._engine = engine
        """The engine's worker (tests reach it here to kill it like a crash)."""

    @property
    def worker_id(self) -> str:
        """The worker's identity in the log (``host/pid`` unless given)."""
        return self._engine.worker_id

    @property
    def queues(self) -> list[str] | None:
        """The queues it serves (``None``: every queue of the App's workflows)."""
        return None if self._engine.queues is None else list(self._engine.queues)

    @property
    def concurrency(self) -> int:
        """How many runs it executes at once, at most."""
        return self._engine.concurrency

    def __repr__(self) -> str:
        return f"EmbeddedWorker({self.worker_id!r})"


@dataclass(frozen=True, slots=True)
class _Listener:
    """One ``app.on`` registration: the function and the runs it is for."""

    fn: Callable[[WorkerEventInfo], Any]
    workflow: str | None = None
    queue: str | None = None

    def wants(self, row: RunRow) -> bool:
        return (self.workflow is None or row.workflow == self.workflow) and (
            self.queue is None or row.queue == self.queue
        )


@dataclass
class _Listeners:
    by_event: dict[WorkerEvent, list[_Listener]] = field(default_factory=dict)


class App:
    """A named set of workflows and steps, and the durable log they run on.

    Args:
        name: the application's name.
        database: the log's URL: ``sqlite:///file.db`` (default ``DURABLE_DATABASE_URL``,
            else ``sqlite:///durable.db``).
        lease_timeout: seconds a silent worker keeps its runs before another takes them over.
        max_payload_bytes: the largest encoded argument, result, output or signal payload.
        poll_interval: the longest an idle worker waits before looking for due runs again
            (starts, signals and cancels in this process wake it at once).
        synchronous: ``"FULL"`` (the default) makes every commit durable: SQLite
            ``synchronous=FULL``, Postgres ``synchronous_commit=on``. ``"NORMAL"`` is faster
            and may lose the last commits (even an acknowledged start) on a power loss
            (SQLite) or a server crash (Postgres, ``synchronous_commit=off``).
        pool_size: Postgres connections kept per process (as many again may open under
            load), plus two for ``LISTEN`` (wake-ups, cancels).
        retention: a :class:`durable.Retention` for each of this App's workflows (each
            counted on its own), or ``{workflow name: Retention}``; every worker of the App
            deletes the finished runs it lets go, every ``retention_interval`` seconds.
            ``None`` (the default): the log keeps every run.
        retention_interval: seconds between two retention passes of a worker.
        cancel_grace: seconds that a cancelled run's code has, once told (by
            ``durable.cancelled()``, or ``CancelledError`` in an async step), to stop; what
            it records until then is kept. A body still running after it is abandoned: the
            run ends ``CANCELLED`` and the body's later writes are refused (Python cannot
            stop a thread).
        version: the code version of this App (at most 255 characters): each run records
            the version it started under, and a run that the code of one version cannot
            replay is parked ``BLOCKED`` until a worker of another version takes it. The
            default is a fingerprint of the registered workflows' and steps' code (see the
            docs on versioning for what changes it).
    """

    def __init__(
        self,
        name: str,
        database: str | None = None,
        *,
        lease_timeout: float = 30.0,
        max_payload_bytes: int = DEFAULT_MAX_PAYLOAD,
        poll_interval: float = 1.0,
        synchronous: str = "FULL",
        max_takeovers_without_progress: int = 10,
        pool_size: int = 8,
        retention: RetentionPolicy | None = None,
        retention_interval: float = 300.0,
        cancel_grace: float = 10.0,
        version: str | None = None,
    ) -> None:
        self._version = check_version(version)
        self._fingerprint: tuple[tuple[int, ...], str] | None = None
        self.cancel_grace = _grace(cancel_grace)
        if lease_timeout <= 0:
            raise ValueError("lease_timeout must be positive seconds")
        if poll_interval <= 0:
            raise ValueError("poll_interval must be positive seconds")
        self.name = name
        self.database = database or os.environ.get("DURABLE_DATABASE_URL") or "sqlite:///durable.db"
        self.lease_timeout = float(lease_timeout)
        self.poll_interval = float(poll_interval)
        self.synchronous = synchronous
        self.max_stalls = max_takeovers_without_progress
        if pool_size < 1:
            raise ValueError("pool_size must be at least 1")
        self.pool_size = pool_size
        if retention_interval <= 0:
            raise ValueError("retention_interval must be positive seconds")
        self.retention = retention
        self.retention_interval = float(retention_interval)
        self.codec = Codec(max_payload_bytes)
        self.registry = Registry()
        self.queues: dict[str, QueueConfig] = {}
        self._listeners = _Listeners()
        self._worker_hooks = WorkerHooks()
        self._hub = LocalHub()
        self._store: Store | None = None
        self._store_lock = threading.Lock()
        self._watches: Watches | None = None
        """The watch listener shared by this App's clients (``client.watch``)."""
        self._create_log = True
        """Whether opening the log may create it (the CLI's read-only commands clear it)."""
        self.telemetry = Telemetry()
        """Spans, metrics and log records, through the global OpenTelemetry providers."""
        self._gauge_users = 0
        self._gauge_stop: Callable[[], None] | None = None
        self._clock: Clock = SYSTEM_CLOCK
        """The log's and the workers' clock (``durable.testing`` hands in a virtual one)."""
        self._schedules: dict[str, NewSchedule] = {}
        """The schedules this App's code declares (``app.schedule``), by name."""

    def __repr__(self) -> str:
        return f"App({self.name!r}, database={redact_url(self.database)!r})"

    @property
    def version(self) -> str:
        """The code version of this App: the one given, else the fingerprint of its
        registered workflows' and steps' code (computed again when they change)."""
        if self._version is not None:
            return self._version
        key = self.registry.identity()
        if self._fingerprint is None or self._fingerprint[0] != key:
            self._fingerprint = (key, code_fingerprint(self.registry))
        return self._fingerprint[1]

    # -- the log -------------------------------------------------------------------------

    @property
    def store(self) -> Store:
        """The log, opened (and created if new) on first use."""
        with self._store_lock:
            if self._store is None:
                with passwords_hidden(self.database):
                    self._store = open_store(
                        self.database,
                        synchronous=self.synchronous,
                        max_stalls=self.max_stalls,
                        pool_size=self.pool_size,
                        lease_timeout=self.lease_timeout,
                        create=self._create_log,
                        clock=self._clock,
                    )
            return self._store

    def _on_log(self, database: str, clock: Clock, *, synchronous: str | None = None) -> App:
        """A copy of this App on another log and clock (``durable.testing``): the same
        registry, queues, listeners, codec and options; its own store, hub and watches, so
        this App is untouched and usable as before."""
        other = copy.copy(self)
        other.database = database
        other._clock = clock
        other.synchronous = synchronous or self.synchronous
        other._store = None
        other._store_lock = threading.Lock()
        other._watches = None
        other._hub = LocalHub()
        other._create_log = True
        other._gauge_users = 0
        other._gauge_stop = None
        return other

    def close(self) -> None:
        """Close the log's connections (workers must be stopped first)."""
        with self._store_lock:
            watches, self._watches = self._watches, None
            if watches is not None:
                watches.close()
            if self._store is not None:
                self._store.close()
                self._store = None

    # -- definitions ---------------------------------------------------------------------

    @overload
    def workflow(self, fn: F, /) -> F: ...

    @overload
    def workflow(
        self,
        fn: None = None,
        /,
        *,
        name: str | None = None,
        queue: str = "default",
        timeout: float | None = None,
        retry: Retry | None = None,
        on_success: Callable[[str, Any], Any] | None = None,
        on_error: Callable[[str, BaseException], Any] | None = None,
    ) -> Callable[[F], F]: ...

    def workflow(
        self,
        fn: Callable[..., Any] | None = None,
        /,
        *,
        name: str | None = None,
        queue: str = "default",
        timeout: float | None = None,
        retry: Retry | None = None,
        on_success: Callable[[str, Any], Any] | None = None,
        on_error: Callable[[str, BaseException], Any] | None = None,
    ) -> Any:
        """Register a workflow (sync or async). Called inside another workflow, it starts a
        child run and waits for it; called anywhere else, it is a plain call."""
        if timeout is not None and timeout <= 0:
            raise ValueError("a workflow timeout must be positive seconds")

        def register(f: F) -> F:
            wf = WorkflowDef(
                name=name or f.__qualname__,
                fn=f,
                queue=queue,
                timeout=timeout,
                retry=retry,
                on_success=on_success,
                on_error=on_error,
            )
            self.registry.add_workflow(wf)

            @functools.wraps(f)
            def wrapper(*args: Any, **kwargs: Any) -> Any:
                run = current_or_none()
                if run is None or current_step() is not None:
                    return f(*args, **kwargs)
                if run.workflow.is_async:
                    return run.call_child_async(wf, args, kwargs)
                return run.call_child(wf, args, kwargs)

            wrapper.__durable_workflow__ = wf  # type: ignore[attr-defined]
            return wrapper  # type: ignore[return-value]

        return register(fn) if fn is not None else register

    @overload
    def step(self, fn: F, /) -> F: ...

    @overload
    def step(
        self,
        fn: None = None,
        /,
        *,
        name: str | None = None,
        retry: Retry | None = None,
        timeout: float | None = None,
        executor: str | None = None,
    ) -> Callable[[F], F]: ...

    def step(
        self,
        fn: Callable[..., Any] | None = None,
        /,
        *,
        name: str | None = None,
        retry: Retry | None = None,
        timeout: float | None = None,
        executor: str | None = None,
    ) -> Any:
        """Register a step (sync or async). Inside a workflow its outcome is journaled and
        replayed (in an async workflow, ``await`` the call); elsewhere it is a plain call.

        ``executor`` says where the body runs: ``"loop"`` (the worker's event loop, the
        default of an ``async def``), ``"thread"`` (a thread, the default of a plain
        ``def``) or ``"process"`` (the worker's process pool, for CPU-bound bodies; a plain
        ``def`` at the top level of a module). Another name is a ``ValueError``.
        """

        def register(f: F) -> F:
            step = StepDef.of(f, name, retry, timeout, executor)
            self.registry.add_step(step)

            @functools.wraps(f)
            def wrapper(*args: Any, **kwargs: Any) -> Any:
                run = current_or_none()
                if run is None or current_step() is not None:
                    return f(*args, **kwargs)
                if run.workflow.is_async:
                    return run.call_step_async(step, args, kwargs)
                return run.call_step(step, args, kwargs)

            wrapper.__durable_step__ = step  # type: ignore[attr-defined]
            return wrapper  # type: ignore[return-value]

        return register(fn) if fn is not None else register

    def sequence(
        self,
        name: str,
        steps: Sequence[Callable[..., Any]],
        on_success: Callable[[Any], Any] | None = None,
        on_error: Callable[[SequenceFailure], Any] | None = None,
        retry: Retry | None = None,
        timeout: float | None = None,
        queue: str | None = None,
    ) -> Callable[..., Any]:
        """Register a workflow that calls ``steps`` in order, each receiving the previous
        step's return value (the first receives the run's input); returns the workflow.

        ``on_success(result)`` and ``on_error(failure)`` (a step, or a plain function made
        the step ``"{name}.on_success"`` / ``"{name}.on_error"``) are journaled steps of the
        run: ``on_success`` gets the last step's result (the run's result stays that
        result); ``on_error`` gets a :class:`SequenceFailure` once no retry of the run
        follows, and the run still fails with the original error. ``retry``, ``timeout``
        and ``queue`` (``None``: ``"default"``) are the workflow's.
        """
        return define_sequence(
            self,
            name,
            steps,
            on_success=on_success,
            on_error=on_error,
            retry=retry,
            timeout=timeout,
            queue=queue,
        )

    def queue(
        self,
        name: str,
        concurrency: int | None = None,
        rate_limit: tuple[int, float] | None = None,
        max_pending: int | None = None,
    ) -> QueueConfig:
        """Declare a queue's limits across all workers: at most ``concurrency`` runs
        executing at once, at most ``rate_limit[0]`` starts per ``rate_limit[1]`` seconds,
        at most ``max_pending`` runs not yet started (never taken by a worker, delayed ones
        included): a start through this App's clients past it raises ``QueueFullError``
        and writes nothing (``start_many``: all of its runs or none).

        Every worker whose App declares the queue enforces the limits when it leases, in
        the same transaction, against the runs of all workers (Postgres serializes these
        decisions per queue with an advisory lock; SQLite serializes all writes). Declare
        the same limits in every worker's App.
        """
        if concurrency is not None and concurrency < 1:
            raise ValueError("queue concurrency must be at least 1")
        if rate_limit is not None:
            n, per = rate_limit
            if n < 1 or per <= 0:
                raise ValueError("rate_limit is (runs >= 1, seconds > 0)")
        cfg = QueueConfig(name, concurrency, rate_limit, check_max_pending(max_pending))
        self.queues[name] = cfg
        return cfg

    def schedule(
        self,
        workflow: Callable[..., Any] | str,
        cron: str,
        *,
        timezone: str = "UTC",
        name: str | None = None,
        args: Sequence[Any] = (),
        catch_up: str = "latest",
    ) -> str:
        """Declare a schedule: a run of ``workflow`` at every tick of ``cron`` on the wall
        clock of ``timezone``, called with the tick (a timezone-aware ``datetime``) and
        then ``args``; returns the schedule's name (default: the workflow's).

        Each tick starts one run across all workers, with the id ``"{name}:{tick in ISO
        8601}"``. ``catch_up`` decides what the first worker after an outage starts of the
        ticks that no worker started: ``"latest"`` (the last of them), ``"all"`` or
        ``"none"``. The schedule is written to the log when a worker of this App starts
        (a paused schedule stays paused); a worker whose App no longer declares it deletes
        it. See the docs on scheduling for time zones and daylight saving time.

        Raises:
            InvalidOptionError: the cron expression, time zone, ``catch_up`` or name is not
                valid (nothing is declared).
            InvalidArgumentError: ``args`` do not fit the workflow after the tick.
            ValueError: ``workflow`` is not a workflow of this App, or the name is declared
                twice.
        """
        wf: WorkflowDef | None = getattr(workflow, "__durable_workflow__", None)
        if wf is None and isinstance(workflow, str):
            wf = self.registry.workflows.get(workflow)
        if wf is None or self.registry.workflows.get(wf.name) is not wf:
            raise ValueError(
                f"app.schedule takes a workflow of App {self.name!r} (decorated with "
                f"@app.workflow, or its name), not {workflow!r}"
            )
        new, _ = define_schedule(
            workflow=wf.name,
            wf=wf,
            cron=cron,
            timezone=timezone,
            name=name,
            args=args,
            catch_up=catch_up,
            queue=wf.queue,
            codec=self.codec,
            app=self.name,
        )
        if new.name in self._schedules:
            raise ValueError(f"schedule {new.name!r} is declared twice in App {self.name!r}")
        self._schedules[new.name] = new
        return new.name

    def consumer(
        self,
        queue: str,
        *,
        retry: Retry | None = None,
        timeout: float | None = None,
        on_success: Callable[[str, Any], Any] | None = None,
        on_error: Callable[[str, BaseException], Any] | None = None,
    ) -> Callable[[C], C]:
        """Register a consumer class (see :class:`durable.Consumer`): a workflow named
        ``queue`` on queue ``queue`` whose body is ``process(payload)`` of one instance per
        worker process, with ``setup``/``teardown``, ``is_permanent`` and ``on_event``
        hooks. Returns the class: ``client.start(TheClass, payload)`` starts a run."""
        name = check_queue(queue)
        if timeout is not None and timeout <= 0:
            raise ValueError("a consumer's timeout must be positive seconds")

        def register(cls: C) -> C:
            return register_consumer(
                self,
                cls,
                name,
                retry=retry,
                timeout=timeout,
                on_success=on_success,
                on_error=on_error,
            )

        return register

    def on_worker_start(self, fn: WorkerHook) -> WorkerHook:
        """Call ``fn(worker)`` (an :class:`EmbeddedWorker`) when a worker of this App
        starts in this process, before it leases a run; an exception it raises stops the
        start. Usable as a decorator."""
        return add_hook(self._worker_hooks.on_start, fn, "on_worker_start")

    def on_worker_stop(self, fn: WorkerHook) -> WorkerHook:
        """Call ``fn(worker)`` when a worker of this App in this process has stopped (its
        runs drained, its consumers torn down); an exception it raises is logged. Usable
        as a decorator."""
        return add_hook(self._worker_hooks.on_stop, fn, "on_worker_stop")

    def register_errors(self, *types: type[BaseException]) -> None:
        """Let these exception types be rebuilt when a step's failure is replayed."""
        self.registry.add_errors(*types)

    def on(
        self,
        event: WorkerEvent,
        fn: Callable[[WorkerEventInfo], Any],
        workflow: Callable[..., Any] | str | None = None,
        queue: str | None = None,
    ) -> None:
        """Call ``fn(WorkerEventInfo)`` when a worker of this App sees ``event``: for every
        run, or only for runs of ``workflow`` (the decorated function or its name) and on
        ``queue``."""
        name: str | None = None
        if workflow is not None:
            wf = getattr(workflow, "__durable_workflow__", None)
            if wf is not None:
                name = wf.name
            elif isinstance(workflow, str):
                name = workflow
            else:
                raise TypeError(
                    "workflow= takes a function decorated with @app.workflow or its name, "
                    f"not {type(workflow).__qualname__}"
                )
        if queue is not None and not isinstance(queue, str):
            raise TypeError(f"queue= takes a queue name, not {type(queue).__qualname__}")
        listener = _Listener(fn, name, queue)
        self._listeners.by_event.setdefault(WorkerEvent(event), []).append(listener)

    # -- clients and workers -------------------------------------------------------------

    def ui_asgi(
        self, *, read_only: bool = False, token: str | None = None, trace_url: str | None = None
    ) -> Any:
        """The dashboard of this App's log as an ASGI application, to mount in a server of
        your own (needs the ``ui`` extra: ``pip install 'durable-pipelines[ui]'``).

        ``read_only`` hides and refuses every action; actions need ``token`` (a random one
        is made when it is ``None``); ``trace_url`` is a link template with ``{trace_id}``.
        """
        from durable.ui import asgi_app

        return asgi_app(self, read_only=read_only, token=token, trace_url=trace_url)

    def client(self) -> Client:
        """A client that knows this App's workflows (and wakes its embedded workers)."""
        store = self.store
        with self._store_lock:
            if self._watches is None:
                self._watches = Watches(store)
        return Client._of_app(
            store,
            self.registry,
            self.codec,
            self._hub,
            self.telemetry,
            self._watches,
            self.queues,
            version_of=lambda: self.version,
        )

    def async_client(self) -> AsyncClient:
        """An :class:`AsyncClient` that knows this App's workflows."""
        return AsyncClient._wrapping(self.client())

    def _listener(self, worker_id: str) -> Callable[[WorkerEvent, RunRow, dict[str, Any]], None]:
        def notify(event: WorkerEvent, row: RunRow, details: dict[str, Any]) -> None:
            if event in (WorkerEvent.DONE, WorkerEvent.COMPLETED, WorkerEvent.FAILED):
                self._hub.run_changed()
            for listener in self._listeners.by_event.get(event, ()):
                if not listener.wants(row):
                    continue
                try:
                    listener.fn(
                        WorkerEventInfo(
                            event=event,
                            run_id=row.id,
                            workflow=row.workflow,
                            worker_id=worker_id,
                            error=details.get("error"),
                            result=details.get("result"),
                            queue=row.queue,
                        )
                    )
                except Exception:
                    log.exception(
                        "listener %r for %s of run %s raised",
                        listener.fn,
                        event,
                        row.id,
                        extra=fields(row.id, row.workflow, worker_id=worker_id),
                    )

        return notify

    def _make_worker(
        self,
        queues: Sequence[str] | None,
        concurrency: int,
        worker_id: str | None,
        processes: int | None = None,
    ) -> Worker:
        refuse_while_importing_main()
        self.store.save_schedules(self.name, list(self._schedules.values()), first_tick)
        w = Worker(
            self.store,
            self.registry,
            self.codec,
            queues=queues,
            concurrency=concurrency,
            worker_id=worker_id,
            lease_timeout=self.lease_timeout,
            poll_interval=self.poll_interval,
            limits={
                q.name: QueueLimit(q.concurrency, q.rate_limit)
                for q in self.queues.values()
                if q.concurrency is not None or q.rate_limit is not None
            },
            housekeeping=self._retention_pass if self.retention is not None else None,
            housekeeping_interval=self.retention_interval,
            telemetry=self.telemetry,
            cancel_grace=self.cancel_grace,
            processes=processes,
            clock=self._clock,
            version=self.version,
            scheduler=self._scheduler(),
        )
        w._listener = self._listener(w.worker_id)
        return w

    def _scheduler(self) -> Scheduler:
        """The scheduler of a worker of this App: the ticks of its workflows' schedules."""
        workflows = self.registry.workflows

        def timeout_of(workflow: str) -> float | None:
            wf = workflows.get(workflow)
            return wf.timeout if wf is not None else None

        return Scheduler(
            self.store,
            list(workflows),
            TickRuns(self.codec, self.telemetry, self.version, timeout_of),
            clock=self._clock,
            poll_interval=self.poll_interval,
            on_started=self._hub.work,
            changes=lambda: self._hub.schedule_changes,
        )

    def _retention_pass(self) -> None:
        """One retention pass over this App's workflows (a worker's housekeeping)."""
        policy = self.retention
        if policy is None:
            return
        if isinstance(policy, Retention):
            policy = dict.fromkeys(self.registry.workflows, policy)
        deleted = self.client().prune(policy)
        if deleted:
            log.info("retention deleted %d finished runs", len(deleted))
        self.store.prune_workers(FORGET_WORKERS_AFTER)

    # -- the queue gauges, observed while a worker of this App runs ----------------------

    def _backlog(self) -> list[Backlog]:
        now, rows = self.store.queue_backlog()
        queues = {wf.queue for wf in self.registry.workflows.values()} | set(self.queues)
        seen = {q: Backlog(q, depth, max(now - oldest, 0.0)) for q, depth, oldest in rows}
        return [*seen.values(), *(Backlog(q, 0, 0.0) for q in sorted(queues - set(seen)))]

    @contextlib.contextmanager
    def _observed(self) -> Iterator[None]:
        with self._store_lock:
            self._gauge_users += 1
            if self._gauge_stop is None:
                self._gauge_stop = self.telemetry.observe_queues(self._backlog)
        try:
            yield
        finally:
            with self._store_lock:
                self._gauge_users -= 1
                if self._gauge_users == 0 and self._gauge_stop is not None:
                    self._gauge_stop()
                    self._gauge_stop = None

    @contextlib.contextmanager
    def worker(
        self,
        queues: Sequence[str] | None = None,
        concurrency: int = 16,
        worker_id: str | None = None,
        *,
        processes: int | None = None,
    ) -> Iterator[EmbeddedWorker]:
        """Run an embedded worker in background threads until the block ends (then drain).

        ``with app.worker() as worker:`` gives the :class:`EmbeddedWorker`. ``processes``:
        the size of its pool of ``executor="process"`` step bodies (default
        ``os.cpu_count()``; no process starts before such a step runs).
        """
        w = self._make_worker(queues, concurrency, worker_id, processes)
        view = EmbeddedWorker(w)
        self._worker_hooks.started(view)
        unsubscribe = self._hub.subscribe(w.wake, w.request_cancel, w.serves)
        try:
            w.start()
            with self._observed():
                yield view
        finally:
            unsubscribe()
            w.stop()
            self._worker_hooks.stopped(view)

    def run_worker(
        self,
        queues: Sequence[str] | None = None,
        concurrency: int = 16,
        worker_id: str | None = None,
        *,
        drain_timeout: float = 30.0,
        processes: int | None = None,
    ) -> None:
        """Run a worker in this thread until SIGTERM or SIGINT, then drain: in-flight steps
        finish (up to ``drain_timeout``) and the remaining runs are handed back.
        ``processes``: the size of its process pool, as for :meth:`worker`."""
        w = self._make_worker(queues, concurrency, worker_id, processes)
        view = EmbeddedWorker(w)
        self._worker_hooks.started(view)
        unsubscribe = self._hub.subscribe(w.wake, w.request_cancel, w.serves)
        stop = threading.Event()

        def on_signal(signum: int, _frame: Any) -> None:
            log.info("signal %s: draining", signum)
            stop.set()
            threading.Thread(target=w.stop, args=(drain_timeout,), daemon=True).start()

        old: dict[signal.Signals, Any] = {}
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGTERM, signal.SIGINT):
                old[sig] = signal.signal(sig, on_signal)
        try:
            with self._observed():
                w.run()
        finally:
            for sig, handler in old.items():
                signal.signal(sig, handler)
            unsubscribe()
            self._worker_hooks.stopped(view)
