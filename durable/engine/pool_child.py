"""The inside of one process of a worker's process pool: it runs one step body at a time,
sent through its pipe, and sends back what the body reports and how it ended.

In the body, ``durable.progress``, ``message`` and ``output`` go back through the pipe (the
worker journals them as it does a thread step's); ``durable.info()`` is the step's info, sent
with the task; ``durable.cancelled()`` reads the slot's stop event, which the worker sets on a
cancel of the run, past the step's timeout, or when its drain time is up.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import pickle
import signal
import sys
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any, cast

from durable.codec import Codec, Signature
from durable.engine.executors import locate
from durable.engine.resources import StageResources
from durable.engine.runtime import RunState, _current
from durable.engine.steps import StepScope, _step
from durable.errors import PermanentError, ResourceError
from durable.types import RunInfo

__all__ = ["Task", "serve"]


@dataclass(frozen=True, slots=True)
class Task:
    """One step body to run: what finds it, its encoded arguments and its scope."""

    module: str
    qualname: str
    args: bytes
    info: RunInfo
    step: str
    position: int
    attempt: int
    stage: str | None
    max_payload: int


class _Stop:
    """The slot's stop event, read as ``durable.cancelled()`` reads a run's."""

    __slots__ = ("_event",)

    def __init__(self, event: Any) -> None:
        self._event = event

    def is_set(self) -> bool:
        return bool(self._event.is_set())


class _PoolRun:
    """What the in-run functions reach in a pool process: the run, through the pipe."""

    def __init__(self, conn: Connection, task: Task, stop: _Stop, codec: Codec) -> None:
        self._conn = conn
        self._task = task
        self._codec = codec
        self.run_id = task.info.id
        self.stopping = stop
        self.cancelling = False
        self.abandoned = False
        self.replay_only = False

    def progress(self, value: float) -> None:
        v = float(value)
        if not 0.0 <= v <= 1.0:
            raise ValueError("progress is a fraction from 0.0 to 1.0")
        self._conn.send(("progress", v))

    def message(self, text: str, fields: dict[str, Any]) -> None:
        raw = self._codec.encode(fields, "message fields") if fields else None
        self._conn.send(("message", str(text), raw))

    def output(self, key: str, value: Any) -> None:
        raw = self._codec.encode(value, f"output {key!r}")
        self._conn.send(("output", str(key), raw))

    def info(self) -> RunInfo:
        return self._task.info

    @contextlib.contextmanager
    def stage_block(self, name: str) -> Iterator[None]:
        yield  # a step body's stages are not journaled in a pool process

    def __getattr__(self, name: str) -> Any:
        raise RuntimeError(
            f"this in-run function is not available in a step body that runs in the process "
            f"pool (step {self._task.step!r}; it needs {name!r} of the worker's run)"
        )


def refuse_while_importing_main() -> None:
    """Raise when this process is a pool process still importing the worker's script.

    A pool process imports the script being run (as ``__mp_main__``) before it serves, so
    that it finds the steps defined there; the script's top-level code runs again then.
    A worker started by that code would start a worker, and a pool, in every pool process.
    """
    if getattr(multiprocessing.current_process(), "_inheriting", False):
        main = getattr(sys.modules.get("__mp_main__"), "__file__", None) or "the script"
        raise RuntimeError(
            f"a worker was started while a new process of a worker's process pool imports "
            f"{main}: its top-level code runs again in each pool process. Start the worker "
            '(and the runs) under `if __name__ == "__main__":`'
        )


def serve(conn: Connection, stop_event: Any) -> None:
    """The process's loop: a task, its body run, its outcome sent; until the pipe closes."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the worker drains; it stops us itself
    stop = _Stop(stop_event)
    found: dict[tuple[str, str], Callable[..., Any]] = {}
    while True:
        try:
            task = cast(Task, conn.recv())
        except (EOFError, OSError):
            return
        conn.send(_run(conn, task, stop, found))


def _run(
    conn: Connection,
    task: Task,
    stop: _Stop,
    found: dict[tuple[str, str], Callable[..., Any]],
) -> tuple[Any, ...]:
    codec = Codec(task.max_payload)
    try:
        fn = found.get((task.module, task.qualname))
        if fn is None:
            fn = _locate(task)
            found[(task.module, task.qualname)] = fn
        args, kwargs = Signature(fn).decode_args(task.args)
    except BaseException as exc:
        return _error(exc)
    scope = StepScope(task.step, task.position, task.attempt, task.stage)
    scope.resources = _OutOfReach(task.stage or "", {}, None)
    scope.timed_out = stop  # type: ignore[assignment]
    run_token = _current.set(cast(RunState, _PoolRun(conn, task, stop, codec)))
    step_token = _step.set(scope)
    try:
        result = fn(*args, **kwargs)
        return ("result", codec.encode(result, f"result of step {task.step!r}"))
    except KeyboardInterrupt:
        raise
    except BaseException as exc:  # SystemExit too: it fails the attempt, not the process
        return _error(exc)
    finally:
        _step.reset(step_token)
        _current.reset(run_token)


class _OutOfReach(StageResources):
    """What ``durable.resource`` sees in a pool process: the worker's stage resources live
    in the worker, out of reach of a body running here."""

    __slots__ = ()

    def get(self, name: str, step: str, step_stage: str | None) -> Any:
        raise ResourceError(
            f"durable.resource({name!r}): step {step!r} runs in the process pool "
            "(executor='process'), and stage resources live in the worker process: open what "
            "the body needs inside it, or make the step a thread step"
        )


def _locate(task: Task) -> Callable[..., Any]:
    try:
        return locate(task.module, task.qualname)
    except Exception as exc:
        raise PermanentError(
            f"step {task.step!r} cannot run in the process pool: {task.module}.{task.qualname} "
            f"cannot be imported there ({type(exc).__name__}: {exc})"
        ) from None


def _error(exc: BaseException) -> tuple[Any, ...]:
    """How a body's exception travels: pickled when it can be (with its cause and the
    traceback here as a note), and always its type, module and message."""
    tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    with contextlib.suppress(Exception):
        exc.add_note(f"(raised in pool process {os.getpid()})\n{tb.rstrip()}")
    blob = _pickled(exc)
    cause = _pickled(exc.__cause__) if exc.__cause__ is not None else None
    kind = type(exc)
    return ("error", blob, cause, kind.__qualname__, kind.__module__, str(exc), tb[-8000:])


def _pickled(exc: BaseException) -> bytes | None:
    try:
        blob = pickle.dumps(exc)
        pickle.loads(blob)  # one that pickles but does not unpickle is sent by name
    except Exception:
        return None
    return blob
