"""The in-run functions: ``durable.stage``, ``progress``, ``sleep``... each a one-line
delegation to the run executing in this context.

Journaled calls (``sleep``, ``wait_signal``, ``now``, ``random``, ``uuid4``, ``start_child``,
``wait_first``) raise
:class:`NotInRunError` outside a run; inside a step's body they are plain calls (a body is not
replayed, so there is nothing to journal). Reporting calls (``stage``, ``progress``,
``message``, ``output``) do nothing outside a run, so that steps stay callable as plain
functions.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import random as _random
import time
import uuid as _uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from durable.engine.children import ChildHandle
from durable.engine.patches import check_change_id
from durable.engine.resources import check_resources, resource_in
from durable.engine.runtime import RunState, current, current_or_none, current_step
from durable.errors import NotInRunError, ResourceError, RunCancelledError
from durable.types import RunInfo

__all__ = [
    "cancelled",
    "check_cancelled",
    "deprecate_patch",
    "in_run",
    "info",
    "message",
    "now",
    "output",
    "patched",
    "progress",
    "random",
    "resource",
    "sleep",
    "stage",
    "start_child",
    "uuid4",
    "wait_first",
    "wait_signal",
]


def in_run() -> bool:
    """Whether this code runs inside a workflow run (its own code or a step's body)."""
    return current_or_none() is not None


def cancelled() -> bool:
    """Whether the code running here should stop: its run is being cancelled (a client
    called ``cancel``), or, in a step body, this attempt's ``timeout`` has passed, or the
    worker is stopping and its drain time is up. ``False`` outside a run.

    In a step body, return (what it recorded is kept; a value returned is the step's
    result) or raise (:func:`check_cancelled`: the step is left unfinished, and a resumed
    run runs it again). In workflow code it turns true once the worker has learnt of the
    cancel; the next step call (or other journaled call) then stops the code, and the run
    ends ``CANCELLED``: use it to leave a loop early. It is not journaled: a replay sees
    ``False``.
    """
    run = current_or_none()
    if run is None:
        return False
    step = current_step()
    return run.stopping.is_set() or (step is not None and step.timed_out.is_set())


def check_cancelled() -> None:
    """Raise :class:`~durable.RunCancelledError` if :func:`cancelled` is true."""
    if cancelled():
        run = current_or_none()
        raise RunCancelledError(run.run_id if run is not None else "")


def _journaled() -> bool:
    """Inside workflow code (not a step body), where calls are journaled."""
    return current_or_none() is not None and current_step() is None


@contextlib.contextmanager
def stage(name: str, resources: Mapping[str, Callable[[], Any]] | None = None) -> Iterator[None]:
    """Group the steps called in the block under a stage (outputs, progress, spans).

    ``resources`` maps names to factories, each a callable returning a (sync) context
    manager: a step body of the stage gets the entered value with :func:`resource`. It is
    opened on the worker by the first live body that asks, never during replay, and closed
    when the block ends (also when the run suspends, fails or is cancelled); a resumed run
    opens it again.

    Raises:
        TypeError: ``resources`` is not a mapping of non-empty names to callables.
    """
    factories = check_resources(str(name), resources)
    run = current_or_none()
    if run is None:
        yield
        return
    with run.stage_block(str(name), factories):
        yield


def resource(name: str) -> Any:
    """The value of stage resource ``name`` in a step body: opened by the first body of the
    stage that asks (see :func:`stage`), shared by the stage's step bodies until it ends.

    Raises:
        ResourceError: outside a step body (workflow code is replayed: it may not hold a
            resource), or no stage around the step declares ``name``.
    """
    step = current_step()
    if step is None:
        where = "in workflow code" if current_or_none() is not None else "outside a run"
        raise ResourceError(
            f"durable.resource({name!r}) was called {where}: a stage resource is "
            "available in the bodies of the steps of the stage that declares it"
        )
    return resource_in(step.resources, str(name), step.name, step.stage)


def progress(value: float) -> None:
    """Report progress from 0.0 to 1.0 of the current step, else stage, else run."""
    run = current_or_none()
    if run is not None:
        run.progress(value)


def message(text: str, **fields: Any) -> None:
    """Record a custom message event (with optional encodable fields) in the journal."""
    run = current_or_none()
    if run is not None:
        run.message(text, fields)


def output(key: str, value: Any) -> None:
    """Record a named output under the current stage: in workflow code
    ``handle.outputs()[stage][key]``, in a step body under that step call,
    ``handle.outputs()[stage][step][key]`` (``step#2`` for its second call in the stage).

    Raises:
        ValueError: in workflow code, ``key`` is the name of a step; in a step body, ``key``
            is ``"result"`` (the step's return value).
    """
    run = current_or_none()
    if run is not None:
        run.output(str(key), value)


def info() -> RunInfo:
    """The current run's ``RunInfo`` (with ``step_key`` and ``step_attempt`` in a step)."""
    return current().info()


def now() -> dt.datetime:
    """The current time (UTC), journaled: a replay returns the recorded value."""
    if not _journaled():
        if current_or_none() is None:
            raise NotInRunError("durable.now() can only be called inside a run")
        return dt.datetime.now(dt.UTC)
    run = current()  # the log's clock as the run sees it (a test's virtual one under env)
    return run.value("now", lambda: dt.datetime.fromtimestamp(run.now(), dt.UTC))  # type: ignore[no-any-return]


def random() -> float:
    """A random float in [0, 1), journaled: a replay returns the recorded value."""
    if not _journaled():
        if current_or_none() is None:
            raise NotInRunError("durable.random() can only be called inside a run")
        return _random.random()
    return current().value("random", _random.random)  # type: ignore[no-any-return]


def uuid4() -> _uuid.UUID:
    """A random UUID, journaled: a replay returns the recorded value."""
    if not _journaled():
        if current_or_none() is None:
            raise NotInRunError("durable.uuid4() can only be called inside a run")
        return _uuid.uuid4()
    return current().value("uuid4", _uuid.uuid4)  # type: ignore[no-any-return]


def patched(change_id: str) -> bool:
    """Whether the run takes the code of change ``change_id`` here: ``True`` for a run that
    reaches this point under code that has it (the marker is journaled), ``False`` when
    replaying a run recorded here by the code before it (see the docs on versioning)."""
    cid = check_change_id(change_id, "durable.patched()")
    return _in_workflow("patched").patches.patched(cid)


def deprecate_patch(change_id: str) -> None:
    """The code of change ``change_id`` is now unconditional: a journaled marker of
    ``patched(change_id)`` is consumed where a run has one; nothing is recorded."""
    cid = check_change_id(change_id, "durable.deprecate_patch()")
    _in_workflow("deprecate_patch").patches.deprecate(cid)


def _in_workflow(what: str) -> RunState:
    run = current_or_none()
    if run is None or current_step() is not None:
        raise NotInRunError(
            f"durable.{what}() can only be called in workflow code (not outside a run, "
            "nor in a step body)"
        )
    return run


def sleep(seconds: float) -> None:
    """A durable timer: the run sleeps ``seconds`` holding no worker, across restarts."""
    if not _journaled():
        if current_or_none() is None:
            raise NotInRunError("durable.sleep() can only be called inside a run")
        time.sleep(seconds)
        return
    current().sleep(seconds)


def wait_signal(name: str, timeout: float | None = None) -> Any:
    """Wait for a signal sent with ``client.signal(run_id, name, payload)``.

    Returns the payload of the oldest signal of that name not yet consumed (signals sent
    before the wait are kept for it), or ``None`` when ``timeout`` seconds pass first.
    """
    if not _journaled():
        raise NotInRunError("durable.wait_signal() can only be called in workflow code")
    return current().wait_signal(str(name), timeout)


def start_child(workflow: Callable[..., Any] | str, /, *args: Any, **kwargs: Any) -> ChildHandle:
    """Start a child run of ``workflow`` (a function decorated with ``@app.workflow``, or
    the name of a workflow of this App) with ``args``/``kwargs``, without waiting for it.

    Returns its :class:`~durable.ChildHandle` at once, in sync and async workflows alike
    (no ``await``): ``child.result()`` waits for it later, ``durable.wait_first`` for the
    first of several. The start is journaled at its position and the child's id is
    ``"{run id}:{position}"``, so a replay, a resume or a takeover never starts it twice.
    The child runs on its workflow's queue, whether or not its parent waits; cancelling the
    parent cancels its unfinished children.

    Raises:
        NotInRunError: outside workflow code (outside a run, or in a step body).
        UnknownWorkflowError: a name that no workflow of the App has.
        TypeError: ``workflow`` is neither, or the arguments do not fit its parameters.
        SerializationError: an argument cannot be encoded (nothing is started).
    """
    run = _in_workflow("start_child")
    wf = run.children.resolve(workflow, "durable.start_child()")
    return run.children.start(wf, args, kwargs)


def wait_first(children: Iterable[ChildHandle]) -> Any:
    """Wait until the first of ``children`` (handles from :func:`start_child`) ends, and
    return its handle (in an async workflow, ``await durable.wait_first([...])``).

    "Ends" is any end: completed, failed or cancelled; ``handle.result()`` then returns its
    result or raises its error. The one that ended first is journaled at this call's
    position, so a replay returns the same handle whatever the children did since. The run
    suspends, holding no worker, until one has ended.

    Raises:
        NotInRunError: outside workflow code, or a handle of another run.
        TypeError: ``children`` is not a list of child handles.
        ValueError: ``children`` is empty.
        NonDeterminismError: on replay, the child recorded here is not among ``children``.
    """
    return _in_workflow("wait_first").first.wait(children)
