"""The worker: lease loop, heartbeats, concurrency, wake-ups and a graceful drain.

Threads: an asyncio event loop (uvloop where installed) runs the lease loop and async
workflows; a pool runs sync workflows; the committer writes journal appends; a heartbeat
thread extends leases (never on the event loop, so a busy loop cannot lose them). The bodies
of ``executor="process"`` steps run in a process pool (:mod:`durable.engine.pool`), started
when first needed and stopped with the worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import socket
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from durable.clock import SYSTEM_CLOCK, Clock
from durable.codec import Codec
from durable.engine.cancelling import CancelRequests
from durable.engine.committer import Committer
from durable.engine.pool import ProcessPool
from durable.engine.presence import Presence
from durable.engine.registry import Registry
from durable.engine.runner import Runner
from durable.engine.scheduler import Scheduler
from durable.engine.services import Services
from durable.log.store import Lease, QueueLimit, RunRow, Store
from durable.states import AbortReason
from durable.telemetry import Telemetry
from durable.telemetry.logs import batch_fields, fields
from durable.types import WorkerEvent

__all__ = ["Worker", "default_worker_id"]

log = logging.getLogger("durable.engine.worker")

Listener = Callable[[WorkerEvent, RunRow, dict[str, Any]], None]


def default_worker_id() -> str:
    """``DURABLE_WORKER_ID``, else ``"{hostname}/{pid}"``."""
    return os.environ.get("DURABLE_WORKER_ID") or f"{socket.gethostname()}/{os.getpid()}"


def _dead_local_owners(owners: Sequence[str], me: str) -> list[str]:
    """Owners of the form ``host/pid`` on this host whose process no longer exists."""
    host = socket.gethostname()
    dead = []
    for owner in owners:
        if owner == me:
            dead.append(owner)  # a restart under the same explicit identity
            continue
        h, _, pid = owner.rpartition("/")
        if h != host or not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            dead.append(owner)
        except PermissionError:
            pass
    return dead


def _new_loop() -> asyncio.AbstractEventLoop:
    try:
        import uvloop

        return uvloop.new_event_loop()
    except ImportError:  # pragma: no cover - platforms without uvloop
        return asyncio.new_event_loop()


class Worker:
    """Leases runs of the registry's workflows from the store and executes them."""

    def __init__(
        self,
        store: Store,
        registry: Registry,
        codec: Codec,
        *,
        queues: Sequence[str] | None = None,
        concurrency: int = 16,
        worker_id: str | None = None,
        lease_timeout: float = 30.0,
        poll_interval: float = 1.0,
        listener: Listener | None = None,
        limits: dict[str, QueueLimit] | None = None,
        housekeeping: Callable[[], object] | None = None,
        housekeeping_interval: float = 300.0,
        telemetry: Telemetry | None = None,
        version: str | None = None,
        cancel_grace: float = 10.0,
        processes: int | None = None,
        clock: Clock = SYSTEM_CLOCK,
        scheduler: Scheduler | None = None,
    ) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        if lease_timeout <= 0:
            raise ValueError("lease_timeout must be positive")
        self.store = store
        self.registry = registry
        self.queues = list(queues) if queues is not None else None
        self.concurrency = concurrency
        self.worker_id = worker_id or default_worker_id()
        self.lease_timeout = lease_timeout
        self.poll_interval = poll_interval
        self._listener = listener
        self.limits = dict(limits or {})
        self.committer = Committer(store)
        self._workflow_pool = ThreadPoolExecutor(concurrency, thread_name_prefix="durable-wf")
        self._step_pool = ThreadPoolExecutor(max(4, concurrency), thread_name_prefix="durable-step")
        self.services = Services(
            registry=registry,
            codec=codec,
            store=store,
            committer=self.committer,
            worker_id=self.worker_id,
            step_pool=self._step_pool,
            telemetry=telemetry,
            process_pool=ProcessPool(
                processes if processes is not None else os.cpu_count() or 1, cancel_grace
            ),
            clock=clock,
            version=version,
        )
        self.clock = clock
        """The log's clock: waits for due runs are measured on it (and a test's skips)."""
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        self._stopping = False
        self._killed = False
        self._runners: dict[str, Runner] = {}
        self._held: dict[str, int] = {}
        self._held_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._hb_thread: threading.Thread | None = None
        self._hb_stop = threading.Event()
        self._ready = threading.Event()
        self._done = threading.Event()
        self._clock_offset = 0.0
        self._listener_handle: Any = None
        self._cancels: CancelRequests | None = None
        self.cancel_grace = cancel_grace
        """Seconds a cancelled run's code has to stop before it is abandoned."""
        self._housekeeping = housekeeping
        self.housekeeping_interval = housekeeping_interval
        self.scheduler = scheduler
        """Starts the runs of due schedule ticks, on its own thread while this worker runs."""
        self.presence = Presence(
            store, self.worker_id, list(registry.workflows), self.queues, lease_timeout, version
        )
        """This worker's row of the log (``client.workers()``)."""

    # -- lifecycle -----------------------------------------------------------------------

    def start(self) -> None:
        """Run in background threads (an embedded worker)."""
        self._thread = threading.Thread(target=self.run, name="durable-worker", daemon=True)
        self._thread.start()
        self._ready.wait(30)

    def run(self) -> None:
        """Run in this thread until :meth:`stop` is called."""
        loop = _new_loop()
        self._loop = loop
        self.services.loop = loop
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self._main())
        finally:
            try:
                loop.run_until_complete(loop.shutdown_asyncgens())
            finally:
                loop.close()
                self._done.set()

    def stop(self, drain_timeout: float = 10.0) -> None:
        """Stop leasing, let in-flight steps finish (up to ``drain_timeout``), hand the
        remaining leases back, and stop every thread."""
        self._stopping = True
        self._drain_timeout = drain_timeout
        self.wake()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(drain_timeout + 15)

    def kill(self) -> None:
        """Stop as abruptly as a crash would, for tests: abort every run at once, write
        nothing more, hand no lease back (they expire, or a restart reclaims them)."""
        self._killed = True
        self._stopping = True
        loop = self._loop
        if loop is not None and not loop.is_closed():
            for runner in list(self._runners.values()):
                with contextlib.suppress(RuntimeError):
                    loop.call_soon_threadsafe(runner.abort, AbortReason.KILLED)
        self.wake()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(15)

    def wake(self) -> None:
        """Look for work now (a run was started, signalled or became due in this process)."""
        if self.scheduler is not None:
            self.scheduler.wake()
        loop, ev = self._loop, self._wake
        if loop is not None and ev is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(ev.set)

    def abort_run(self, run_id: str, reason: AbortReason = AbortReason.CANCELLED) -> None:
        """Stop executing ``run_id`` at once (it was cancelled in this process)."""
        loop = self._loop
        runner = self._runners.get(run_id)
        if loop is not None and runner is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(runner.abort, reason)

    def serves(self, workflow: str, queue: str) -> bool:
        """Whether this worker takes runs of ``workflow`` on ``queue``."""
        return workflow in self.registry.workflows and (self.queues is None or queue in self.queues)

    def request_cancel(self, run_id: str) -> None:
        """A client asked to cancel ``run_id``: if this worker executes it, tell its code
        and end it once the code stopped or the grace is over (from any thread)."""
        loop = self._loop
        runner = self._runners.get(run_id)
        if loop is not None and runner is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(runner.request_cancel)

    # -- the loop ------------------------------------------------------------------------

    async def _main(self) -> None:
        self._wake = asyncio.Event()
        self._drain_timeout = 10.0
        self.committer.start()
        self._hb_thread = threading.Thread(
            target=self._heartbeats, name="durable-heartbeat", daemon=True
        )
        self._hb_thread.start()
        self._listener_handle = None
        try:
            self._listener_handle = self.store.listen(lambda _queue: self.wake())
        except Exception:
            log.exception("could not listen for wake-ups; polling every %ss", self.poll_interval)
        self._cancels = CancelRequests(self, self._hb_stop)
        self._cancels.start()
        workflows = list(self.registry.workflows)
        reclaim: list[str] = []
        try:
            owners = await asyncio.to_thread(self.store.owners_running, workflows)
            reclaim = _dead_local_owners(owners, self.worker_id)
        except Exception:
            log.exception("could not look for runs to reclaim")
        await asyncio.to_thread(self.presence.seen, (), starting=True)
        await asyncio.to_thread(self._take_up_blocked)
        if self.scheduler is not None:
            self.scheduler.start()
        if self._housekeeping is not None:
            threading.Thread(
                target=self._housekeep, name="durable-housekeeping", daemon=True
            ).start()
        self._ready.set()
        tasks: set[asyncio.Task[None]] = set()
        backoff = 0.1
        try:
            while not self._stopping:
                free = self.concurrency - len(self._runners)
                leases: list[Lease] = []
                if free > 0 and workflows:
                    try:
                        asked_at = self.clock.now()
                        leases = await asyncio.to_thread(
                            self.store.lease,
                            self.worker_id,
                            self.lease_timeout,
                            workflows,
                            self.queues,
                            free,
                            reclaim,
                            self.limits,
                            version=self.services.version,
                        )
                        reclaim = []
                        backoff = 0.1
                    except Exception as exc:
                        # The database is away (a restart, a dropped connection): back off.
                        log.warning("leasing failed (%s); again in %.1fs", exc, backoff)
                        await asyncio.sleep(backoff)
                        backoff = min(backoff * 2, 5.0)
                        continue
                for lease in leases:
                    # Against the time the lease was asked for, not received: a pause on the
                    # way back (a commit, a GC pass) must not put our clock behind the log's,
                    # which would end durable sleeps early.
                    self._clock_offset = lease.db_now - asked_at
                    tasks.add(asyncio.ensure_future(self._drive(lease)))
                    tasks = {t for t in tasks if not t.done()}
                if leases and len(leases) == free:
                    await asyncio.sleep(0)
                    continue
                if self._stopping:
                    break
                await self._idle(await self._idle_for(workflows, len(leases) < free))
        finally:
            await self._drain(tasks)

    async def _idle_for(self, workflows: list[str], short: bool) -> float:
        """How long to wait before leasing again: until the next run is due, at most
        ``poll_interval``; a little while when due runs were held back by a queue limit."""
        if len(self._runners) >= self.concurrency:
            return self.poll_interval
        try:
            due = await asyncio.to_thread(
                self.store.next_due, workflows, self.queues, self.services.version
            )
        except Exception:
            return self.poll_interval
        if due is None:
            return self.poll_interval
        wait = due - (self.clock.now() + self._clock_offset)
        if wait > 0 and not self._runners and self.clock.skip_to(due - self._clock_offset):
            return 0.0  # a test's virtual clock jumped to the next due run: lease it now
        if wait <= 0 and short and self.limits:
            # Due runs we did not get: a queue limit holds them. A run ending (here, or
            # elsewhere through the store's wake-ups) wakes us; this is the safety net.
            return min(self.poll_interval, 0.25)
        return min(max(wait, 0.0), self.poll_interval)

    async def _idle(self, seconds: float) -> None:
        assert self._wake is not None
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), seconds)
        self._wake.clear()

    async def _drive(self, lease: Lease) -> None:
        runner = Runner(
            self.services,
            lease,
            self._workflow_pool,
            self._notify,
            self._clock_offset,
            cancel_grace=self.cancel_grace,
        )
        rid = lease.run.id
        self._runners[rid] = runner
        with self._held_lock:
            self._held[rid] = lease.epoch
        try:
            await runner.run()
        finally:
            self.committer.forget(rid, lease.epoch)
            if self._runners.get(rid) is runner:  # not a newer lease's runner of this run
                del self._runners[rid]
            with self._held_lock:
                if self._held.get(rid) == lease.epoch:
                    del self._held[rid]
            if self._wake is not None:
                self._wake.set()

    async def _drain(self, tasks: set[asyncio.Task[None]]) -> None:
        if self.scheduler is not None:
            await asyncio.to_thread(self.scheduler.stop)
        if self._listener_handle is not None:
            await asyncio.to_thread(self._listener_handle.stop)
        if self._killed:
            self._hb_stop.set()
            for runner in list(self._runners.values()):
                runner.abort(AbortReason.KILLED)
            live = {t for t in tasks if not t.done()}
            if live:
                await asyncio.wait(live, timeout=2.0)
            await asyncio.to_thread(self.committer.stop)
            await self._stop_cancels()
            await self._stop_pools()
            return
        live = {t for t in tasks if not t.done()}
        for runner in list(self._runners.values()):
            runner.drain()
        if live:
            _, pending = await asyncio.wait(live, timeout=self._drain_timeout)
            for runner in list(self._runners.values()):
                runner.signal_stop()  # the drain time is up: bodies see durable.cancelled()
                runner.abort(AbortReason.WORKER_STOPPING)
            if pending:
                await asyncio.wait(pending, timeout=2.0)
        await self._stop_cancels()  # cancels still reach the runs that drain until here
        # Write what the runs appended before handing their leases back: released under a
        # new epoch first, their last outcomes would be refused and those steps run again.
        await asyncio.to_thread(self.committer.stop)
        with self._held_lock:
            held = dict(self._held)
            self._held.clear()
        self._hb_stop.set()
        if held:
            try:
                await asyncio.to_thread(self.store.release, held)
            except Exception:
                log.exception(
                    "could not hand leases back (runs %s); they will expire",
                    ", ".join(held),
                    extra=batch_fields(list(held), worker_id=self.worker_id),
                )
        await asyncio.to_thread(self.presence.gone)
        await self._stop_pools()

    async def _stop_pools(self) -> None:
        """Stop the threads and the processes that ran the workflows and step bodies."""
        self._workflow_pool.shutdown(wait=False, cancel_futures=True)
        self._step_pool.shutdown(wait=False, cancel_futures=True)
        assert self.services.process_pool is not None
        await asyncio.to_thread(self.services.process_pool.shutdown)

    async def _stop_cancels(self) -> None:
        if self._cancels is not None:
            await asyncio.to_thread(self._cancels.stop)

    # -- heartbeats ----------------------------------------------------------------------

    def _heartbeats(self) -> None:
        interval = self.lease_timeout / 3
        while not self._hb_stop.wait(interval):
            with self._held_lock:
                held = dict(self._held)
            self.presence.seen(list(held))
            self._take_up_blocked()
            if not held:
                continue
            try:
                lost = self.store.heartbeat(self.worker_id, self.lease_timeout, held)
            except Exception as exc:
                log.warning(
                    "heartbeat failed: %s",
                    exc,
                    extra=batch_fields(list(held), worker_id=self.worker_id),
                )
                continue
            for rid in lost:
                with self._held_lock:
                    if self._held.get(rid) == held[rid]:
                        del self._held[rid]
                    else:
                        continue
                runner = self._runners.get(rid)
                extra = (
                    runner.obs.log_fields()
                    if runner is not None
                    else fields(rid, None, worker_id=self.worker_id)
                )
                log.warning("lease of run %s lost", rid, extra=extra)
                self.abort_run(rid, AbortReason.LEASE_LOST)

    def _take_up_blocked(self) -> None:
        """Make due the blocked runs of this worker's workflows that its code version has
        not failed to replay (a deploy of other code heals them); at start and with each
        heartbeat."""
        try:
            ids = self.store.take_up_blocked(
                list(self.registry.workflows), self.queues, self.services.version
            )
        except Exception as exc:
            log.warning("taking up blocked runs failed: %s", exc)
            return
        if ids:
            log.info(
                "%d blocked runs taken up by code version %s",
                len(ids),
                self.services.version,
                extra=batch_fields(ids, worker_id=self.worker_id),
            )
            self.wake()

    # -- housekeeping --------------------------------------------------------------------

    def _housekeep(self) -> None:
        """Call ``housekeeping`` (retention) every ``housekeeping_interval`` seconds, on its
        own thread: off the lease loop, the heartbeats and every run's path."""
        assert self._housekeeping is not None
        interval = self.housekeeping_interval
        # A random first delay spreads the work of workers started together.
        delay = interval * (0.5 + random.random() / 2)
        while not self._hb_stop.wait(delay):
            try:
                self._housekeeping()
            except Exception as exc:
                log.warning("housekeeping failed (%s); again in %.0fs", exc, interval)
            delay = interval

    # -- listeners -----------------------------------------------------------------------

    def _notify(self, event: WorkerEvent, row: RunRow, **details: Any) -> None:
        if self._listener is not None:
            try:
                self._listener(event, row, details)
            except Exception:
                log.exception(
                    "a worker event listener raised (%s of run %s)",
                    event.value,
                    row.id,
                    extra=fields(row.id, row.workflow, worker_id=self.worker_id),
                )
