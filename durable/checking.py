"""``client.check()``: replay many runs against an App's code, executing nothing and writing
nothing, and report, run by run, what a worker of that code would do with each.

The runs are listed in one read (the unfinished ones, then the newest finished ones if
asked), their journals read in batches (``Store.read_journals``), and each replayed as
``client.replay`` replays one (:func:`~durable.engine.replaying.check_replay`). Replay is
Python code bound by the CPU, so with ``jobs`` above 1 the check forks that many processes
once the runs are listed: each inherits the App's code and the list, takes every
``jobs``-th run, opens its own connections to the log and sends its verdicts back through a
pipe. Forking needs ``os.fork`` and a process without other threads (a thread that holds a
lock at the fork, an embedded worker's, would hold it in the child for ever); elsewhere, and
for few runs, the runs are checked in this process. :attr:`CheckReport.jobs` says which.
"""

from __future__ import annotations

import multiprocessing
import threading
import time
from collections.abc import Callable, Sequence
from multiprocessing.connection import Connection
from typing import Any

from durable.check_report import CheckReport, RunCheck
from durable.codec import Codec
from durable.engine.registry import Registry
from durable.engine.replay import Journal
from durable.engine.replaying import check_replay
from durable.errors import CorruptJournalError, UnknownWorkflowError
from durable.log import open_store
from durable.log.store import JournalRow, RunFilter, RunRow, Store
from durable.types import TERMINAL, Status

__all__ = ["CheckOps", "check_runs"]

BATCH = 500
"""Runs whose journals one read fetches."""
MIN_SHARE = 50
"""Fewest runs worth a process of their own: below ``2 * MIN_SHARE`` runs, no fork."""

_UNFINISHED = tuple(s for s in Status if s not in TERMINAL)
_FINISHED = tuple(s for s in Status if s in TERMINAL)


class CheckOps:
    """``check``: a mixin of :class:`~durable.client.Client`."""

    _store: Store
    _registry: Registry | None
    _codec: Codec
    _version_of: Callable[[], str | None]

    def check(
        self,
        status: Status | str | None = None,
        workflow: Callable[..., Any] | str | None = None,
        finished: int = 0,
        *,
        jobs: int = 1,
    ) -> CheckReport:
        """Replay every unfinished run against this App's code, executing nothing and
        writing nothing, and report what a worker of this code would do with each.

        Args:
            status: only runs in this status (a finished one needs ``finished``).
            workflow: only runs of this workflow (the function or its name).
            finished: also the ``finished`` newest finished runs.
            jobs: processes that replay the runs (forked; see :attr:`CheckReport.jobs`).

        Raises:
            UnknownWorkflowError: a client without code (use ``app.client()``), or a
                ``workflow`` that the App does not register.
            ValueError: an App without workflows, or a bad ``status``, ``finished``, ``jobs``.
        """
        if self._registry is None:
            raise UnknownWorkflowError("check needs the workflows' code: use app.client()")
        return check_runs(
            self._store,
            self._registry,
            self._codec,
            self._version_of(),
            status=status,
            workflow=workflow,
            finished=finished,
            jobs=jobs,
        )


def check_runs(
    store: Store,
    registry: Registry,
    codec: Codec,
    version: str | None,
    *,
    status: Status | str | None = None,
    workflow: Callable[..., Any] | str | None = None,
    finished: int = 0,
    jobs: int = 1,
) -> CheckReport:
    """Replay the runs that ``status``, ``workflow`` and ``finished`` select against the
    code of ``registry`` (see ``Client.check``).

    Raises:
        ValueError: the registry has no workflow; ``status`` names no status, or a finished
            one while ``finished`` is 0; ``finished`` is negative; ``jobs`` is below 1.
        TypeError: ``finished`` or ``jobs`` is not an int.
        UnknownWorkflowError: ``workflow`` is a name that ``registry`` does not register.
    """
    if not registry.workflows:
        raise ValueError("the App registers no workflow: there is no code to check runs against")
    st = Status(status) if status is not None else None
    for name, value, least in (("finished", finished, 0), ("jobs", jobs, 1)):
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"{name} must be an int, not {type(value).__name__}")
        if value < least:
            raise ValueError(f"{name} must be {least} or more, not {value}")
    if st is not None and st.is_terminal and finished == 0:
        raise ValueError(
            f"runs in status {st.value!r} have finished: give finished=N to check the newest N"
        )
    started = time.perf_counter()
    rows = _select(store, st, _workflow_name(registry, workflow), finished)
    procs = _processes(jobs, len(rows))
    if procs == 1:
        checks = _check_share(store, registry, codec, rows)
    else:
        checks = _forked(store.url, registry, codec, rows, procs)
    return CheckReport(version, tuple(checks), procs, time.perf_counter() - started)


def _workflow_name(registry: Registry, workflow: Callable[..., Any] | str | None) -> str | None:
    """The name of the ``workflow`` filter, which the App must register."""
    if workflow is None:
        return None
    wf = getattr(workflow, "__durable_workflow__", None)
    name = wf.name if wf is not None else workflow
    if not isinstance(name, str):
        raise TypeError(
            f"workflow must be a workflow function or its name, not {type(workflow).__name__}"
        )
    if name not in registry.workflows:
        raise UnknownWorkflowError(
            f"the App does not register workflow {name!r} "
            f"(it registers {', '.join(repr(n) for n in sorted(registry.workflows))})"
        )
    return name


