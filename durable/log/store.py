"""The contract of the event log, in the log's own words, and the value types it trades in.

A *run* is a row of ``durable_runs``; its *journal* is its rows of ``durable_events``, ordered
by ``seq`` (gapless from 1). Only the holder of a run's lease may append to its journal, and
every append names the lease *epoch* it was taken under: an append under a stale epoch writes
nothing. The ``runs`` row is a projection of the journal, updated in the same transaction as
every append; the run's input is the one thing kept in the row only (``RunRow.input``, the
source of truth: ``run_started`` carries no copy of it).

A workflow's ``timeout`` counts from the run's first start: ``deadline_at`` is empty until the
first lease sets it to ``now + timeout``, so that a ``delay`` or a wait in a queue does not use
it up; :meth:`Store.resume` clears it, and the resumed run's next lease sets it afresh.

Values cross this boundary typed: a run's status is a :class:`~durable.types.Status`, what it
waits for a :class:`~durable.states.WaitFor`, an event's type an
:class:`~durable.events.EventType`.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from typing import Any

from durable.errors import DuplicateRunError
from durable.events import EventType, NewEvent
from durable.log.schedule_store import ScheduleStore
from durable.states import Status, WaitFor

__all__ = [
    "AppendRequest",
    "AppendResult",
    "JournalRow",
    "Lease",
    "NewRun",
    "PruneRule",
    "QueueLimit",
    "RunRow",
    "RunStats",
    "Store",
    "WorkerRecord",
]


@dataclass(frozen=True, slots=True)
class NewRun:
    """A run to insert: its ``run_started`` event is written with it."""

    id: str
    workflow: str
    queue: str
    input: bytes
    priority: int = 0
    delay: float = 0.0
    timeout: float | None = None
    parent_id: str | None = None
    trace_context: bytes | None = None
    forked_from: str | None = None
    options: bytes | None = None
    """The run's own options over its workflow's (encoded by the client), if any."""
    version: str | None = None
    """The code version the run is started under, if known."""
    max_pending: int | None = None
    """The bound of the run's queue that this start respects (``None``: unbounded): the
    start is refused if the queue would hold more runs not yet started (``durable.log.pending``)."""
    dedup_key: str | None = None
    """At most one unfinished run holds a key (a partial unique index): the start of a new
    run with the key of one that has not ended is refused (``durable.log.dedup``)."""


@dataclass(frozen=True, slots=True)
class RunRow:
    """One row of ``durable_runs``."""

    id: str
    workflow: str
    queue: str
    status: Status
    priority: int
    input: bytes
    output: bytes | None
    error_type: str | None
    error_message: str | None
    parent_id: str | None
    due_at: float | None
    wake_at: float | None
    waiting_for: WaitFor | None
    deadline_at: float | None
    """When the workflow's timeout passes (set at the first lease; ``None`` before it, or
    without a timeout)."""
    timeout: float | None
    lease_owner: str | None
    lease_epoch: int
    lease_expires_at: float | None
    last_seq: int
    attempt: int
    progress: float | None
    stage: str | None
    steps_completed: int
    stalls: int
    trace_context: bytes | None
    created_at: float
    updated_at: float
    finished_at: float | None
    started_at: float | None = None
    options: bytes | None = None
    version: str | None = None
    cancel_requested_at: float | None = None
    """When a client asked the worker holding the run to cancel it (``None``: never, or
    the run was resumed since)."""
    step: str | None = None
    """The step the run executes now (``None`` between steps, suspended or ended)."""
    step_progress: float | None = None
    """The last progress reported below the run's level (by the step in flight, or by the
    stage between steps); ``None`` until one is, and again once a step starts or ends."""
    blocked_versions: str | None = None
    """The code versions that could not replay the run since it last suspended, each
    between newlines (``"\\nv2\\n"``); ``None`` when none could not."""
    dedup_key: str | None = None
    """The run's deduplication key, if it was started with one."""


@dataclass(frozen=True, slots=True)
class QueueLimit:
    """Limits of one queue, enforced across every worker at lease time."""

    concurrency: int | None = None
    """At most this many runs of the queue ``running`` at once."""
    rate: tuple[int, float] | None = None
    """At most ``rate[0]`` runs started (first taken) per ``rate[1]`` seconds."""


@dataclass(frozen=True, slots=True)
class JournalRow:
    """One row of ``durable_events``, its payload still encoded."""

    run_id: str
    seq: int
    type: EventType
    position: int | None
    name: str | None
    attempt: int | None
    epoch: int
    at: float
    data: bytes


