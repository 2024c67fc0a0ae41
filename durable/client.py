"""``Client``, ``AsyncClient`` and ``RunHandle``: start, inspect and manage runs.

One implementation: :class:`AsyncClient` and :class:`AsyncRunHandle` run the same methods in a
thread so that they never block the event loop.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import logging
import os
import secrets
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

import msgspec

from durable.check_report import CheckReport
from durable.checking import CheckOps
from durable.client_admin import AdminOps
from durable.client_flow import FlowOps, dedup_keys_of
from durable.client_listing import Instant, ListingOps
from durable.client_schedules import AsyncScheduleOps, ScheduleOps
from durable.client_workers import LiveView, WorkerOps
from durable.codec import Codec
from durable.engine.blocking import tried_versions
from durable.engine.policy import Retry, retry_options
from durable.engine.registry import Registry, WorkflowDef
from durable.engine.replay import Journal
from durable.engine.replaying import replay_run
from durable.errors import (
    IdConflictError,
    RunCancelledError,
    RunFailedError,
    RunNotFoundError,
    UnknownWorkflowError,
)
from durable.events import EventType as T
from durable.hub import LocalHub
from durable.journal_file import export_run
from durable.log import open_store
from durable.log.store import NewRun, RunRow, Store
from durable.options import RunOptions, check_dedup_key, check_timeout, encode_options
from durable.outputs import output_tree
from durable.queue_bounds import BoundedQueue, max_pending_of
from durable.redact import passwords_hidden
from durable.retention import RetentionPolicy
from durable.run_progress import progress_of
from durable.stats import WorkflowStats
from durable.telemetry import Telemetry
from durable.types import TERMINAL, CancelOutcome, LogEvent, RunInfo, Status, WorkerInfo
from durable.watching import Watches, new_cursor, watch_async, watch_sync
from durable.watching import check_timeout as check_watch_timeout

__all__ = ["AsyncClient", "AsyncRunHandle", "Client", "RunHandle", "new_run_id"]

log = logging.getLogger("durable.client")

MAX_NAME = 255
MAIN_STAGE = "main"


def new_run_id() -> str:
    """A UUIDv7 (time-ordered) as a string."""
    ms = time.time_ns() // 1_000_000
    rand = secrets.randbits(74)
    value = (ms & ((1 << 48) - 1)) << 80
    value |= 0x7 << 76
    value |= (rand >> 62) << 64
    value |= 0b10 << 62
    value |= rand & ((1 << 62) - 1)
    return str(uuid.UUID(int=value))


def _check_name(what: str, value: str) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError(f"{what} must be a non-empty string")
    if len(value) > MAX_NAME:
        raise ValueError(f"{what} is longer than {MAX_NAME} characters")
    if "\x00" in value:
        raise ValueError(f"{what} cannot contain a NUL character")
    return value


def _run_options(timeout: Any, retry: Any) -> RunOptions:
    """A run's own options, checked (``InvalidOptionError``) before anything is written."""
    return RunOptions(timeout=check_timeout(timeout), retry=retry_options(retry))


def _no_version() -> str | None:
    """The version of runs started by a client without code (``durable.Client(url)``)."""
    return None


def _ts(x: float | None) -> dt.datetime | None:
    return dt.datetime.fromtimestamp(x, dt.UTC) if x is not None else None


def run_info(row: RunRow, expected_steps: int | None = None, now: float | None = None) -> RunInfo:
    """The public view of a ``runs`` row; ``expected_steps``: how many steps the last
    completed run of its workflow took (its progress is measured against it)."""
    err = f"{row.error_type}: {row.error_message}" if row.error_type else None
    progress, eta = progress_of(row, expected_steps, time.time() if now is None else now)
    return RunInfo(
        id=row.id,
        workflow=row.workflow,
        status=Status(row.status),
        queue=row.queue,
        attempt=row.attempt,
        created_at=dt.datetime.fromtimestamp(row.created_at, dt.UTC),
        updated_at=dt.datetime.fromtimestamp(row.updated_at, dt.UTC),
        progress=progress,
        eta=eta,
        step=row.step,
        error=err,
        priority=row.priority,
        parent_id=row.parent_id,
        error_type=row.error_type,
        error_message=row.error_message,
        stage=row.stage,
        steps_completed=row.steps_completed,
        wake_at=_ts(row.wake_at),
        waiting_for=row.waiting_for.column() if row.waiting_for else None,
        version=row.version,
        blocked_version=_blocked_by(row),
        dedup_key=row.dedup_key,
    )


def _blocked_by(row: RunRow) -> str | None:
    """The code version that last could not replay a blocked run."""
    if row.status is not Status.BLOCKED:
        return None
    tried = tried_versions(row.blocked_versions)
    return (tried[-1] or None) if tried else None


