"""A worker's process pool: the bodies of ``executor="process"`` steps, one at a time in
each of at most ``size`` processes, started when first needed.

Each process runs one body at a time (:mod:`durable.engine.pool_child`) and is a slot of its
own: a process that dies (``os._exit``, a signal, out of memory) fails the attempt it was
running with :class:`~durable.errors.PoolProcessDiedError` and is replaced when a body next
needs one; the bodies running in the other processes go on. Processes are started with
``forkserver`` (``spawn`` where it is missing): never ``fork``, which would copy the worker's
threads' locks in whatever state they are.

A body is told to stop (``durable.cancelled()``) when its run is cancelled, its timeout
passes or the worker's drain time is up; one that is still running ``grace`` seconds later
has its process terminated (and replaced).
"""

from __future__ import annotations

import contextlib
import multiprocessing
import pickle
import threading
import time
from multiprocessing.connection import wait
from typing import TYPE_CHECKING, Any, cast

from durable.engine.pool_child import Task, serve
from durable.errors import PoolProcessDiedError, RunCancelledError, StepFailedError

if TYPE_CHECKING:
    from durable.engine.core import RunCore
    from durable.engine.registry import StepDef
    from durable.engine.runtime import RunState
    from durable.engine.steps import StepScope

__all__ = ["ProcessPool", "start_method"]

POLL = 0.05
"""Seconds between two looks at whether a waiting body should be told to stop."""


def start_method() -> str:
    """``forkserver`` where the platform has it, else ``spawn``."""
    methods = multiprocessing.get_all_start_methods()
    return "forkserver" if "forkserver" in methods else "spawn"


class _Slot:
    """One process of the pool, its end of the pipe and its stop event."""

    def __init__(self, ctx: Any) -> None:
        self.conn, child = ctx.Pipe(duplex=True)
        self.stop = ctx.Event()
        self.process = ctx.Process(
            target=serve, args=(child, self.stop), name="durable-pool", daemon=True
        )
        self.process.start()
        child.close()

    def close(self) -> None:
        """Stop the process (at once: it was running a body that must not go on, or the
        pool is shut down)."""
        with contextlib.suppress(OSError):
            self.conn.close()
        if self.process.is_alive():
            self.process.terminate()
            self.process.join(1.0)
        if self.process.is_alive():
            self.process.kill()
        self.process.join(1.0)

    def died(self, step: str) -> PoolProcessDiedError:
        """The error of the attempt whose process died under it."""
        self.process.join(1.0)
        code = self.process.exitcode
        how = f"killed by signal {-code}" if code is not None and code < 0 else f"exit code {code}"
        return PoolProcessDiedError(
            f"the pool process (pid {self.process.pid}) running step {step!r} died ({how})"
        )


