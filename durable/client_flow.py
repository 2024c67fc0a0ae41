"""The flow-control half of :class:`~durable.client.Client`: start a run and signal it in one
transaction, and cancel or resume many runs chosen by a filter.

A mixin, so that ``client.py`` stays about one run at a time; each method checks its
arguments before anything is written, then makes one call of the log's contract
(``Store.start_and_signal``, ``Store.cancel_many``, ``Store.resume_many``).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from durable.engine.policy import retry_options
from durable.errors import InvalidOptionError
from durable.log.store import Store
from durable.options import RunOptions, check_dedup_key, check_timeout
from durable.states import ACTIVE
from durable.types import Status

if TYPE_CHECKING:
    from durable.client import RunHandle
    from durable.engine.policy import Retry
    from durable.engine.registry import WorkflowDef
    from durable.hub import LocalHub
    from durable.log.store import NewRun
    from durable.telemetry import Telemetry

__all__ = ["CANCELLABLE", "RESUMABLE", "FlowOps", "dedup_keys_of"]

log = logging.getLogger("durable.client")

CANCELLABLE = tuple(sorted(ACTIVE))
"""The statuses ``cancel_many`` takes: those of runs not ended."""

RESUMABLE = (Status.BLOCKED, Status.CANCELLED, Status.FAILED)
"""The statuses ``resume_many`` takes."""


def dedup_keys_of(keys: Sequence[str | None] | None, n: int) -> list[str | None]:
    """The ``dedup_keys`` of ``start_many``, checked: one per run (``None``: none), none
    repeated (the batch is refused whole, before anything is written)."""
    if keys is None:
        return [None] * n
    if isinstance(keys, str):
        raise InvalidOptionError("dedup_keys must be a list of keys, one per run, not a string")
    out = [check_dedup_key(k, f"dedup_keys[{i}]") for i, k in enumerate(keys)]
    if len(out) != n:
        raise InvalidOptionError(f"{len(out)} dedup_keys for {n} runs")
    given = [k for k in out if k is not None]
    if len(set(given)) != len(given):
        raise InvalidOptionError("dedup_keys repeat within one start_many")
    return out


class FlowOps:
    """``signal_with_start``, ``cancel_many`` and ``resume_many``: a mixin of
    :class:`~durable.client.Client`."""

    _store: Store
    _hub: LocalHub | None
    _telemetry: Telemetry

    # Client's, used here (see ``client.py``).
    _resolve: Callable[[Callable[..., Any] | str], tuple[str, WorkflowDef | None]]
    _new_run: Callable[..., NewRun]
    _encode_signal: Callable[[str, Any], bytes | None]
    _handle: Callable[[str], RunHandle]
    _started: Callable[[str, Sequence[NewRun], set[str]], None]

    def signal_with_start(
        self,
        workflow: Callable[..., Any] | str,
        *args: Any,
        id: str | None = None,
        signal: str | None = None,
        payload: Any = None,
        queue: str | None = None,
        priority: int = 0,
        delay: float | dt.timedelta = 0.0,
        timeout: float | dt.timedelta | None = None,
        retry: Retry | None = None,
        dedup_key: str | None = None,
        **kwargs: Any,
    ) -> RunHandle:
        """Send signal ``signal`` (with ``payload``) to the run ``id``, starting it first
        (a run of ``workflow`` with ``args``/``kwargs``) if no run has that id: both in one
        transaction, so that the signal is never sent to a run that does not exist, nor
        lost between a start and a signal.

        The id is the idempotency key, as for :meth:`start`: a run that exists keeps its
        arguments and gets the signal (a run that has ended keeps it unread, as
        :meth:`signal` would). The other options are those of :meth:`start`, used only
        when this call starts the run.

        Raises:
            InvalidOptionError: no ``id`` or no ``signal`` given (nothing is written).
            IdConflictError: ``id`` belongs to a run of another workflow (nothing is
                written, no signal sent).
            DuplicateRunError: the run does not exist and an unfinished run holds
                ``dedup_key`` (nothing is written).
            The errors of :meth:`start` for bad arguments, before anything is written.
        """
        if id is None:
            raise InvalidOptionError(
                "signal_with_start needs the run's id= (the run it signals, started if no "
                "run has that id)"
            )
        if signal is None:
            raise InvalidOptionError("signal_with_start needs signal=, the signal's name")
        name, wf = self._resolve(workflow)
        opts = RunOptions(timeout=check_timeout(timeout), retry=retry_options(retry))
        key = check_dedup_key(dedup_key)
        new = self._new_run(name, wf, args, kwargs, id, queue, priority, delay, opts, None, key)
        data = self._encode_signal(signal, payload)
        row, created = self._store.start_and_signal(new, signal, data)
        self._started(name, [new], {row.id} if created else set())
        if not created and self._hub is not None:
            self._hub.work()
        return self._handle(row.id)

    def cancel_many(
        self,
        status: Status | str | None = None,
        workflow: Callable[..., Any] | str | None = None,
        queue: str | None = None,
        *,
        all_runs: bool = False,
    ) -> int:
        """Cancel every unfinished run that matches every filter given (and the unfinished
        children of each), as :meth:`cancel` cancels one; return how many of the matching
        runs this call cancelled or asked their worker to stop.

        Args:
            status: only runs in this status (``pending``, ``running``, ``sleeping`` or
                ``blocked``; default: any of them).
            workflow: only runs of this workflow (the function or its name).
            queue: only runs on this queue.
            all_runs: ``True`` to cancel every unfinished run of the log: without it, a call
                with no filter at all is refused.

        Raises:
            InvalidOptionError: no filter and not ``all_runs``, or a status of runs that
                have ended; nothing is cancelled.
        """
        statuses, wf_name, q = self._bulk_filter(
            "cancel_many", CANCELLABLE, status, workflow, queue, all_runs
        )
        done = self._store.cancel_many(statuses, wf_name, q, "cancelled by a client")
        for run_id, run_workflow, run_queue in done:
            self._telemetry.run_cancelled(run_workflow, run_queue)
            if self._hub is not None:
                self._hub.cancelled(run_id)
        if done and self._hub is not None:
            self._hub.run_changed()
        return len(done)

    def resume_many(
        self,
        status: Status | str | None = None,
        workflow: Callable[..., Any] | str | None = None,
        queue: str | None = None,
        *,
        all_runs: bool = False,
    ) -> int:
        """Resume every failed, cancelled or blocked run that matches every filter given,
        as :meth:`resume` resumes one; return how many were resumed. A run whose
        ``dedup_key`` another unfinished run holds now is left as it is (and logged).

        Args:
            status: only runs in this status (``failed``, ``cancelled`` or ``blocked``;
                default: any of them).
            workflow, queue, all_runs: as for :meth:`cancel_many`.

        Raises:
            InvalidOptionError: no filter and not ``all_runs``, or a status that cannot
                be resumed; nothing is resumed.
        """
        statuses, wf_name, q = self._bulk_filter(
            "resume_many", RESUMABLE, status, workflow, queue, all_runs
        )
        resumed, refused = self._store.resume_many(statuses, wf_name, q)
        for run_id, exc in refused:
            log.warning("run %s was not resumed: %s", run_id, exc)
        if resumed and self._hub is not None:
            self._hub.work()
        return len(resumed)

    def _bulk_filter(
        self,
        what: str,
        allowed: Sequence[Status],
        status: Status | str | None,
        workflow: Callable[..., Any] | str | None,
        queue: str | None,
        all_runs: bool,
    ) -> tuple[list[Status], str | None, str | None]:
        """The statuses, workflow name and queue of a bulk call, checked."""
        if not isinstance(all_runs, bool):
            raise InvalidOptionError(f"{what}: all_runs must be True or False")
        if status is None and workflow is None and queue is None and not all_runs:
            raise InvalidOptionError(
                f"{what} needs a filter (status=, workflow=, queue=), or all_runs=True to "
                "take every run it can"
            )
        names = ", ".join(s.value for s in allowed)
        if status is None:
            statuses = list(allowed)
        else:
            try:
                st = Status(status)
            except ValueError:
                raise InvalidOptionError(
                    f"{what}: no status {status!r}; it takes one of {names}"
                ) from None
            if st not in allowed:
                raise InvalidOptionError(f"{what}: not for {st.value} runs; it takes {names}")
            statuses = [st]
        wf_name = None
        if workflow is not None:
            wf_name = workflow if isinstance(workflow, str) else self._resolve(workflow)[0]
        if queue is not None and (not isinstance(queue, str) or not queue):
            raise InvalidOptionError(f"{what}: queue must be a non-empty string")
        return statuses, wf_name, queue