@dataclass(frozen=True, slots=True)
class Lease:
    """A run taken by a worker: it may append under ``epoch`` until the lease is lost."""

    run: RunRow
    epoch: int
    takeover: bool
    """The run was ``running`` under a lease whose holder stopped (a stall): the lease had
    expired, or its owner was named in ``reclaim`` (a restart under the same identity, a
    dead process)."""
    db_now: float
    """The database's clock when the lease was taken."""


@dataclass(slots=True)
class AppendRequest:
    """Events to append to one run's journal under one epoch, in one transaction.

    The log projects the events onto the run's row. ``run_suspended`` and terminal events hand
    the lease back (the epoch is bumped, so nothing more can be appended under it).
    """

    run_id: str
    epoch: int
    events: Sequence[NewEvent]
    new_runs: Sequence[NewRun] = ()
    """Runs (children) inserted in the same transaction; an existing id is left as it is."""
    consume_signal: tuple[str, int] | None = None
    """``(name, position)``: consume the oldest unconsumed signal of that name and append a
    ``signal_received`` for it at that position, before ``events``; if there is none, append
    ``events`` only."""
    wait_children: Sequence[str] = ()
    """With a ``run_suspended`` waiting for children: due at once if one of them has ended."""
    append_id: str = ""
    """Names this append on its rows; set by the log when empty."""
    retried: bool = False
    """A retry after an ambiguous failure: if rows of ``append_id`` exist, the first try
    committed, and the append succeeds without writing again."""


@dataclass(slots=True)
class AppendResult:
    """What became of one :class:`AppendRequest`."""

    ok: bool
    """False: the epoch was stale or the run has ended; nothing was written."""
    last_seq: int = 0
    signal: tuple[int, bytes | None] | None = None
    """The consumed signal's id and payload, when ``consume_signal`` found one."""
    error: BaseException | None = None
    """A database error that failed this request alone."""


@dataclass(frozen=True, slots=True)
class RunFilter:
    """The filters of :meth:`Store.list_runs` and :meth:`Store.count_runs`; ``None``
    matches anything."""

    status: Status | None = None
    workflow: str | None = None
    queue: str | None = None
    parent_id: str | None = None
    limit: int | None = 100
    """At most this many (the newest); ``None``: every match."""
    statuses: tuple[Status, ...] = field(default=())
    before: tuple[float, str] | None = None
    """``(created_at, id)`` of a run: only the runs after it in the list's order (older)."""
    since: float | None = None
    """Created at or after this instant."""
    until: float | None = None
    """Created at or before this instant."""
    id_prefix: str | None = None
    """The id starts with this text (exactly: case and all)."""
    version: str | None = None
    """Started under this code version."""


@dataclass(frozen=True, slots=True)
class PruneRule:
    """Which finished runs of a workflow :meth:`Store.prune` may delete.

    A finished run is deleted when every limit given here lets it go: it is not among the
    ``keep_completed`` newest ``completed`` runs of its workflow (or ``keep_failed`` newest
    ``failed`` or ``cancelled`` ones), and it finished more than ``older_than`` seconds ago.
    A status with neither a count nor an age is kept.
    """

    workflow: str | None = None
    """The workflow it applies to; ``None``: every workflow no other rule names (each
    workflow is still counted on its own)."""
    keep_completed: int | None = None
    keep_failed: int | None = None
    older_than: float | None = None


@dataclass(frozen=True, slots=True)
class RunStats:
    """Raw aggregates of ``durable_runs`` per ``(workflow, queue)``, for a statistics view."""

    finished: list[tuple[str, str, str, int]]
    """``(workflow, queue, status, count)`` of runs finished in the window."""
    unfinished: list[tuple[str, str, str, int]]
    """``(workflow, queue, status, count)`` of every run not finished now."""
    durations: list[tuple[str, str, float]]
    """``(workflow, queue, seconds)`` from first lease to the end, of the newest completed
    runs of the window (at most ``sample`` per group)."""
    errors: list[tuple[str, str, str, int]]
    """``(workflow, queue, error_type, count)`` of runs failed in the window."""
    window_start: float | None
    """The window's start on the database's clock (``None``: since the log began)."""
    now: float
    """The database's clock when the statistics were read."""