class Client(ListingOps, AdminOps, WorkerOps, CheckOps, FlowOps, ScheduleOps):
    """Starts and manages runs in a durable log.

    ``durable.Client(url)`` needs no code: it accepts any workflow name, and the run waits
    ``PENDING`` for a worker that registers it. ``app.client()`` knows the App's workflows.
    """

    def __init__(
        self,
        database: str | None = None,
        *,
        max_payload_bytes: int | None = None,
        create: bool = True,
    ) -> None:
        """Open the log at ``database``.

        Args:
            database: the log's URL (default ``DURABLE_DATABASE_URL``, else
                ``sqlite:///durable.db``).
            max_payload_bytes: the largest encoded argument or signal payload this client
                writes (default 2 MiB, as for an App).
            create: create the log if it does not exist (the default). ``False``, for tools
                that only read: a missing SQLite file raises :class:`~durable.StoreError`, a
                Postgres database without a log :class:`~durable.LogSchemaError`.
        """
        url = database or os.environ.get("DURABLE_DATABASE_URL") or "sqlite:///durable.db"
        codec = Codec(max_payload_bytes) if max_payload_bytes is not None else Codec()
        with passwords_hidden(url):
            store = open_store(url, create=create)
        self._setup(store, owns_store=True, codec=codec)

    @classmethod
    def _of_app(
        cls,
        store: Store,
        registry: Registry,
        codec: Codec,
        hub: LocalHub,
        telemetry: Telemetry,
        watches: Watches | None = None,
        queues: Mapping[str, BoundedQueue] | None = None,
        version_of: Callable[[], str | None] | None = None,
    ) -> Client:
        """A client on an App's open log, knowing its workflows (and ``queues``, its queue
        declarations, whose bounds its starts respect) and waking its workers
        (``App.client()``); closing it leaves the log open."""
        client = cls.__new__(cls)
        client._setup(
            store, owns_store=False, codec=codec, registry=registry, hub=hub, telemetry=telemetry
        )
        client._watches = watches
        client._queues = queues
        if version_of is not None:
            client._version_of = version_of
        return client

    def _setup(
        self,
        store: Store,
        *,
        owns_store: bool,
        codec: Codec,
        registry: Registry | None = None,
        hub: LocalHub | None = None,
        telemetry: Telemetry | None = None,
    ) -> None:
        self._store = store
        self._owns_store = owns_store
        self._registry = registry
        self._codec = codec
        self._hub = hub
        self._telemetry = telemetry or Telemetry()
        self._live = LiveView(store)
        self._watches: Watches | None = None
        self._own_watches: Watches | None = None
        self._queues: Mapping[str, BoundedQueue] | None = None
        """The starting App's queue declarations (their ``max_pending``), if any."""
        self._version_of: Callable[[], str | None] = _no_version
        """The code version runs started here record (an App's client: the App's)."""

    def close(self) -> None:
        """Close the database connections this client opened (and its watch listener)."""
        if self._own_watches is not None:
            self._own_watches.close()
        if self._owns_store:
            self._store.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- starting ------------------------------------------------------------------------

    def _resolve(self, workflow: Callable[..., Any] | str) -> tuple[str, WorkflowDef | None]:
        wf: WorkflowDef | None = getattr(workflow, "__durable_workflow__", None)
        if wf is not None:
            return wf.name, wf
        if isinstance(workflow, str):
            _check_name("workflow name", workflow)
            if self._registry is not None:
                return workflow, self._registry.workflow(workflow)
            return workflow, None
        raise TypeError(
            f"start() takes a workflow (a function decorated with @app.workflow) or its name, "
            f"not {type(workflow).__qualname__}"
        )

    def start(
        self,
        workflow: Callable[..., Any] | str,
        *args: Any,
        id: str | None = None,
        queue: str | None = None,
        priority: int = 0,
        delay: float | dt.timedelta = 0.0,
        timeout: float | dt.timedelta | None = None,
        retry: Retry | None = None,
        dedup_key: str | None = None,
        **kwargs: Any,
    ) -> RunHandle:
        """Start a run of ``workflow`` with ``args``/``kwargs``; return its handle at once.

        Args:
            workflow: the decorated workflow function, or its registered name.
            id: the run's id, also its idempotency key: a second start with the same id
                returns the existing run (``IdConflictError`` if it belongs to another
                workflow). Default: a new UUIDv7.
            queue: the queue to run on (default: the workflow's).
            priority: higher runs first; FIFO within a priority.
            delay: seconds (or a timedelta) before the run may start.
            timeout: this run's timeout in seconds (or a timedelta), counted from its first
                start, over the workflow's own (``None``: the workflow's).
            retry: this run's retry policy of its workflow code (a :class:`Retry`), over
                the workflow's own (``None``: the workflow's; ``Retry(attempts=1)``: none).
            dedup_key: at most one unfinished run holds a key: while the run that holds it
                has not ended, a start with that key (and another id) is refused with
                ``DuplicateRunError``; once it has ended, the key is free. Separate from
                ``id``, which stays the idempotency key (an existing id returns its run).

        Raises:
            UnknownWorkflowError: ``app.client()`` does not know that name.
            DuplicateRunError: an unfinished run holds ``dedup_key`` (nothing is written).
            InvalidArgumentError: an argument does not fit the workflow's annotation of its
                parameter (checked when the client has the workflow's definition).
            InvalidOptionError: ``timeout`` or ``retry`` is of the wrong kind or out of range.
            SerializationError: an argument cannot be encoded (nothing is written).
            PayloadTooLargeError: the encoded arguments are over the limit.
            QueueFullError: the queue is bounded (``app.queue(name, max_pending=N)`` in
                this client's App) and holds ``N`` runs not yet started; nothing is
                written. A start of an id that exists returns its run and is never refused.
        """
        name, wf = self._resolve(workflow)
        opts = _run_options(timeout, retry)
        key = check_dedup_key(dedup_key)
        new = self._new_run(name, wf, args, kwargs, id, queue, priority, delay, opts, dedup_key=key)
        row, created = self._store.create_run(new)
        if not created:
            if row.workflow != name:
                raise IdConflictError(
                    f"run id {new.id!r} is taken by a run of workflow {row.workflow!r}"
                )
            if row.input != new.input:
                log.warning("run %s exists with other input; returning the existing run", new.id)
            return RunHandle(self, row.id)
        self._started(name, [new], {row.id})
        return RunHandle(self, row.id)

    def start_many(
        self,
        workflow: Callable[..., Any] | str,
        args: Iterable[Any],
        *,
        ids: Sequence[str] | None = None,
        queue: str | None = None,
        priority: int = 0,
        delay: float | dt.timedelta = 0.0,
        timeout: float | dt.timedelta | None = None,
        retry: Retry | None = None,
        dedup_keys: Sequence[str | None] | None = None,
    ) -> list[RunHandle]:
        """Start one run of ``workflow`` per item of ``args``, all in one transaction.

        Each item is the run's positional arguments as a tuple, or its only argument if it
        is not a tuple: ``client.start_many(checkout, ["o-1", "o-2"])``. Every argument is
        checked and encoded before anything is written; then every run is written, or none.

        Args:
            ids: the runs' ids (idempotency keys), one per item; an id that exists keeps its
                run (``IdConflictError`` if it belongs to another workflow, and then nothing
                is written). Default: new UUIDv7s.
            queue, priority, delay, timeout, retry: as for :meth:`start`, for every run.
            dedup_keys: the runs' deduplication keys (see :meth:`start`), one per item
                (``None`` for a run without one); if an unfinished run holds one of them,
                ``DuplicateRunError`` is raised and nothing is written.

        Returns:
            The handles, in the order of ``args``.

        Raises:
            QueueFullError: the runs this call would add do not all fit in their bounded
                queue (see :meth:`start`): none is written, not even those that would fit.
        """
        name, wf = self._resolve(workflow)
        opts = _run_options(timeout, retry)
        items = [a if isinstance(a, tuple) else (a,) for a in args]
        if ids is not None:
            ids = list(ids)
            if len(ids) != len(items):
                raise ValueError(f"{len(ids)} ids for {len(items)} runs")
            if len(set(ids)) != len(ids):
                raise ValueError("ids repeat within one start_many")
        keys = dedup_keys_of(dedup_keys, len(items))
        new = [
            self._new_run(
                name,
                wf,
                a,
                {},
                ids[i] if ids is not None else None,
                queue,
                priority,
                delay,
                opts,
                dedup_key=keys[i],
            )
            for i, a in enumerate(items)
        ]
        created = self._store.create_runs(new)
        self._started(name, new, created)
        return [RunHandle(self, run.id) for run in new]

    def _started(self, name: str, new: Sequence[NewRun], created: set[str]) -> None:
        """After the runs of ``new`` whose ids are in ``created`` were started: count them,
        wake this App's workers, warn of a queue that no live worker serves."""
        for run in new:
            if run.id in created:
                self._telemetry.run_started(name, run.queue)
        if created and self._hub is not None:
            self._hub.work()
        for q in dict.fromkeys(run.queue for run in new):
            self._warn_unserved(name, q, [r.id for r in new if r.queue == q and r.id in created])

    def _handle(self, run_id: str) -> RunHandle:
        """The handle of run ``run_id`` (no check that it exists)."""
        return RunHandle(self, run_id)

    def _new_run(
        self,
        name: str,
        wf: WorkflowDef | None,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        id: str | None,
        queue: str | None,
        priority: int,
        delay: float | dt.timedelta,
        options: RunOptions | None = None,
        parent_id: str | None = None,
        dedup_key: str | None = None,
    ) -> NewRun:
        run_id = _check_name("id", id) if id is not None else new_run_id()
        q = _check_name("queue", queue) if queue is not None else (wf.queue if wf else "default")
        if isinstance(delay, dt.timedelta):
            delay = delay.total_seconds()
        if not isinstance(priority, int) or isinstance(priority, bool):
            raise TypeError("priority must be an int")
        delay = float(delay)
        if delay != delay or delay < 0:
            raise ValueError("delay must be a non-negative number of seconds")
        if wf is not None:
            try:
                wf.signature.check(args, kwargs)
            except TypeError as exc:
                raise TypeError(f"arguments do not fit workflow {name!r}: {exc}") from None
        data = self._codec.encode_args(args, kwargs, f"arguments of workflow {name!r}")
        if wf is not None:
            wf.signature.check_types(data, f"workflow {name!r}")
        own = options or RunOptions()
        timeout = own.timeout if own.timeout is not None else (wf.timeout if wf else None)
        return NewRun(
            id=run_id,
            workflow=name,
            queue=q,
            input=data,
            priority=priority,
            delay=delay,
            timeout=timeout,
            parent_id=parent_id,
            trace_context=self._telemetry.start_context(name, run_id, q),
            options=encode_options(own),
            max_pending=max_pending_of(self._queues, q),
            version=self._version_of(),
            dedup_key=dedup_key,
        )

    # -- reading -------------------------------------------------------------------------

    def _row(self, run_id: str) -> RunRow:
        row = self._store.get_run(run_id)
        if row is None:
            raise RunNotFoundError(f"no run with id {run_id!r}")
        return row

    def get(self, run_id: str) -> RunHandle:
        """The handle of an existing run (``RunNotFoundError`` otherwise)."""
        self._row(run_id)
        return RunHandle(self, run_id)

    def _infos(self, rows: Sequence[RunRow]) -> list[RunInfo]:
        """The public views of ``rows``, their progress measured against the last completed
        run of each workflow (one look-up per workflow that needs it)."""
        need = [
            r.workflow
            for r in rows
            if r.status is not Status.COMPLETED and r.progress is None and r.started_at is not None
        ]
        expected = self._store.steps_of_last_completed(need) if need else {}
        now = time.time()
        return [run_info(r, expected.get(r.workflow), now) for r in rows]

    def events(self, run_id: str, after: int = 0) -> list[LogEvent]:
        """The run's journal, oldest first (only the events with ``seq > after``)."""
        self._row(run_id)
        return self._journal(run_id, after)

    def _journal(self, run_id: str, after: int) -> list[LogEvent]:
        """The run's events after ``after``, decoded (no check that the run exists)."""
        out = []
        for r in self._store.read_journal(run_id, after):
            try:
                data = msgspec.msgpack.decode(r.data)
            except msgspec.DecodeError:
                data = {"undecodable": True}
            out.append(
                LogEvent(
                    seq=r.seq,
                    type=r.type,
                    name=r.name,
                    position=r.position,
                    attempt=r.attempt,
                    at=dt.datetime.fromtimestamp(r.at, dt.UTC),
                    data=data if isinstance(data, dict) else {"value": data},
                    epoch=r.epoch,
                )
            )
        return out

    # -- watching (durable/watching.py) -------------------------------------------------

    def _watching(self) -> Watches:
        """The watches of this client: the App's if it has one, else its own."""
        if self._watches is None:
            self._watches = self._own_watches = Watches(self._store)
        return self._watches

    def watch(
        self,
        run_id: str,
        after: int = 0,
        types: Iterable[T | str] | T | str | None = None,
        timeout: float | None = None,
    ) -> Iterator[LogEvent]:
        """The run's journal after seq ``after``, oldest first, then each event as it is
        committed (pushed by the log, not polled), ending after the event that ends the run.

        Args:
            after: yield only the events with ``seq > after`` (0: from the start).
            types: keep only these event types (``EventType`` members or their names);
                the watch still ends with the run.
            timeout: seconds for the whole watch.

        Raises:
            RunNotFoundError: no run has that id (raised here, before any event).
            InvalidOptionError: ``after`` is negative, or a type does not exist.
            TimeoutError: (while iterating) the run did not end within ``timeout``.
        """
        cursor = new_cursor(run_id, after, types)
        limit = check_watch_timeout(timeout)
        ended = Status(self._row(run_id).status) in TERMINAL
        return watch_sync(self._watching(), self._journal, cursor, ended, limit)

    def outputs(self, run_id: str) -> dict[str, dict[str, Any]]:
        """The run's outputs tree: ``{stage: {key or step call: value}}``, ``"main"`` outside
        any stage; a step call's node is a :class:`~durable.StepOutputs` of its result
        (``"result"``) and the keys its body wrote (see ``docs/api.md``)."""
        return output_tree(self.events(run_id))

    def _decode_result(self, row: RunRow) -> Any:
        wf = self._registry.workflows.get(row.workflow) if self._registry else None
        raw = row.output or b"\xc0"
        return self._codec.decode(raw, wf.result_type if wf else Any)

    def result(self, run_id: str, timeout: float | None = None) -> Any:
        """Wait for the run to end; return its result.

        Raises:
            TimeoutError: not finished within ``timeout`` seconds.
            RunFailedError: it ended ``FAILED``.
            RunCancelledError: it ended ``CANCELLED``.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        # A local worker wakes us through the hub; without one, poll with a growing pause.
        pause = 0.1 if self._hub is not None else 0.002
        while True:
            version = self._hub.version if self._hub else 0
            row = self._row(run_id)
            if Status(row.status) in TERMINAL:
                if row.status == Status.COMPLETED:
                    return self._decode_result(row)
                if row.status == Status.CANCELLED:
                    raise RunCancelledError(run_id)
                raise RunFailedError(run_id, row.error_type or "Error", row.error_message or "")
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                if row.status == Status.BLOCKED:
                    note = f"; it is blocked: {row.error_type}: {row.error_message}"
                elif row.status == Status.RUNNING:
                    note = ""
                else:
                    note = self._unserved_note(row.workflow, row.queue)
                raise TimeoutError(f"run {run_id!r} did not finish within {timeout}s{note}")
            wait = pause if left is None else min(pause, left)
            if self._hub is not None:
                self._hub.wait(version, wait)
            else:
                time.sleep(wait)
            pause = min(pause * 2, 0.25 if self._hub is None else 0.5)

    # -- managing ------------------------------------------------------------------------

    def cancel(self, run_id: str) -> CancelOutcome:
        """Cancel the run and its unfinished children.

        A run that no worker is executing ends ``CANCELLED`` at once. A run that a worker
        executes is asked to stop: its step bodies see ``durable.cancelled()`` (async ones
        get ``asyncio.CancelledError``), what they record before they return is kept, and
        the run ends ``CANCELLED`` once its code has stopped, or after the App's
        ``cancel_grace`` seconds. A run that had already ended is left as it is.

        Returns what was done (:class:`CancelOutcome`); ``h.result()`` raises
        ``RunCancelledError`` once the run has ended.

        Raises:
            RunNotFoundError: no run has that id.
        """
        got = self._store.cancel(run_id, "cancelled by a client")
        if got is None:
            raise RunNotFoundError(f"no run with id {run_id!r}")
        row, done = got
        if Status(row.status) in TERMINAL:
            outcome = CancelOutcome.CANCELLED if done else CancelOutcome.FINISHED
        else:
            outcome = CancelOutcome.REQUESTED
        if done:  # this call ended it or asked its worker to (not a run ended already)
            self._telemetry.run_cancelled(row.workflow, row.queue)
        if outcome is CancelOutcome.FINISHED:
            log.info("run %s had already finished (%s): left as it is", run_id, row.status.value)
        if self._hub is not None:
            self._hub.cancelled(run_id)
            self._hub.run_changed()
        return outcome

    def resume(self, run_id: str) -> RunHandle:
        """Continue a failed or cancelled run from its journal, or retry a blocked one
        (today's code replays it again); a completed (or still running) run is left as it
        is."""
        row = self._store.resume(run_id)
        if row is None:
            raise RunNotFoundError(f"no run with id {run_id!r}")
        if self._hub is not None:
            self._hub.work()
        return RunHandle(self, run_id)

    def fork(self, run_id: str, from_step: int, *, id: str | None = None) -> RunHandle:
        """A new run of the same workflow and input that keeps the journal's outcomes for
        positions before ``from_step`` and executes the rest anew."""
        if not isinstance(from_step, int) or from_step < 1:
            raise ValueError("from_step is a position, counted from 1")
        row = self._row(run_id)
        rows = self._store.read_journal(run_id)
        cut = next(
            (r.seq for r in rows if r.position is not None and r.position >= from_step),
            rows[-1].seq + 1 if rows else 1,
        )
        skip = {
            T.RUN_STARTED,
            T.RUN_COMPLETED,
            T.RUN_FAILED,
            T.RUN_CANCELLED,
            T.RUN_RESUMED,
            T.RUN_SUSPENDED,
            T.RUN_RETRY_SCHEDULED,
            T.LEASE_TAKEN,
            T.RUN_BLOCKED,
            T.RUN_UNBLOCKED,
        }
        keep = [
            r
            for r in rows
            if r.seq < cut and r.type not in skip and (r.position is None or r.position < from_step)
        ]
        new_id = _check_name("id", id) if id is not None else new_run_id()
        new = NewRun(
            id=new_id,
            workflow=row.workflow,
            queue=row.queue,
            input=row.input,
            priority=row.priority,
            timeout=row.timeout,
            options=row.options,
            forked_from=run_id,
            trace_context=self._telemetry.start_context(row.workflow, new_id, row.queue),
            version=self._version_of(),
        )
        self._store.fork(run_id, new, keep)
        if self._hub is not None:
            self._hub.work()
        return RunHandle(self, new_id)

    def replay(self, run_id: str) -> Any:
        """Run today's code against the run's journal, executing no step.

        Returns the replayed result of a completed run, ``None`` for a run that has not
        finished (checked up to the end of its journal).

        Raises:
            NonDeterminismError: the code no longer matches the journal.
            RunFailedError: the replayed code fails as the run did.
            UnknownWorkflowError: this client has no code for the run's workflow.
        """
        row = self._row(run_id)
        if self._registry is None or row.workflow not in self._registry.workflows:
            raise UnknownWorkflowError(
                f"replay needs the code of workflow {row.workflow!r}: use app.client()"
            )
        wf = self._registry.workflows[row.workflow]
        journal = Journal(run_id, self._store.read_journal(run_id))
        return replay_run(
            wf, row, journal, registry=self._registry, codec=self._codec, store=self._store
        )

    def export_run(self, run_id: str) -> dict[str, Any]:
        """The run's row and its whole journal as a JSON-ready document (what ``durable runs
        export`` writes; ``durable.testing.assert_replays`` replays it)."""
        return export_run(self._store, run_id)

    def signal(self, run_id: str, name: str, payload: Any = None) -> None:
        """Send a signal: the run's ``wait_signal(name)`` receives ``payload`` (once)."""
        data = self._encode_signal(name, payload)
        if not self._store.send_signal(run_id, name, data):
            raise RunNotFoundError(f"no run with id {run_id!r}")
        if self._hub is not None:
            self._hub.work()

    def _encode_signal(self, name: str, payload: Any) -> bytes | None:
        """A signal's payload as written, its name checked first."""
        _check_name("signal name", name)
        return None if payload is None else self._codec.encode(payload, f"signal {name!r}")


