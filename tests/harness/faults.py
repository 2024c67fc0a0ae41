"""Faults injected into a real store: one wrapper, hooks before, around or after a method.

:class:`FaultyStore` delegates every public method of the store it wraps (``create_run``,
``append``, ``lease``, ``heartbeat``, ``release``, ``cancel``, ``resume``, ``read_journal``,
...) and records each call. A test registers hooks by method name (``"*"``: every method):

- ``before``: ``hook(call)`` runs before the real method; raising stops the call there
  (nothing written). Ready-made: :class:`Fail`, :class:`Delay`, :class:`Gate`.
- ``around``: ``hook(call, method)`` runs instead of the real method, which it may call
  (``method(*call.args, **call.kwargs)``) or not, once or several times.
- ``after``: ``hook(call, result)`` runs after the real method and returns what the caller
  gets (usually ``result``); raising loses the reply of a call that took effect.
  Ready-made: :class:`LoseReply`.

For example, the first append carrying a step's outcome commits and then "loses the
connection"::

    lost = LoseReply(lambda: StoreError("connection lost", transient=True), when=...)
    flaky = FaultyStore(open_store(url), after={"append": lost})
    with use_store(app, flaky):
        ...
    assert lost.fired

Only the store's public methods are intercepted, never its private parts.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeAlias, cast

if TYPE_CHECKING:
    from durable import App
    from durable.log import Store

ANY = "*"
"""The method name that a hook of every method is registered under."""


@dataclass
class Call:
    """One call of a store method through a :class:`FaultyStore`."""

    method: str
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    number: int
    """1 for the first call of this method through the wrapper, 2 for the next, ..."""
    thread: str = field(default_factory=lambda: threading.current_thread().name)
    """The name of the calling thread."""

    def arg(self, index: int, name: str) -> Any:
        """The argument at ``index``, or passed by keyword ``name``."""
        return self.args[index] if len(self.args) > index else self.kwargs[name]


Before: TypeAlias = Callable[[Call], None]
Around: TypeAlias = Callable[[Call, Callable[..., Any]], Any]
After: TypeAlias = Callable[[Call, Any], Any]


class FaultyStore:
    """A store that delegates to ``inner``, running the hooks registered for each method.

    ``before``/``around``/``after`` map a method name (or :data:`ANY`, except for ``around``)
    to a hook or a list of hooks, run in order. ``record``: keep every :class:`Call` in
    :attr:`calls` (turn off for long runs that only need the hooks).
    """

    def __init__(
        self,
        inner: Store,
        *,
        before: Mapping[str, Before | Sequence[Before]] | None = None,
        around: Mapping[str, Around] | None = None,
        after: Mapping[str, After | Sequence[After]] | None = None,
        record: bool = True,
    ) -> None:
        self.inner = inner
        """The real store."""
        self.calls: list[Call] = []
        """Every call made through the wrapper, in order (if ``record``)."""
        self._record = record
        self._lock = threading.Lock()
        self._counts: dict[str, int] = {}
        self._before: dict[str, list[Before]] = {}
        self._around: dict[str, Around] = {}
        self._after: dict[str, list[After]] = {}
        for name, befores in (before or {}).items():
            self.on(name, before=befores)
        for name, hook in (around or {}).items():
            self.on(name, around=hook)
        for name, afters in (after or {}).items():
            self.on(name, after=afters)

    def on(
        self,
        method: str,
        *,
        before: Before | Sequence[Before] | None = None,
        around: Around | None = None,
        after: After | Sequence[After] | None = None,
    ) -> FaultyStore:
        """Add hooks to ``method`` (after those it has); returns the wrapper."""
        if method != ANY and not callable(getattr(self.inner, method, None)):
            raise ValueError(f"the store has no method {method!r} to inject a fault into")
        if method.startswith("_"):
            raise ValueError(f"{method!r} is private: only public store methods have hooks")
        if around is not None:
            if method == ANY:
                raise ValueError("an 'around' hook replaces one named method, not every one")
            if method in self._around:
                raise ValueError(f"{method!r} has an 'around' hook already")
            self._around[method] = around
        self._before.setdefault(method, []).extend(_listed(before))
        self._after.setdefault(method, []).extend(_listed(after))
        return self

    def calls_to(self, method: str) -> list[Call]:
        """The recorded calls of ``method``, in order."""
        with self._lock:
            return [c for c in self.calls if c.method == method]

    def as_store(self) -> Store:
        """This wrapper, typed as the store it stands in for."""
        return cast("Store", self)

    def __repr__(self) -> str:
        return f"FaultyStore({self.inner!r})"

    def __getattr__(self, name: str) -> Any:
        if name == "inner":  # not set yet (a copy being built): no store to delegate to
            raise AttributeError(name)
        attr = getattr(self.inner, name)
        if name.startswith("_") or not callable(attr):
            return attr

        def call(*args: Any, **kwargs: Any) -> Any:
            return self._call(name, attr, args, kwargs)

        call.__name__ = name
        call.__doc__ = getattr(attr, "__doc__", None)
        return call

    def _call(
        self, name: str, method: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        with self._lock:
            number = self._counts[name] = self._counts.get(name, 0) + 1
            record = Call(name, args, kwargs, number)
            if self._record:
                self.calls.append(record)
        for hook in [*self._before.get(ANY, ()), *self._before.get(name, ())]:
            hook(record)
        around = self._around.get(name)
        result = around(record, method) if around is not None else method(*args, **kwargs)
        for after in [*self._after.get(name, ()), *self._after.get(ANY, ())]:
            result = after(record, result)
        return result


def _listed(hooks: Any) -> list[Any]:
    if hooks is None:
        return []
    return list(hooks) if isinstance(hooks, Sequence) else [hooks]


def _error(error: BaseException | Callable[[], BaseException]) -> BaseException:
    return error if isinstance(error, BaseException) else error()


class Fail:
    """A ``before`` hook: the call raises ``error`` (an exception, or a function making one)
    instead of reaching the store, for the first ``times`` calls that ``when`` accepts (all,
    without ``when``; every one if ``times`` is None). The calls it failed: :attr:`fired`."""

    def __init__(
        self,
        error: BaseException | Callable[[], BaseException],
        *,
        times: int | None = 1,
        when: Callable[[Call], bool] | None = None,
    ) -> None:
        self._error = error
        self._times = times
        self._when = when
        self._lock = threading.Lock()
        self.fired: list[Call] = []
        """The calls this hook failed, in order."""

    def __call__(self, call: Call) -> None:
        with self._lock:
            if self._times is not None and len(self.fired) >= self._times:
                return
            if self._when is not None and not self._when(call):
                return
            self.fired.append(call)
        raise _error(self._error)


class LoseReply:
    """An ``after`` hook: the call took effect, then raises ``error`` (as if the connection
    broke between the commit and its acknowledgement), for the first ``times`` calls that
    ``when(call, result)`` accepts. The calls whose reply it lost: :attr:`fired`."""

    def __init__(
        self,
        error: BaseException | Callable[[], BaseException],
        *,
        times: int | None = 1,
        when: Callable[[Call, Any], bool] | None = None,
    ) -> None:
        self._error = error
        self._times = times
        self._when = when
        self._lock = threading.Lock()
        self.fired: list[Call] = []
        """The calls whose reply this hook lost, in order."""

    def __call__(self, call: Call, result: Any) -> Any:
        with self._lock:
            if self._times is not None and len(self.fired) >= self._times:
                return result
            if self._when is not None and not self._when(call, result):
                return result
            self.fired.append(call)
        raise _error(self._error)


class Delay:
    """A ``before`` hook: every call that ``when`` accepts (all, without it) waits
    ``seconds`` before it reaches the store. The calls it delayed: :attr:`fired`."""

    def __init__(self, seconds: float, *, when: Callable[[Call], bool] | None = None) -> None:
        self._seconds = seconds
        self._when = when
        self.fired: list[Call] = []
        """The calls this hook delayed, in order."""

    def __call__(self, call: Call) -> None:
        if self._when is None or self._when(call):
            self.fired.append(call)
            time.sleep(self._seconds)


class Gate:
    """A ``before`` hook that holds calls while it is closed (as a batch "in flight").

    Every call that reaches it sets :attr:`entered`; while the gate is closed the call waits
    until :meth:`open` (at most ``timeout`` seconds, then goes on). ``closed``: whether it
    starts closed.
    """

    def __init__(self, *, closed: bool = True, timeout: float = 10.0) -> None:
        self.entered = threading.Event()
        """Set once a call has reached the gate."""
        self._open = threading.Event()
        self._timeout = timeout
        if not closed:
            self._open.set()

    def open(self) -> None:
        """Let the held calls, and every later one, through."""
        self._open.set()

    def close(self) -> None:
        """Hold the calls that come from now on."""
        self._open.clear()

    def __call__(self, call: Call) -> None:
        self.entered.set()
        self._open.wait(self._timeout)


@contextlib.contextmanager
def use_store(app: App, store: Store | FaultyStore) -> Iterator[None]:
    """Make every part of ``app`` (its client and workers started inside) use ``store``;
    the App's previous store is back on exit (none is closed)."""
    previous = app._store
    app._store = cast("Store", store)
    try:
        yield
    finally:
        app._store = previous


def run_ids(call: Call) -> list[str]:
    """The run ids of the requests of an ``append`` call, in order."""
    return [r.run_id for r in call.arg(0, "requests")]