@dataclass(frozen=True, slots=True)
class WorkerRecord:
    """One worker as its row of ``durable_workers`` says (see :meth:`Store.worker_seen`)."""

    id: str
    host: str
    pid: int
    workflows: tuple[str, ...]
    """The workflows it registers."""
    ttl: float
    """Seconds after ``last_seen`` that it still counts as live (its lease timeout)."""
    queues: tuple[str, ...] | None = None
    """The queues it serves; ``None``: every queue."""
    version: str | None = None
    """The code version its App declares, if any."""
    running: tuple[str, ...] = ()
    """The runs it held at its last heartbeat."""
    started_at: float = 0.0
    """When it started (the database's clock; set by the log)."""
    last_seen: float = 0.0
    """Its last heartbeat (the database's clock; set by the log)."""


class Store(ScheduleStore, abc.ABC):
    """The event log. Every method is one transaction unless it says otherwise; the
    schedules' methods are those of :class:`~durable.log.schedule_store.ScheduleStore`."""

    url: str

    @abc.abstractmethod
    def close(self) -> None:
        """Release the connections."""

    # -- runs ----------------------------------------------------------------------------

    @abc.abstractmethod
    def create_run(self, run: NewRun) -> tuple[RunRow, bool]:
        """Insert the run and its ``run_started`` event unless the id exists.

        Returns the row (the existing one if the id was taken) and whether it was created.
        Idempotency rests on the primary key, never on a read before the insert. A run with
        a ``dedup_key`` that an unfinished run holds (and an id that does not exist) is not
        inserted: ``DuplicateRunError`` names that run, and nothing is written.
        """

    @abc.abstractmethod
    def start_and_signal(
        self, run: NewRun, name: str, payload: bytes | None
    ) -> tuple[RunRow, bool]:
        """:meth:`create_run` and :meth:`send_signal` to the run, in one transaction: the
        run is inserted unless its id exists, then the signal is added to its inbox (the
        run woken if it waits for it). An id taken by a run of another workflow raises
        ``IdConflictError``, and nothing is written. Returns as :meth:`create_run`."""

    @abc.abstractmethod
    def create_runs(self, new: Sequence[NewRun]) -> set[str]:
        """Insert many runs and their ``run_started`` events in one transaction, skipping
        ids that exist with the same workflow (idempotency on the primary key, as
        :meth:`create_run`); an id held by a run of another workflow raises
        ``IdConflictError`` and nothing is written.

        Returns the ids that were created.
        """

    @abc.abstractmethod
    def get_run(self, run_id: str) -> RunRow | None:
        """The run's row, or ``None``."""

    @abc.abstractmethod
    def get_runs(self, run_ids: Sequence[str]) -> list[RunRow]:
        """The rows of those of ``run_ids`` that exist."""

    @abc.abstractmethod
    def list_runs(self, flt: RunFilter) -> list[RunRow]:
        """Runs matching ``flt``, newest first (``created_at``, then ``id``, descending)."""

    @abc.abstractmethod
    def count_runs(self, flt: RunFilter) -> dict[Status, int]:
        """How many runs match ``flt`` (but its limit and cursor) in each status that has
        any."""

    @abc.abstractmethod
    def read_journal(self, run_id: str, after_seq: int = 0) -> list[JournalRow]:
        """The run's events with ``seq > after_seq``, in ``seq`` order."""

    @abc.abstractmethod
    def read_journals(self, run_ids: Sequence[str]) -> dict[str, list[JournalRow]]:
        """The whole journals of many runs at once, in few statements of one read: for
        each id given, its events in ``seq`` order (an empty list for an id no run has)."""

    # -- leases --------------------------------------------------------------------------

    @abc.abstractmethod
    def lease(
        self,
        owner: str,
        ttl: float,
        workflows: Sequence[str],
        queues: Sequence[str] | None,
        limit: int,
        reclaim: Sequence[str] = (),
        limits: dict[str, QueueLimit] | None = None,
        version: str | None = None,
    ) -> list[Lease]:
        """Take up to ``limit`` runnable runs of ``workflows`` (and ``queues``), highest
        priority first, FIFO within a priority; never one that code ``version`` (the
        worker's) could not replay since it last suspended.

        A queue named in ``limits`` gets no more than its limits allow, counted over every
        worker in the same transaction that takes the runs (serialized per queue).

        Runnable: ``pending`` or ``sleeping`` with ``due_at`` reached, or ``running`` with an
        expired lease, or ``running`` under an owner named in ``reclaim`` (a worker that
        restarted under that identity, or a dead process). Each take sets the owner and expiry,
        bumps ``lease_epoch`` and appends ``lease_taken``, in one transaction.
        """

    @abc.abstractmethod
    def heartbeat(self, owner: str, ttl: float, held: dict[str, int]) -> set[str]:
        """Extend the leases of ``held`` (run id -> epoch); return the ids whose lease was
        lost (the run has a newer epoch: taken over, cancelled, or gone). A run that this
        lease itself ended or suspended is not lost."""

    @abc.abstractmethod
    def release(self, held: dict[str, int]) -> None:
        """Hand leases back: each run becomes due now under a new epoch (graceful stop)."""

    @abc.abstractmethod
    def owners_running(self, workflows: Sequence[str]) -> list[str]:
        """The distinct lease owners of ``running`` runs of ``workflows``."""

    @abc.abstractmethod
    def next_due(
        self, workflows: Sequence[str], queues: Sequence[str] | None, version: str | None = None
    ) -> float | None:
        """The earliest ``due_at`` of a run a worker of ``workflows`` (and of code
        ``version``, see :meth:`lease`) could take."""

    @abc.abstractmethod
    def queue_backlog(self) -> tuple[float, list[tuple[str, int, float]]]:
        """The database's clock, and for each queue with runs due now (``due_at`` passed:
        pending, due to wake up, or running under an expired lease): ``(queue, how many, the
        oldest due_at)``. One grouped read of the due-runs index (for the queue gauges)."""

    # -- journal -------------------------------------------------------------------------

    @abc.abstractmethod
    def append(self, requests: Sequence[AppendRequest]) -> list[AppendResult]:
        """Append each request's events, fenced by its epoch, all in one transaction.

        For each request: ``UPDATE runs ... WHERE id AND lease_epoch = epoch AND not ended``
        first; only if it matched, insert the events with the next ``seq`` numbers. A stale
        request writes nothing and gets ``ok=False`` without failing the others.
        """

    # -- clients -------------------------------------------------------------------------

    @abc.abstractmethod
    def cancel(self, run_id: str, reason: str) -> tuple[RunRow, bool] | None:
        """Cancel a non-terminal run, and its unfinished children likewise.

        A run that a live lease holds (``running``, its lease not expired) is *asked* to
        stop: ``cancel_requested_at`` is set and the request pushed to its holder
        (:meth:`listen_cancels`), which ends it ``cancelled`` once its code has stopped.
        Any other unfinished run ends at once: the epoch is bumped and ``run_cancelled``
        appended. Returns the run's row and whether this call cancelled it or asked its
        holder to (``False``: it had ended already, or its holder was asked already).
        ``None``: no such run."""

    def cancel_requests(self) -> list[RunRow]:
        """The runs whose holder was asked to cancel them and that have not ended yet (one
        read of a partial index: as many rows as open requests)."""
        return []

    def listen_cancels(self, on_cancel: Callable[[str], None]) -> Any:
        """Push cancel requests to ``on_cancel`` from a background thread: the run's id, or
        ``""`` when the store does not say which (then read :meth:`cancel_requests`).
        Returns an object with ``stop()``, or ``None`` where the store cannot push them."""
        return None

    @abc.abstractmethod
    def cancel_many(
        self,
        statuses: Sequence[Status],
        workflow: str | None,
        queue: str | None,
        reason: str,
    ) -> list[tuple[str, str, str]]:
        """:meth:`cancel` every run whose status is one of ``statuses`` (unfinished ones)
        and whose workflow and queue are those given (``None``: any), their unfinished
        children with them; in pages of runs by id, one transaction per page. Returns
        ``(id, workflow, queue)`` of each matching run that this call cancelled or asked
        its holder to stop (children that do not match are not listed)."""

    @abc.abstractmethod
    def resume_many(
        self, statuses: Sequence[Status], workflow: str | None, queue: str | None
    ) -> tuple[list[str], list[tuple[str, DuplicateRunError]]]:
        """:meth:`resume` every run whose status is one of ``statuses`` (failed, cancelled,
        blocked) and whose workflow and queue are those given (``None``: any); in pages of
        runs by id, one transaction per page. Returns the ids resumed, and the runs left as
        they are because another unfinished run holds their ``dedup_key`` now, each with
        its error."""

    @abc.abstractmethod
    def resume(self, run_id: str) -> RunRow | None:
        """Make a ``failed`` or ``cancelled`` run due again (new epoch, attempt + 1,
        ``run_resumed``, no deadline until its next lease), or a ``blocked`` one (new epoch,
        ``run_unblocked``, the versions that could not replay it forgotten); a run in any
        other state is left as it is. A failed or cancelled run whose ``dedup_key`` another
        unfinished run holds now is refused with ``DuplicateRunError`` (nothing written)."""

    @abc.abstractmethod
    def take_up_blocked(
        self, workflows: Sequence[str], queues: Sequence[str] | None, version: str | None
    ) -> list[str]:
        """Make due again the ``blocked`` runs of ``workflows`` (on ``queues``; ``None``:
        any) that code ``version`` has not failed to replay (new epoch, ``run_unblocked``);
        return their ids. Up to a few hundred per call."""

    @abc.abstractmethod
    def fork(self, run_id: str, new: NewRun, keep: Sequence[JournalRow]) -> RunRow:
        """Insert ``new`` whose journal holds, after its ``run_started``, copies of ``keep``."""

    def listen(self, on_notify: Callable[[str], None]) -> Any:
        """Push wake-ups (a run started, signalled, resumed or due now) to ``on_notify`` from
        a background thread; returns an object with ``stop()``, or ``None`` where the store
        cannot push (its workers then poll)."""
        return None

    def listen_journals(self, on_append: Callable[[str], None]) -> Any:
        """Push journal growth to ``on_append`` from a background thread: the ids of the
        runs whose journals grew (one per line), or ``""`` when any may have (after a
        reconnect); returns an object with ``stop()``, or ``None`` where the store cannot
        push. Every committed append to a run marked with :meth:`mark_watched` is announced,
        and every append that ends a run, but ``lease_taken`` (always followed by an append
        of the same worker)."""
        return None

    def mark_watched(self, run_ids: Collection[str], seconds: float) -> None:
        """Record that this process watches the journals of ``run_ids`` for the next
        ``seconds`` (of the database's clock): until then, every append to them is
        announced to :meth:`listen_journals`. A watcher marks its run before its first read
        and again before the mark runs out; an append that neither ends a run nor wakes
        workers is not announced for a run that nobody marked."""

    @abc.abstractmethod
    def send_signal(self, run_id: str, name: str, payload: bytes | None) -> bool:
        """Add a signal to the run's inbox; wake the run if it waits for that name.
        ``False``: no such run."""

    # -- maintenance ---------------------------------------------------------------------

    @abc.abstractmethod
    def steps_of_last_completed(self, workflows: Sequence[str]) -> dict[str, int]:
        """For each of ``workflows`` that has a completed run, the number of steps its most
        recently finished completed run completed (what a run's progress is measured
        against). Workflows without a completed run are left out."""

    @abc.abstractmethod
    def prune(
        self, rules: Sequence[PruneRule], *, dry_run: bool = False, limit: int | None = 500
    ) -> list[str]:
        """Delete whole finished runs that ``rules`` let go: each run's row, journal and
        signals together, in one transaction, up to ``limit`` runs. Returns their ids.

        Never a run that is not ``completed``, ``failed`` or ``cancelled`` (checked again on
        the rows being deleted), never part of a journal, and never a child run whose parent
        still exists and has not completed (a failed or cancelled parent may be resumed and
        read its children). ``dry_run``: delete nothing, return the ids that would go.
        """

    @abc.abstractmethod
    def run_stats(self, window: float | None, sample: int = 1000) -> RunStats:
        """Aggregates of the runs that finished in the last ``window`` seconds (``None``:
        all of them) and of the runs not finished now, per workflow and queue. Reads only."""

    # -- workers -------------------------------------------------------------------------

    @abc.abstractmethod
    def worker_seen(self, worker: WorkerRecord, *, starting: bool = False) -> None:
        """Write the worker's row: ``last_seen`` (and, ``starting``, ``started_at``) is the
        database's clock now; the rest is ``worker``'s (``started_at`` and ``last_seen`` of
        ``worker`` are ignored). ``starting`` replaces a row left by an earlier process of
        the same identity."""

    @abc.abstractmethod
    def worker_gone(self, worker_id: str) -> None:
        """Delete the worker's row (it stopped cleanly)."""

    @abc.abstractmethod
    def live_workers(self) -> tuple[float, list[WorkerRecord]]:
        """The database's clock, and the workers seen within their ``ttl``, by id."""

    @abc.abstractmethod
    def prune_workers(self, older_than: float) -> int:
        """Delete the rows of workers not seen for ``older_than`` seconds; return how many."""
