"""Stage resources: ``durable.stage(name, resources={"db": open_db})`` and
``durable.resource("db")`` in the step bodies of that stage.

A resource is the value a context-manager factory enters. It is opened on the worker by the
first live step body of the stage that asks for it (never while recorded steps replay, since
their bodies do not run), shared by every step body of the stage block (threads and async
bodies alike: the scope travels with the step's context), and closed when the stage block
ends, however it ends: normally, with an error, or because the run suspends (a sleep, a
signal wait, a retry backoff, a child wait), is cancelled or handed back. A resumed run opens
it again at its next live step. Resources are not journaled.

Inner stages see the resources of the stages around them; a name declared again by an inner
stage hides the outer one. An error raised by a resource's ``__exit__`` is logged, never the
run's error.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from typing import Any

from durable.errors import ResourceError

__all__ = ["ResourceStack", "StageResources", "check_resources"]

log = logging.getLogger("durable.engine.resources")

ResourceFactory = Callable[[], Any]
"""A callable with no argument that returns a (sync) context manager."""


def check_resources(stage: str, resources: Mapping[str, Any] | None) -> dict[str, ResourceFactory]:
    """The factories of a stage, checked when ``durable.stage`` is called.

    Raises:
        TypeError: ``resources`` is not a mapping, a name is not a non-empty string, or a
            factory is not callable.
    """
    if resources is None:
        return {}
    if not isinstance(resources, Mapping):
        raise TypeError(
            f"durable.stage({stage!r}, resources=...) takes a dict of names to factories, "
            f"not {type(resources).__name__}"
        )
    out: dict[str, ResourceFactory] = {}
    for name, factory in resources.items():
        if not isinstance(name, str) or not name:
            raise TypeError(
                f"durable.stage({stage!r}): a resource name must be a non-empty string, "
                f"not {name!r}"
            )
        if not callable(factory):
            raise TypeError(
                f"durable.stage({stage!r}): the factory of resource {name!r} is "
                f"{type(factory).__name__} {factory!r}, not a callable: pass a function that "
                "returns a context manager (e.g. resources={'db': open_db}, not open_db())"
            )
        out[name] = factory
    return out


class StageResources:
    """The resources of one stage block: opened by the first live step body that asks, closed
    when the block ends. Thread-safe: concurrent step bodies open each resource once."""

    __slots__ = ("_closed", "_lock", "_open", "factories", "parent", "stage")

    def __init__(
        self, stage: str, factories: dict[str, ResourceFactory], parent: StageResources | None
    ) -> None:
        self.stage = stage
        self.factories = factories
        self.parent = parent
        self._open: dict[str, tuple[Any, Any]] = {}
        self._lock = threading.RLock()
        self._closed = False

    def get(self, name: str, step: str, step_stage: str | None) -> Any:
        """The value of resource ``name`` for a body of ``step``, opened if it is not yet.

        Raises:
            ResourceError: no stage around the step declares ``name``, or its stage has ended.
        """
        scope: StageResources | None = self
        while scope is not None:
            if name in scope.factories:
                return scope._value(name, step)
            scope = scope.parent
        raise ResourceError(
            f"durable.resource({name!r}): step {step!r} runs in stage {step_stage!r}, and no "
            f"stage around it declares a resource {name!r} ({self._declared()})"
        )

    def _declared(self) -> str:
        found = []
        scope: StageResources | None = self
        while scope is not None:
            names = ", ".join(repr(n) for n in scope.factories)
            found.append(f"stage {scope.stage!r} declares {names}")
            scope = scope.parent
        return "; ".join(found)

    def _value(self, name: str, step: str) -> Any:
        with self._lock:
            if self._closed:
                raise ResourceError(
                    f"durable.resource({name!r}): stage {self.stage!r} has ended and closed "
                    f"its resources, but the body of step {step!r} still runs"
                )
            if name in self._open:
                return self._open[name][1]
            cm = self.factories[name]()
            if not (hasattr(cm, "__enter__") and hasattr(cm, "__exit__")):
                kind = "an async context manager" if hasattr(cm, "__aenter__") else "not one"
                raise TypeError(
                    f"the factory of resource {name!r} of stage {self.stage!r} must return a "
                    f"context manager (with __enter__ and __exit__); it returned "
                    f"{type(cm).__name__}, {kind}: stage resources are sync context managers"
                )
            value = cm.__enter__()
            self._open[name] = (cm, value)
            return value

    def close(self, error: BaseException | None = None) -> None:
        """Close what was opened, newest first (``__exit__`` gets ``error`` when it is an
        exception of the code's own; its return value is ignored). Errors are logged."""
        with self._lock:
            opened = list(self._open.items())
            self._open.clear()
            self._closed = True
        exc = error if isinstance(error, Exception) else None
        info = (type(exc), exc, exc.__traceback__) if exc is not None else (None, None, None)
        for name, (cm, _) in reversed(opened):
            try:
                cm.__exit__(*info)
            except Exception:
                log.exception("closing resource %r of stage %r failed", name, self.stage)


class ResourceStack:
    """The stage blocks of a run that declare resources, innermost last."""

    __slots__ = ("_scopes",)

    def __init__(self) -> None:
        self._scopes: list[StageResources] = []

    @property
    def top(self) -> StageResources | None:
        """The innermost open block with resources (the scope a step called now sees)."""
        return self._scopes[-1] if self._scopes else None

    def push(self, stage: str, factories: dict[str, ResourceFactory]) -> StageResources:
        """A stage block with resources begins."""
        scope = StageResources(stage, factories, self.top)
        self._scopes.append(scope)
        return scope

    def pop(self, scope: StageResources, error: BaseException | None) -> None:
        """The block of ``scope`` ends: close its resources."""
        if scope in self._scopes:
            self._scopes.remove(scope)
        scope.close(error)


def resource_in(scope: StageResources | None, name: str, step: str, stage: str | None) -> Any:
    """``durable.resource(name)`` in a step body whose call saw ``scope``."""
    if scope is None:
        where = f"runs in stage {stage!r}" if stage is not None else "runs in no stage"
        raise ResourceError(
            f"durable.resource({name!r}): step {step!r} {where}, and no stage "
            "around it declares resources: declare it with "
            f"durable.stage(..., resources={{{name!r}: factory}})"
        )
    return scope.get(name, step, stage)