class RunHandle:
    """A reference to one run: cheap to create; every method reads the log afresh."""

    __slots__ = ("_client", "id")

    def __init__(self, client: Client, run_id: str) -> None:
        self._client = client
        self.id = run_id

    def __repr__(self) -> str:
        return f"RunHandle({self.id!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, RunHandle) and other.id == self.id

    def __hash__(self) -> int:
        return hash(self.id)

    def status(self) -> Status:
        """The run's current status."""
        return Status(self._client._row(self.id).status)

    def info(self) -> RunInfo:
        """A snapshot of the run."""
        return self._client._infos([self._client._row(self.id)])[0]

    def result(self, timeout: float | None = None) -> Any:
        """Wait for the run to end and return its result (see ``Client.result``)."""
        return self._client.result(self.id, timeout)

    def outputs(self) -> dict[str, dict[str, Any]]:
        """``{stage: {step or key: value}}``."""
        return self._client.outputs(self.id)

    def arguments(self) -> tuple[list[Any], dict[str, Any]]:
        """The positional and keyword arguments the run was started with."""
        return self._client.arguments(self.id)

    def events(self) -> list[LogEvent]:
        """The run's journal, oldest first."""
        return self._client.events(self.id)

    def watch(
        self,
        after: int = 0,
        types: Iterable[T | str] | T | str | None = None,
        timeout: float | None = None,
    ) -> Iterator[LogEvent]:
        """The run's journal, then its events as they are committed (see ``Client.watch``)."""
        return self._client.watch(self.id, after, types, timeout)

    def cancel(self) -> CancelOutcome:
        """Cancel the run (see :meth:`Client.cancel`)."""
        return self._client.cancel(self.id)

    def resume(self) -> RunHandle:
        """Resume the run (see ``Client.resume``)."""
        return self._client.resume(self.id)

    def signal(self, name: str, payload: Any = None) -> None:
        """Send the run a signal."""
        self._client.signal(self.id, name, payload)


