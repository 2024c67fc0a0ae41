"""Consumer classes (``@app.consumer``) and the worker hooks (``app.on_worker_start`` /
``on_worker_stop``): user code tied to the life of a worker process rather than of a run.

A consumer class is a workflow named and queued after its queue, whose body is the
``process`` method of one instance per worker process. The instance is made when this
process first needs it (a run, or a worker event of one of its runs); ``setup()`` runs
before its first ``process`` in this process, ``teardown()`` once the last worker of the
App in this process has stopped. The order at a worker's start and stop:

1. ``on_worker_start`` hooks, in the order registered (the worker leases nothing yet);
2. for each consumer, ``setup()`` before its first run in this process;
3. at the stop, the worker drains: its runs finish or are handed back;
4. ``teardown()`` of every consumer set up, in the reverse order of their setups;
5. ``on_worker_stop`` hooks, in the order registered.
"""

from __future__ import annotations

import functools
import inspect
import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from durable.engine.policy import Retry
from durable.engine.registry import WorkflowDef
from durable.types import WorkerEvent

if TYPE_CHECKING:
    from durable.app import App, EmbeddedWorker, WorkerEventInfo

__all__ = ["Consumer", "WorkerHooks", "register_consumer"]

log = logging.getLogger("durable.consumers")

C = TypeVar("C", bound=type)

WorkerHook = Callable[["EmbeddedWorker"], Any]


class Consumer:
    """A base for ``@app.consumer`` classes, with hooks that do nothing.

    Subclass it and define ``process(self, payload)``, the workflow body (steps, stages
    and ``durable.sleep`` work in it as in any workflow; it runs again from its first line
    at replay, on the same instance). A class need not subclass ``Consumer``: any class
    with a ``process`` method will do, and the hooks it lacks do nothing.

    One instance lives per worker process, made with no arguments, shared by every run
    this process executes: keep per-run state in local variables, not on ``self``.
    """

    def setup(self) -> None:
        """Called once per worker process, before its first run of this consumer (open a
        browser, a connection). If it raises, that run's attempt fails with the error (and
        is retried as its policy says); the next run calls ``setup()`` again."""

    def teardown(self) -> None:
        """Called once, when the worker that set this consumer up has stopped (after its
        runs drained); an exception it raises is logged."""

    def is_permanent(self, error: BaseException) -> bool:
        """True: ``error`` is not worth another try. Asked about each failure of this
        consumer's runs and of the steps they call, before their retry policies; a true
        answer ends the run (or fails the step) at once. An exception it raises is logged
        and counts as false."""
        return False

    def on_event(self, event: WorkerEventInfo) -> None:
        """Called with each worker event (``WorkerEvent``) of this consumer's runs only, on
        a worker thread; an exception it raises is logged and ignored."""


class _Slot:
    """The one instance of a consumer class in this process, and whether it is set up."""

    def __init__(self, cls: type, hooks: WorkerHooks) -> None:
        self.cls = cls
        self.hooks = hooks
        self.lock = threading.Lock()
        """Guards making (and forgetting) the instance: held only for that."""
        self.setup_lock = threading.Lock()
        """Held while ``setup()`` runs, so that it runs once; ``on_event`` never waits on it."""
        self.obj: Any = None
        self.ready = False

    def instance(self) -> Any:
        """The instance, made on first use."""
        with self.lock:
            if self.obj is None:
                self.obj = self.cls()
            return self.obj

    def set_up(self) -> Any:
        """The instance, its ``setup()`` called first if this process has not yet."""
        with self.setup_lock:
            obj = self.instance()
            if not self.ready:
                setup = getattr(obj, "setup", None)
                if setup is not None:
                    setup()
                self.ready = True
                self.hooks.set_up(self)
        return obj

    def tear_down(self) -> None:
        """Call ``teardown()`` and forget the instance (a later worker sets up afresh)."""
        with self.setup_lock, self.lock:
            obj, self.obj, self.ready = self.obj, None, False
        teardown = getattr(obj, "teardown", None)
        if teardown is None:
            return
        try:
            teardown()
        except Exception:
            log.exception("teardown of consumer %s raised", self.cls.__qualname__)


class WorkerHooks:
    """An App's ``on_worker_start`` / ``on_worker_stop`` hooks and its consumers set up in
    this process (torn down when its last running worker stops)."""

    def __init__(self) -> None:
        self.on_start: list[WorkerHook] = []
        self.on_stop: list[WorkerHook] = []
        self._lock = threading.Lock()
        self._running = 0
        self._set_up: list[_Slot] = []

    def set_up(self, slot: _Slot) -> None:
        """Remember ``slot`` to tear it down when the workers stop."""
        with self._lock:
            self._set_up.append(slot)

    def started(self, worker: EmbeddedWorker) -> None:
        """A worker is about to lease: call the start hooks (an exception goes to the
        caller, and the worker does not start)."""
        for fn in self.on_start:
            fn(worker)
        with self._lock:
            self._running += 1

    def stopped(self, worker: EmbeddedWorker) -> None:
        """A worker has drained: tear down the consumers (if it was the last one running
        in this process), then call the stop hooks; exceptions are logged."""
        with self._lock:
            self._running = max(self._running - 1, 0)
            slots = self._set_up[::-1] if self._running == 0 else []
            if self._running == 0:
                self._set_up.clear()
        for slot in slots:
            slot.tear_down()
        for fn in self.on_stop:
            try:
                fn(worker)
            except Exception:
                log.exception("on_worker_stop hook %r raised", fn)


