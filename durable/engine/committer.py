"""Group commit: appends from the many runs of one worker, written together.

Callers hand :class:`AppendRequest`s to :meth:`Committer.submit` and get a
``concurrent.futures.Future``. One thread takes everything queued so far and writes it in one
transaction (each request fenced by its own epoch: a stale one is skipped, the others commit);
only after that transaction has committed are the futures resolved. A request that someone
waits for is written at once, alone if it is alone: nothing it waits on lingers for a batch to
fill. Requests nobody waits for (progress, a step's start) linger up to ``LINGER`` seconds for
company, so that a fast step's start and outcome share one transaction.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from concurrent.futures import Future
from typing import Any

from durable.errors import StoreError
from durable.log.store import AppendRequest, AppendResult, Store

__all__ = ["Committer"]

log = logging.getLogger("durable.engine.committer")

_STOP = object()
MAX_BATCH = 256
LINGER = 0.005
RETRY_FOR = 30.0
"""Seconds a batch that failed for a passing reason (a restart) is retried before its runs
are dropped (another worker, or this one, takes them up again from the journal)."""


class Committer:
    """A thread that writes queued appends in batches, one transaction per batch."""

    def __init__(self, store: Store, name: str = "durable-committer") -> None:
        self._store = store
        self._q: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self._started = False
        self._lock = threading.Lock()
        self.batches = 0
        """Transactions written (for tests and benchmarks: how well appends group)."""
        self.appends = 0
        """Appends written."""
        self._broken: set[tuple[str, int]] = set()
        """(run, epoch) pairs with a failed append: nothing more of theirs is written, so
        that a lost append never leaves a hole that later appends would close over."""

    def start(self) -> None:
        """Start the writing thread (idempotent)."""
        with self._lock:
            if not self._started:
                self._started = True
                self._thread.start()

    def submit(self, req: AppendRequest, *, waited: bool = True) -> Future[AppendResult]:
        """Queue ``req``; the future resolves once its transaction committed (or failed).

        ``waited=False``: nobody blocks on this one, so it may linger to join a batch.
        """
        fut: Future[AppendResult] = Future()
        self._q.put((req, fut, waited))
        return fut

    def stop(self, timeout: float = 10.0) -> None:
        """Write what is queued, then stop the thread."""
        if self._started:
            self._q.put(_STOP)
            self._thread.join(timeout)

    def _loop(self) -> None:
        stopping = False
        while not stopping:
            item = self._q.get()
            if item is _STOP:
                break
            batch: list[Any] = [item]
            waited = bool(item[2])  # type: ignore[index]
            deadline = time.monotonic() + LINGER
            while len(batch) < MAX_BATCH:
                try:
                    if waited:
                        nxt = self._q.get_nowait()
                    else:
                        nxt = self._q.get(timeout=max(deadline - time.monotonic(), 0.0))
                except queue.Empty:
                    break
                if nxt is _STOP:
                    stopping = True
                    break
                batch.append(nxt)
                waited = waited or bool(nxt[2])  # type: ignore[index]
            self._write([(r, f) for r, f, _ in batch])

    def forget(self, run_id: str, epoch: int) -> None:
        """The run's executor is done with this epoch (called when a runner ends)."""
        self._broken.discard((run_id, epoch))

    def _write(self, batch: list[tuple[AppendRequest, Future[AppendResult]]]) -> None:
        dead = [(r, f) for r, f in batch if (r.run_id, r.epoch) in self._broken]
        for _, fut in dead:
            if not fut.done():  # cancelled when its awaiting task was (runner aborted)
                fut.set_result(AppendResult(ok=False, error=StoreError("an earlier append failed")))
        batch = [(r, f) for r, f in batch if (r.run_id, r.epoch) not in self._broken]
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
            log.warning("append failed (%s), retrying in %.2fs", results[transient[0]].error, delay)
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
            if not fut.done():
                fut.set_result(res)

    def _retry(self, reqs: list[AppendRequest]) -> list[AppendResult]:
        for r in reqs:
            r.retried = True  # the first try may have committed with its answer lost
        try:
            return self._store.append(reqs)
        except Exception as exc:
            return [AppendResult(ok=False, error=exc) for _ in reqs]
