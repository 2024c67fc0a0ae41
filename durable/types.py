"""Public value types: ``Status``, ``RunInfo``, ``LogEvent``, ``WorkerEvent``, ``WorkerInfo``,
``ScheduleInfo``."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

__all__ = [
    "TERMINAL",
    "CancelOutcome",
    "LogEvent",
    "RunInfo",
    "ScheduleInfo",
    "Status",
    "WorkerEvent",
    "WorkerInfo",
]


class Status(enum.StrEnum):
    """The state of a run. Values are the lower-case words stored in the log."""

    PENDING = "pending"
    """Waiting for a worker to take it (delayed runs too)."""
    RUNNING = "running"
    """A worker executes it and holds its lease."""
    SLEEPING = "sleeping"
    """In ``durable.sleep``, ``wait_signal``, a child wait or a retry backoff (no worker)."""
    COMPLETED = "completed"
    """Finished with a result."""
    FAILED = "failed"
    """Finished with an error; can be resumed."""
    CANCELLED = "cancelled"
    """Cancelled by a client; can be resumed."""
    BLOCKED = "blocked"
    """Parked: the code of the worker that took it cannot replay its journal (a change of
    workflow code under it). It holds no worker and has not ended; a worker of another
    code version takes it up again by itself, ``client.resume`` on demand."""

    @property
    def is_terminal(self) -> bool:
        """Whether the run has ended (completed, failed or cancelled)."""
        return self in TERMINAL


TERMINAL = frozenset({Status.COMPLETED, Status.FAILED, Status.CANCELLED})


class CancelOutcome(enum.StrEnum):
    """What ``client.cancel(run_id)`` did."""

    CANCELLED = "cancelled"
    """No worker was executing the run (pending, sleeping, waiting): it ended ``CANCELLED``
    at once."""
    REQUESTED = "requested"
    """A worker is executing the run: it was asked to stop it, and ends it ``CANCELLED`` once
    the code has stopped, within the App's ``cancel_grace`` seconds."""
    FINISHED = "finished"
    """The run had already ended (completed, failed or cancelled): it is left as it is."""


class WorkerEvent(enum.StrEnum):
    """What a worker tells the listeners registered with ``app.on``.

    The meanings are those of the usual job queues; for one run that completes on its
    first try a worker fires ``PROCESSING``, ``DONE``, ``COMPLETED``.
    """

    PROCESSING = "processing"
    """A worker took a run and starts (or resumes: after a sleep, a wait, a backoff, a
    takeover) executing it; once per lease."""
    DONE = "done"
    """The run completed successfully (before ``COMPLETED``)."""
    COMPLETED = "completed"
    """The run ended, whatever the outcome: after ``DONE`` or ``FAILED``."""
    ERROR = "error"
    """An attempt raised: a step attempt, or the workflow code; it may be retried. Once
    per attempt (a step's failure that fails the workflow too is one ``ERROR``)."""
    FAILED = "failed"
    """The run failed for good (no retry left; before ``COMPLETED``)."""
    STALLED = "stalled"
    """A worker took over a run whose previous holder stopped: its lease expired, or the
    same worker restarted and reclaimed it (after ``PROCESSING``)."""


@dataclass(frozen=True, slots=True)
class RunInfo:
    """A snapshot of one run, as the ``runs`` table holds it."""

    id: str
    """The run's id."""
    workflow: str
    """The registered name of its workflow."""
    status: Status
    """Its current status."""
    queue: str
    """The queue it runs on."""
    attempt: int
    """1 for the first execution; +1 on each workflow retry or resume."""
    created_at: datetime
    """When it was started (UTC)."""
    updated_at: datetime
    """When its row last changed (UTC)."""
    progress: float | None = None
    """How far the whole run is, from 0.0 to 1.0 (1.0 once completed; ``None`` only before a
    worker first takes it): the last run-level ``durable.progress`` value if the workflow
    reports one, else derived from its steps (see the docs on progress and time left)."""
    error: str | None = None
    """``"ErrorType: message"`` when failed or blocked, else ``None``."""
    priority: int = 0
    """Higher runs first; FIFO within a priority."""
    parent_id: str | None = None
    """The id of the run that started this one as a child, if any."""
    error_type: str | None = None
    """The error's type name when failed (or blocked: ``"NonDeterminismError"``)."""
    error_message: str | None = None
    """The error's message when failed (or blocked: where and why the code cannot replay
    it)."""
    stage: str | None = None
    """The stage the run is in, as last recorded."""
    steps_completed: int = 0
    """How many step outcomes the journal records as completed."""
    wake_at: datetime | None = None
    """When a sleeping or delayed run becomes due (UTC), if it is waiting for a time."""
    waiting_for: str | None = None
    """What a sleeping run waits for besides a time, as the log records it:
    ``"signal:NAME"`` (in ``wait_signal(NAME)``) or ``"children"`` (waiting for its child
    runs); ``None`` otherwise."""
    step_name: str | None = None
    """Inside a step (``durable.info()`` only): the step's name."""
    step_position: int | None = None
    """Inside a step (``durable.info()`` only): the step's position in the run."""
    step_attempt: int | None = None
    """Inside a step (``durable.info()`` only): the attempt, from 1."""
    step_key: str | None = None
    """Inside a step: ``"{run_id}:{position}"``, the same on every attempt and every worker;
    use it as an idempotency key for the step's effects elsewhere."""
    worker_id: str | None = None
    """Inside a run (``durable.info()`` only): the identity of the executing worker."""
    eta: float | None = None
    """Estimated seconds until the run completes, from its rate of progress since it first
    started; 0.0 once completed, ``None`` when there is no estimate (no progress yet, or
    the run failed or was cancelled)."""
    step: str | None = None
    """The step the run is executing now (the one started last, if several run at once);
    ``None`` between steps, while it sleeps or waits, and once it has ended."""
    blocked_version: str | None = None
    """When blocked: the code version of the worker that could not replay the run (the
    reason is in ``error_type`` and ``error_message``)."""
    version: str | None = None
    """The code version the run started under (the starting App's ``version``); ``None``
    when it was started by a client without code (``durable.Client(url)``)."""
    dedup_key: str | None = None
    """The deduplication key it was started with (``client.start(dedup_key=)``), if any:
    while the run has not ended, no other run starts with it."""