def _select(
    store: Store, status: Status | None, workflow: str | None, finished: int
) -> list[RunRow]:
    """The runs to check, in one read each: every unfinished one (of ``status``, if given),
    newest first, then the ``finished`` newest finished ones."""
    rows: list[RunRow] = []
    if status is None or not status.is_terminal:
        statuses = (status,) if status is not None else _UNFINISHED
        rows += store.list_runs(RunFilter(statuses=statuses, workflow=workflow, limit=None))
    if finished and (status is None or status.is_terminal):
        statuses = (status,) if status is not None else _FINISHED
        rows += store.list_runs(RunFilter(statuses=statuses, workflow=workflow, limit=finished))
    return rows


def _processes(jobs: int, runs: int) -> int:
    """How many processes check ``runs`` runs when ``jobs`` are asked for."""
    if jobs == 1 or runs < 2 * MIN_SHARE:
        return 1
    if "fork" not in multiprocessing.get_all_start_methods() or threading.active_count() > 1:
        return 1
    return min(jobs, runs // MIN_SHARE)


def _check_share(
    store: Store, registry: Registry, codec: Codec, rows: Sequence[RunRow]
) -> list[RunCheck]:
    """The verdicts of ``rows``, in their order, their journals read :data:`BATCH` at a
    time (each row read before its journal, so that the journal is never older)."""
    out: list[RunCheck] = []
    for i in range(0, len(rows), BATCH):
        part = rows[i : i + BATCH]
        journals = _journals(store, [r.id for r in part if r.workflow in registry.workflows])
        for row in part:
            out.append(_check_one(row, journals.get(row.id), registry, codec, store))
    return out


def _journals(store: Store, ids: list[str]) -> dict[str, list[JournalRow] | CorruptJournalError]:
    """The journals of ``ids`` in one read; if one cannot be decoded, each on its own."""
    if not ids:
        return {}
    try:
        return dict(store.read_journals(ids))
    except CorruptJournalError:
        pass
    out: dict[str, list[JournalRow] | CorruptJournalError] = {}
    for run_id in ids:
        try:
            out[run_id] = store.read_journal(run_id)
        except CorruptJournalError as exc:
            out[run_id] = exc
    return out


def _check_one(
    row: RunRow,
    rows: list[JournalRow] | CorruptJournalError | None,
    registry: Registry,
    codec: Codec,
    store: Store,
) -> RunCheck:
    """The verdict of one run, of its row and journal."""
    base = (row.id, row.workflow, row.status, row.version)
    wf = registry.workflows.get(row.workflow)
    if wf is None:
        return RunCheck(*base, "unregistered")
    try:
        if isinstance(rows, CorruptJournalError):
            raise rows
        journal = Journal(row.id, rows or [])
        v = check_replay(wf, row, journal, registry=registry, codec=codec, store=store)
    except (CorruptJournalError, UnknownWorkflowError) as exc:  # a worker would fail it
        return RunCheck(*base, "fails", error_type=type(exc).__name__, message=str(exc))
    if (m := v.mismatch) is not None:
        return RunCheck(
            *base,
            "blocks",
            m.position,
            m.called,
            m.recorded,
            error_type="NonDeterminismError",
            message=str(m),
        )
    if (f := v.failure) is not None:
        if row.status is Status.FAILED and f.error_type == row.error_type:
            return RunCheck(*base, "replays")  # it fails again as it did
        return RunCheck(*base, "fails", error_type=f.error_type, message=f.error_message)
    return RunCheck(*base, "replays")


def _forked(
    url: str, registry: Registry, codec: Codec, rows: list[RunRow], procs: int
) -> list[RunCheck]:
    """The verdicts of ``rows`` from ``procs`` forked processes, in the order of ``rows``."""
    ctx = multiprocessing.get_context("fork")
    started: list[tuple[Any, Connection]] = []
    try:
        for k in range(procs):
            receive, send = ctx.Pipe(duplex=False)
            share = rows[k::procs]
            p = ctx.Process(target=_child, args=(send, url, registry, codec, share), daemon=True)
            p.start()
            send.close()
            started.append((p, receive))
        out: list[RunCheck | None] = [None] * len(rows)
        for k, (p, receive) in enumerate(started):
            out[k::procs] = _received(p, receive)
    finally:
        for p, receive in started:
            receive.close()
            p.join(5)
            if p.is_alive():
                p.kill()
                p.join()
    return [c for c in out if c is not None]


def _received(p: Any, receive: Connection) -> list[RunCheck]:
    """What a check process sent: its verdicts, or the error it raised, raised here."""
    try:
        kind, value = receive.recv()
    except EOFError:
        p.join(5)
        raise RuntimeError(
            f"a check process died before it answered (exit code {p.exitcode})"
        ) from None
    if kind == "error":
        raise value
    checks: list[RunCheck] = value
    return checks


def _child(
    send: Connection, url: str, registry: Registry, codec: Codec, rows: list[RunRow]
) -> None:
    """A forked check process: its own connections to the log, its share of the runs."""
    try:
        store = open_store(url, create=False)
        try:
            answer: tuple[str, Any] = ("ok", _check_share(store, registry, codec, rows))
        finally:
            store.close()
    except BaseException as exc:  # the parent raises it
        answer = ("error", exc)
    try:
        send.send(answer)
    except Exception as exc:  # an error that does not pickle: its words
        send.send(("error", RuntimeError(f"{type(answer[1]).__name__}: {answer[1]} ({exc})")))
    send.close()