class AsyncRunHandle:
    """:class:`RunHandle` with coroutine methods."""

    __slots__ = ("_h", "id")

    def __init__(self, handle: RunHandle) -> None:
        self._h = handle
        self.id = handle.id

    def __repr__(self) -> str:
        return f"AsyncRunHandle({self.id!r})"

    async def status(self) -> Status:
        """The run's current status."""
        return await asyncio.to_thread(self._h.status)

    async def info(self) -> RunInfo:
        """A snapshot of the run."""
        return await asyncio.to_thread(self._h.info)

    async def result(self, timeout: float | None = None) -> Any:
        """Wait for the run to end and return its result."""
        return await asyncio.to_thread(self._h.result, timeout)

    async def outputs(self) -> dict[str, dict[str, Any]]:
        """``{stage: {step or key: value}}``."""
        return await asyncio.to_thread(self._h.outputs)

    async def arguments(self) -> tuple[list[Any], dict[str, Any]]:
        """The positional and keyword arguments the run was started with."""
        return await asyncio.to_thread(self._h.arguments)

    async def events(self) -> list[LogEvent]:
        """The run's journal, oldest first."""
        return await asyncio.to_thread(self._h.events)

    def watch(
        self,
        after: int = 0,
        types: Iterable[T | str] | T | str | None = None,
        timeout: float | None = None,
    ) -> AsyncIterator[LogEvent]:
        """``async for ev in handle.watch()``: see ``Client.watch``."""
        return AsyncClient._wrapping(self._h._client).watch(self.id, after, types, timeout)

    async def cancel(self) -> CancelOutcome:
        """Cancel the run (see :meth:`Client.cancel`)."""
        return await asyncio.to_thread(self._h.cancel)

    async def resume(self) -> AsyncRunHandle:
        """Resume the run."""
        return AsyncRunHandle(await asyncio.to_thread(self._h.resume))

    async def signal(self, name: str, payload: Any = None) -> None:
        """Send the run a signal."""
        await asyncio.to_thread(self._h.signal, name, payload)


