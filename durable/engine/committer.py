"""Group commit: appends from the many runs of one worker, written together.

Callers hand :class:`AppendRequest`s to :meth:`Committer.submit` (and get a
``concurrent.futures.Future``) or to :meth:`Committer.write` (and wait for the answer). Whoever
writes takes everything queued so far, in order, and writes it in one transaction, each
request fenced by its own epoch (a stale one is skipped, the others commit); only after that
transaction has committed are the futures resolved. One batch is written at a time.

Two writers share that work:

- A thread that waits for its own append (:meth:`write`, a sync step's outcome) writes it
  itself when no batch is being written, with whatever is queued before it: a sequential run
  commits on its own thread and never waits for a batch to fill or for a hand-off.
- The committer thread writes everything else: requests submitted from the event loop (async
  runs), and requests queued while a batch was being written, which then go together.

Requests nobody waits for (progress, a step's start) linger up to ``LINGER`` seconds for
company, so that a fast step's start and outcome share one transaction.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections import deque
from concurrent.futures import Future, InvalidStateError

from durable.errors import StoreError
from durable.log.store import AppendRequest, AppendResult, Store
from durable.telemetry.logs import batch_fields

__all__ = ["Committer"]

log = logging.getLogger("durable.engine.committer")

MAX_BATCH = 256
LINGER = 0.005
RETRY_FOR = 30.0
"""Seconds a batch that failed for a passing reason (a restart) is retried before its runs
are dropped (another worker, or this one, takes them up again from the journal)."""

_Item = tuple[AppendRequest, "Future[AppendResult]", bool]


class Committer:
    """Writes queued appends in batches, one transaction per batch, one batch at a time."""

    def __init__(self, store: Store, name: str = "durable-committer") -> None:
        self._store = store
        self._cv = threading.Condition(threading.Lock())
        self._pending: deque[_Item] = deque()
        self._writing = False
        """A batch is being written (by the thread or by a caller): the next one waits."""
        self._stopping = False
        self._exited = False
        """The thread has stopped: ``write`` writes its own append, ``submit`` refuses."""
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self._started = False
        self.batches = 0
        """Transactions written (for tests and benchmarks: how well appends group)."""
        self.appends = 0
        """Appends written."""
        self._broken: set[tuple[str, int]] = set()
        """(run, epoch) pairs with a failed append: nothing more of theirs is written, so
        that a lost append never leaves a hole that later appends would close over."""

    def start(self) -> None:
        """Start the writing thread (idempotent)."""
        with self._cv:
            if not self._started:
                self._started = True
                self._thread.start()

    def submit(self, req: AppendRequest, *, waited: bool = True) -> Future[AppendResult]:
        """Queue ``req``; the future resolves once its transaction committed (or failed).

        ``waited=False``: nobody blocks on this one, so it may linger to join a batch.
        """
        fut: Future[AppendResult] = Future()
        with self._cv:
            if self._exited:
                fut.set_result(AppendResult(ok=False, error=StoreError("the worker stopped")))
                return fut
            self._pending.append((req, fut, waited))
            self._cv.notify_all()
        return fut

    def write(self, req: AppendRequest) -> AppendResult:
        """Append ``req`` and wait until its transaction committed (or failed).

        From a thread that may block (never the event loop's): if no batch is being written,
        this thread writes ``req`` with everything queued before it; else it waits for the
        committer thread to write it with the next batch.
        """
        fut: Future[AppendResult] = Future()
        with self._cv:
            self._pending.append((req, fut, True))
            while self._writing and self._exited:
                self._cv.wait()  # no thread to hand over to any more: write it ourselves
            if self._writing or not self._started:
                self._cv.notify_all()
                batch = None
            else:
                batch = self._take()
        if batch is not None:
            self._write_batch(batch)
        return fut.result()

    def stop(self, timeout: float = 10.0) -> None:
        """Write what is queued, then stop the thread."""
        with self._cv:
            if not self._started:
                return
            self._stopping = True
            self._cv.notify_all()
        self._thread.join(timeout)

    def _take(self) -> list[_Item]:
        """Take up to ``MAX_BATCH`` queued requests and mark a batch as being written
        (the condition's lock held)."""
        n = min(len(self._pending), MAX_BATCH)
        batch = [self._pending.popleft() for _ in range(n)]
        self._writing = True
        return batch

    def _write_batch(self, batch: list[_Item]) -> None:
        try:
            self._write([(r, f) for r, f, _ in batch])
        except BaseException as exc:
            for _, fut, _ in batch:  # nobody waits forever on a batch that broke
                _resolve(fut, AppendResult(ok=False, error=exc))
            raise
        finally:
            with self._cv:
                self._writing = False
                self._cv.notify_all()

    def _loop(self) -> None:
        try:
            self._serve()
        finally:
            with self._cv:
                self._exited = True
                self._cv.notify_all()

    def _serve(self) -> None:
        while True:
            with self._cv:
                while not self._pending or self._writing:
                    if self._stopping and not self._pending and not self._writing:
                        return
                    self._cv.wait(0.5 if self._stopping else None)
                if not any(w for _, _, w in self._pending) and not self._stopping:
                    # Nobody waits yet: linger for company (a waited append, or more).
                    deadline = time.monotonic() + LINGER
                    while not self._stopping and len(self._pending) < MAX_BATCH:
                        left = deadline - time.monotonic()
                        if left <= 0 or any(w for _, _, w in self._pending):
                            break
                        self._cv.wait(left)
                    if not self._pending or self._writing:
                        continue  # a caller took them
                batch = self._take()
            try:
                self._write_batch(batch)
            except Exception:  # a bug: keep serving the other runs' appends
                log.exception("writing a batch of appends failed")

    def forget(self, run_id: str, epoch: int) -> None:
        """The run's executor is done with this epoch (called when a runner ends)."""
        self._broken.discard((run_id, epoch))

    def _write(self, batch: list[tuple[AppendRequest, Future[AppendResult]]]) -> None:
        live: list[tuple[AppendRequest, Future[AppendResult]]] = []
        for item in batch:  # one pass: forget() may run meanwhile
            if (item[0].run_id, item[0].epoch) in self._broken:
                _resolve(
                    item[1], AppendResult(ok=False, error=StoreError("an earlier append failed"))
                )
            else:
                live.append(item)
        batch = live
        if not batch:
            return
        reqs = [r for r, _ in batch]
        delay = 0.05
        give_up = time.monotonic() + RETRY_FOR
        try:
            results = self._store.append(reqs)
        except Exception as exc:  # the whole batch failed to reach the database
            results = [AppendResult(ok=False, error=exc) for _ in reqs]
        while True:
            transient = [
                i
                for i, r in enumerate(results)
                if isinstance(r.error, StoreError) and r.error.transient
            ]
            if not transient or time.monotonic() >= give_up:
                break
            # The database is unreachable or restarting: retry what failed for a passing
            # reason, with backoff, keeping the rest as it is (a stale epoch stays refused).
            if log.isEnabledFor(logging.WARNING):
                ids = [reqs[i].run_id for i in transient]
                log.warning(
                    "append failed (%s), retrying in %.2fs (runs %s)",
                    results[transient[0]].error,
                    delay,
                    _some(ids),
                    extra=batch_fields(ids),
                )
            time.sleep(delay)
            delay = min(delay * 2, 2.0)
            again = self._retry([reqs[i] for i in transient])
            for i, r in zip(transient, again, strict=True):
                results[i] = r
        self.batches += 1
        self.appends += len(batch)
        for req, res in zip(reqs, results, strict=True):
            if res.error is not None or not res.ok:
                self._broken.add((req.run_id, req.epoch))
        for (_, fut), res in zip(batch, results, strict=True):
            _resolve(fut, res)

    def _retry(self, reqs: list[AppendRequest]) -> list[AppendResult]:
        for r in reqs:
            r.retried = True  # the first try may have committed with its answer lost
        try:
            return self._store.append(reqs)
        except Exception as exc:
            return [AppendResult(ok=False, error=exc) for _ in reqs]


def _resolve(fut: Future[AppendResult], res: AppendResult) -> None:
    """Set ``fut``'s result unless it is done or cancelled meanwhile (its awaiting task was
    cancelled: a runner aborted)."""
    with contextlib.suppress(InvalidStateError):
        if not fut.done():
            fut.set_result(res)


def _some(ids: list[str], most: int = 5) -> str:
    """``ids`` for a log message, the first ``most`` of them (distinct) and a count of the
    rest."""
    distinct = list(dict.fromkeys(ids))
    shown = ", ".join(distinct[:most])
    rest = len(distinct) - most
    return f"{shown} and {rest} more" if rest > 0 else shown