@dataclass(frozen=True, slots=True)
class LogEvent:
    """One row of a run's journal."""

    seq: int
    """Its place in the run's journal: gapless from 1."""
    type: str
    """The event kind, a lower-case word such as ``"step_completed"``."""
    name: str | None
    """The step's, stage's, signal's or child workflow's name, where it has one."""
    position: int | None
    """The journaled call's position (from 1, in call order), where it has one."""
    attempt: int | None
    """The attempt number, for step and run attempts."""
    at: datetime
    """When it was written (UTC)."""
    data: dict[str, Any] = field(default_factory=dict)
    """The event's payload, decoded to plain Python values."""
    epoch: int = 0
    """The lease epoch of the writer."""


@dataclass(frozen=True, slots=True)
class WorkerInfo:
    """A live worker, as ``client.workers()`` reports it from the log."""

    id: str
    """Its identity (``host/pid`` unless given)."""
    host: str
    """The machine it runs on."""
    pid: int
    """Its process id on that machine."""
    queues: tuple[str, ...] | None
    """The queues it serves; ``None``: every queue of its workflows."""
    workflows: tuple[str, ...]
    """The workflows it registers."""
    version: str | None
    """The code version its App declares; ``None`` when it declares none."""
    started_at: datetime
    """When it started (UTC, the log's clock)."""
    last_seen: datetime
    """Its last heartbeat (UTC, the log's clock)."""
    running: tuple[str, ...]
    """The ids of the runs it held at its last heartbeat."""

    def serves(self, workflow: str, queue: str | None = None) -> bool:
        """Whether it takes runs of ``workflow`` (on ``queue``, if given)."""
        if workflow not in self.workflows:
            return False
        return queue is None or self.queues is None or queue in self.queues


@dataclass(frozen=True, slots=True)
class ScheduleInfo:
    """A schedule, as ``client.schedules()`` reports it from the log."""

    name: str
    """Its name: the first part of its runs' ids (``"{name}:{tick}"``)."""
    workflow: str
    """The workflow each tick starts."""
    cron: str
    """Its cron expression."""
    timezone: str
    """The IANA time zone whose wall clock the expression follows."""
    catch_up: str
    """What a worker does with ticks missed while no worker ran: ``"latest"``, ``"all"``
    or ``"none"``."""
    paused: bool
    """Paused: no tick starts a run until it is resumed."""
    next_tick: datetime | None
    """The next tick to start (in its time zone); ``None``: the expression has no tick
    left."""
    last_tick: datetime | None
    """The tick of the latest run started (by a tick, a trigger or a backfill)."""
    last_run_id: str | None
    """That run's id."""
    queue: str
    """The queue its runs go to."""
    args: tuple[Any, ...]
    """The arguments each run gets after its tick, decoded to plain values."""
    app: str | None
    """The App whose code declares it (``app.schedule``); ``None``: made at run time by
    ``client.create_schedule`` (and deletable with ``client.delete_schedule``)."""
    created_at: datetime
    """When it was first written to the log (UTC)."""
    updated_at: datetime
    """When its row last changed (UTC)."""

    @property
    def in_code(self) -> bool:
        """Whether an App's code declares it (else a client made it at run time)."""
        return self.app is not None