class ProcessPool:
    """At most ``size`` processes, each running one step body at a time."""

    def __init__(self, size: int, grace: float) -> None:
        if isinstance(size, bool) or not isinstance(size, int):
            raise TypeError(
                f"processes must be an int (a number of processes), not {type(size).__name__}"
            )
        if size < 1:
            raise ValueError("processes must be at least 1")
        self.size = size
        self.grace = grace
        """Seconds a body told to stop has before its process is terminated."""
        self._ctx = multiprocessing.get_context(start_method())
        self._cond = threading.Condition()
        self._idle: list[_Slot] = []
        self._all: set[_Slot] = set()
        self._starting = 0
        self._closed = False

    @property
    def started(self) -> int:
        """How many processes are running now."""
        with self._cond:
            return len(self._all)

    def pids(self) -> list[int]:
        """The process ids of the pool's processes."""
        with self._cond:
            return [s.process.pid for s in self._all if s.process.pid is not None]

    def shutdown(self, wait: float = 1.0) -> None:
        """Run no more bodies; stop every process. The bodies still running are told to
        stop (``durable.cancelled()``) and get ``wait`` seconds to return before their
        processes are terminated."""
        with self._cond:
            self._closed = True
            idle, self._idle = self._idle, []
            for slot in idle:
                self._all.discard(slot)
            for slot in self._all:
                slot.stop.set()
            self._cond.notify_all()
        for slot in idle:
            slot.close()
        deadline = time.monotonic() + wait
        with self._cond:
            while self._all and time.monotonic() < deadline:
                self._cond.wait(POLL)
            busy = list(self._all)
            self._all.clear()
        for slot in busy:
            slot.close()

    # -- a body ------------------------------------------------------------------------

    def call(
        self, step: StepDef, core: RunCore, scope: StepScope, *args: Any, **kwargs: Any
    ) -> Any:
        """Run ``step``'s body in a process of the pool and wait for it, in a thread of the
        worker (in the run's context): what the body reports is journaled from here."""
        run = cast("RunState", core)  # the run in execution: its in-run functions
        raw = run.s.codec.encode_args(args, kwargs, f"arguments of step {step.name!r}")
        fn = step.fn
        task = Task(
            module=fn.__module__,
            qualname=fn.__qualname__,
            args=raw,
            info=run.info(),
            step=step.name,
            position=scope.position,
            attempt=scope.attempt,
            stage=scope.stage,
            max_payload=run.s.codec.max_payload_bytes,
        )

        def told() -> bool:
            return run.stopping.is_set() or scope.timed_out.is_set()

        slot = self._acquire(told)
        if slot is None:
            raise RunCancelledError(run.run_id)  # told to stop while it waited for a process
        reusable = False
        try:
            slot.stop.clear()
            slot.conn.send(task)
            reply, reusable = self._wait(slot, step, run, told)
            return self._outcome(reply, run)
        finally:
            self._release(slot, reusable)

    def _wait(
        self, slot: _Slot, step: StepDef, run: RunState, told: Any
    ) -> tuple[tuple[Any, ...], bool]:
        """The body's last message (its result or error), journaling what it reports on the
        way; whether its process can run another body."""
        stop_at: float | None = None
        while True:
            ready = wait([slot.conn, slot.process.sentinel], POLL)
            if slot.conn in ready:
                try:
                    msg = slot.conn.recv()
                except (EOFError, OSError):
                    raise slot.died(step.name) from None
                if msg[0] in ("result", "error"):
                    return msg, True
                _report(run, msg)
                continue
            if ready:  # the process ended, and nothing is left to read
                raise slot.died(step.name)
            if stop_at is None and told():
                slot.stop.set()
                stop_at = time.monotonic() + self.grace
            elif stop_at is not None and time.monotonic() >= stop_at:
                raise RunCancelledError(run.run_id)  # ignored its stop: the process goes

    @staticmethod
    def _outcome(reply: tuple[Any, ...], run: RunState) -> Any:
        if reply[0] == "result":
            return run.s.codec.decode(reply[1])
        _, blob, cause, type_, _module, message, _tb = reply
        exc = _unpickled(blob)
        if exc is None:
            raise StepFailedError(type_, message)
        if cause is not None:
            exc.__cause__ = _unpickled(cause)
        raise exc

    def _acquire(self, told: Any) -> _Slot | None:
        """A free process (started if the pool has room); ``None`` once ``told()``."""
        with self._cond:
            while True:
                if self._closed:
                    raise PoolProcessDiedError("the worker's process pool is shut down")
                if self._idle:
                    return self._idle.pop()
                if len(self._all) + self._starting < self.size:
                    self._starting += 1
                    break
                if told():
                    return None
                self._cond.wait(POLL)
        try:
            slot = _Slot(self._ctx)
        finally:
            with self._cond:
                self._starting -= 1
        with self._cond:
            if self._closed:
                closed = True
            else:
                closed = False
                self._all.add(slot)
        if closed:
            slot.close()
            raise PoolProcessDiedError("the worker's process pool is shut down")
        return slot

    def _release(self, slot: _Slot, reusable: bool) -> None:
        with self._cond:
            if reusable and not self._closed and slot in self._all:
                self._idle.append(slot)
                self._cond.notify()
                return
            self._all.discard(slot)
            self._cond.notify()
        slot.close()


def _report(run: RunState, msg: tuple[Any, ...]) -> None:
    """Journal what a body reported (``progress``, ``message``, ``output``) as the run's."""
    kind = msg[0]
    if kind == "progress":
        run.progress(msg[1])
    elif kind == "message":
        fields = run.s.codec.decode(msg[2]) if msg[2] is not None else {}
        run.message(msg[1], fields)
    elif kind == "output":
        run.output(msg[1], run.s.codec.decode(msg[2]))


def _unpickled(blob: bytes | None) -> BaseException | None:
    if blob is None:
        return None
    try:
        exc = pickle.loads(blob)
    except Exception:
        return None
    return exc if isinstance(exc, BaseException) else None