def _hook(fn: Any, what: str) -> WorkerHook:
    if not callable(fn):
        raise TypeError(f"{what} takes a function of the worker, not {type(fn).__name__}")
    hook: WorkerHook = fn
    return hook


def add_hook(hooks: list[WorkerHook], fn: Any, what: str) -> WorkerHook:
    """Append ``fn`` to ``hooks`` (checked callable) and return it (usable as a decorator)."""
    hooks.append(_hook(fn, what))
    return fn  # type: ignore[no-any-return]


def _process_of(cls: Any) -> Callable[..., Any]:
    """The class's ``process``, checked: a plain (sync or async) method."""
    if not isinstance(cls, type):
        raise TypeError(
            f"@app.consumer decorates a class with a process(self, payload) method, "
            f"not {type(cls).__name__} {getattr(cls, '__qualname__', cls)!r}"
        )
    try:
        fn = inspect.getattr_static(cls, "process")
    except AttributeError:
        raise TypeError(
            f"consumer class {cls.__qualname__} has no process method: define "
            "def process(self, payload) -> result, the workflow body"
        ) from None
    if not inspect.isfunction(fn):
        raise TypeError(
            f"{cls.__qualname__}.process must be a method (def process(self, payload)), "
            f"not {type(fn).__name__}"
        )
    if not inspect.signature(fn).parameters:
        raise TypeError(f"{cls.__qualname__}.process must take self (and the payload)")
    _check_made_without_arguments(cls)
    for hook in ("setup", "teardown", "is_permanent", "on_event"):
        value = getattr(cls, hook, None)
        if value is not None and not callable(value):
            raise TypeError(
                f"{cls.__qualname__}.{hook} must be a method, not {type(value).__name__}"
            )
    return fn


def _check_made_without_arguments(cls: type) -> None:
    """The one instance per worker process is ``cls()``: refuse a class that needs more."""
    try:
        sig = inspect.signature(cls)
    except (TypeError, ValueError):  # a signature Python cannot tell: let the call decide
        return
    try:
        sig.bind()
    except TypeError:
        needed = [
            p.name
            for p in sig.parameters.values()
            if p.default is p.empty and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
        ]
        raise TypeError(
            f"consumer class {cls.__qualname__} is made with no arguments (one instance per "
            f"worker process), but it needs {', '.join(needed)}: give them defaults, or "
            "open what it needs in setup()"
        ) from None


def _body(cls: type, process: Callable[..., Any], slot: _Slot) -> Callable[..., Any]:
    """The workflow function: ``process`` of the set-up instance, with the signature and
    annotations of ``process`` without ``self``."""
    if inspect.iscoroutinefunction(process):

        async def body_async(*args: Any, **kwargs: Any) -> Any:
            return await slot.set_up().process(*args, **kwargs)

        body: Callable[..., Any] = body_async
    else:

        def body_sync(*args: Any, **kwargs: Any) -> Any:
            return slot.set_up().process(*args, **kwargs)

        body = body_sync
    functools.update_wrapper(body, process)
    sig = inspect.signature(process)
    body.__signature__ = sig.replace(  # type: ignore[attr-defined]
        parameters=list(sig.parameters.values())[1:]
    )
    body.__qualname__ = f"{cls.__qualname__}.process"
    return body


def register_consumer(
    app: App,
    cls: C,
    queue: str,
    *,
    retry: Retry | None,
    timeout: float | None,
    on_success: Callable[[str, Any], Any] | None,
    on_error: Callable[[str, BaseException], Any] | None,
) -> C:
    """Register ``cls`` on ``app`` as the workflow ``queue`` on queue ``queue``; its
    events go to ``on_event``. Returns the class, which ``client.start`` takes."""
    process = _process_of(cls)
    slot = _Slot(cls, app._worker_hooks)
    permanent = None
    if callable(getattr(cls, "is_permanent", None)):

        def permanent(error: BaseException) -> bool:
            return bool(slot.instance().is_permanent(error))

    wf = WorkflowDef(
        name=queue,
        fn=_body(cls, process, slot),
        queue=queue,
        timeout=timeout,
        retry=retry,
        on_success=on_success,
        on_error=on_error,
        is_permanent=permanent,
    )
    app.registry.add_workflow(wf)
    cls.__durable_workflow__ = wf  # type: ignore[attr-defined]
    if callable(getattr(cls, "on_event", None)) and cls.on_event is not Consumer.on_event:  # type: ignore[attr-defined]

        def route(event: WorkerEventInfo) -> None:
            slot.instance().on_event(event)

        for event in WorkerEvent:
            app.on(event, route, workflow=queue)
    return cls


def check_queue(queue: Any) -> str:
    """The consumer's queue name, checked."""
    if isinstance(queue, type):
        raise TypeError(
            f"@app.consumer needs the queue's name: @app.consumer({queue.__name__.lower()!r}) "
            f"above class {queue.__qualname__}"
        )
    if not isinstance(queue, str):
        raise TypeError(
            f"@app.consumer(queue) takes the queue's name first, not {type(queue).__name__}"
        )
    if not queue:
        raise ValueError("a consumer's queue name cannot be empty")
    return queue