class AsyncClient(AsyncScheduleOps):
    """:class:`Client` with coroutine methods: ``await client.start(...)``."""

    def __init__(
        self,
        database: str | None = None,
        *,
        max_payload_bytes: int | None = None,
        create: bool = True,
    ) -> None:
        """Open the log at ``database`` (the arguments of :class:`Client`)."""
        self._c = Client(database, max_payload_bytes=max_payload_bytes, create=create)

    @classmethod
    def _wrapping(cls, client: Client) -> AsyncClient:
        """The coroutine face of an existing ``client`` (``App.async_client()``)."""
        async_client = cls.__new__(cls)
        async_client._c = client
        return async_client

    def close(self) -> None:
        """Close the database connections this client opened."""
        self._c.close()

    async def start(
        self, workflow: Callable[..., Any] | str, *args: Any, **kwargs: Any
    ) -> AsyncRunHandle:
        """Start a run (see ``Client.start``)."""
        h = await asyncio.to_thread(self._c.start, workflow, *args, **kwargs)
        return AsyncRunHandle(h)

    async def start_many(
        self, workflow: Callable[..., Any] | str, args: Iterable[Any], **options: Any
    ) -> list[AsyncRunHandle]:
        """Start many runs in one transaction (see ``Client.start_many``)."""
        hs = await asyncio.to_thread(self._c.start_many, workflow, list(args), **options)
        return [AsyncRunHandle(h) for h in hs]

    async def get(self, run_id: str) -> AsyncRunHandle:
        """The handle of an existing run."""
        return AsyncRunHandle(await asyncio.to_thread(self._c.get, run_id))

    async def result(self, run_id: str, timeout: float | None = None) -> Any:
        """Wait for a run's result."""
        return await asyncio.to_thread(self._c.result, run_id, timeout)

    async def list_runs(
        self,
        status: Status | str | None = None,
        workflow: Callable[..., Any] | str | None = None,
        queue: str | None = None,
        limit: int = 100,
        *,
        before: str | None = None,
        since: Instant | None = None,
        until: Instant | None = None,
        id_prefix: str | None = None,
        version: str | None = None,
    ) -> list[RunInfo]:
        """Runs matching every given filter, newest first, in keyset pages (see
        :meth:`Client.list_runs`)."""
        return await asyncio.to_thread(
            functools.partial(
                self._c.list_runs,
                status,
                workflow,
                queue,
                limit,
                before=before,
                since=since,
                until=until,
                id_prefix=id_prefix,
                version=version,
            )
        )

    async def count_runs(
        self,
        workflow: Callable[..., Any] | str | None = None,
        queue: str | None = None,
        *,
        since: Instant | None = None,
        until: Instant | None = None,
        id_prefix: str | None = None,
        version: str | None = None,
    ) -> dict[Status, int]:
        """How many runs match, in each status (see :meth:`Client.count_runs`)."""
        return await asyncio.to_thread(
            functools.partial(
                self._c.count_runs,
                workflow,
                queue,
                since=since,
                until=until,
                id_prefix=id_prefix,
                version=version,
            )
        )

    async def arguments(self, run_id: str) -> tuple[list[Any], dict[str, Any]]:
        """The arguments a run was started with (see :meth:`Client.arguments`)."""
        return await asyncio.to_thread(self._c.arguments, run_id)

    async def events(self, run_id: str, after: int = 0) -> list[LogEvent]:
        """A run's journal (only the events with ``seq > after``)."""
        return await asyncio.to_thread(self._c.events, run_id, after)

    def watch(
        self,
        run_id: str,
        after: int = 0,
        types: Iterable[T | str] | T | str | None = None,
        timeout: float | None = None,
    ) -> AsyncIterator[LogEvent]:
        """``async for ev in client.watch(run_id)``: the run's journal, then each event as
        it is committed, until the run ends (see ``Client.watch``; ``RunNotFoundError``
        comes from the first step of the iteration, before any event)."""
        c = self._c
        cursor = new_cursor(run_id, after, types)
        limit = check_watch_timeout(timeout)

        def first() -> bool:
            return Status(c._row(run_id).status) in TERMINAL

        return watch_async(c._watching(), c._journal, first, cursor, limit)

    async def outputs(self, run_id: str) -> dict[str, dict[str, Any]]:
        """A run's outputs tree."""
        return await asyncio.to_thread(self._c.outputs, run_id)

    async def cancel(self, run_id: str) -> CancelOutcome:
        """Cancel a run (see :meth:`Client.cancel`)."""
        return await asyncio.to_thread(self._c.cancel, run_id)

    async def resume(self, run_id: str) -> AsyncRunHandle:
        """Resume a failed or cancelled run."""
        return AsyncRunHandle(await asyncio.to_thread(self._c.resume, run_id))

    async def fork(self, run_id: str, from_step: int, **kw: Any) -> AsyncRunHandle:
        """Fork a run (see ``Client.fork``)."""
        return AsyncRunHandle(await asyncio.to_thread(self._c.fork, run_id, from_step, **kw))

    async def replay(self, run_id: str) -> Any:
        """Replay a run against today's code (see ``Client.replay``)."""
        return await asyncio.to_thread(self._c.replay, run_id)

    async def export_run(self, run_id: str) -> dict[str, Any]:
        """The run as an export document (see ``Client.export_run``)."""
        return await asyncio.to_thread(self._c.export_run, run_id)

    async def check(
        self,
        status: Status | str | None = None,
        workflow: Callable[..., Any] | str | None = None,
        finished: int = 0,
        *,
        jobs: int = 1,
    ) -> CheckReport:
        """Replay unfinished runs against this App's code (see ``Client.check``)."""
        return await asyncio.to_thread(self._c.check, status, workflow, finished, jobs=jobs)

    async def signal(self, run_id: str, name: str, payload: Any = None) -> None:
        """Send a run a signal."""
        await asyncio.to_thread(self._c.signal, run_id, name, payload)

    async def signal_with_start(
        self, workflow: Callable[..., Any] | str, *args: Any, **kwargs: Any
    ) -> AsyncRunHandle:
        """Start the run ``id`` if it does not exist and send it a signal, in one
        transaction (see ``Client.signal_with_start``)."""
        h = await asyncio.to_thread(self._c.signal_with_start, workflow, *args, **kwargs)
        return AsyncRunHandle(h)

    async def cancel_many(self, *filters: Any, **options: Any) -> int:
        """Cancel the unfinished runs that match a filter (see ``Client.cancel_many``)."""
        return await asyncio.to_thread(self._c.cancel_many, *filters, **options)

    async def resume_many(self, *filters: Any, **options: Any) -> int:
        """Resume the failed, cancelled or blocked runs that match a filter (see
        ``Client.resume_many``)."""
        return await asyncio.to_thread(self._c.resume_many, *filters, **options)

    async def workers(self) -> list[WorkerInfo]:
        """The live workers (see ``Client.workers``)."""
        return await asyncio.to_thread(self._c.workers)

    async def prune(
        self, retention: RetentionPolicy, *, dry_run: bool = False, batch: int = 500
    ) -> list[str]:
        """Delete the finished runs that ``retention`` lets go (see ``Client.prune``)."""
        return await asyncio.to_thread(self._c.prune, retention, dry_run=dry_run, batch=batch)

    async def stats(self, window: float | dt.timedelta | None = 86400.0) -> list[WorkflowStats]:
        """Statistics per workflow and queue (see ``Client.stats``)."""
        return await asyncio.to_thread(self._c.stats, window)
