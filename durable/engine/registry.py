"""Workflow and step definitions, owned by an App instance (never a module global)."""

from __future__ import annotations

import inspect
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from durable.codec import Signature, return_type
from durable.engine.executors import Executor, executor_of
from durable.engine.policy import Retry
from durable.errors import UnknownWorkflowError
from durable.outputs import check_step_name

__all__ = ["Registry", "StepDef", "WorkflowDef"]


@dataclass(eq=False)
class StepDef:
    """A registered step."""

    name: str
    fn: Callable[..., Any]
    retry: Retry | None = None
    timeout: float | None = None
    is_async: bool = False
    result_type: Any = Any
    executor: Executor = Executor.THREAD
    """Where the body runs: the worker's loop, a thread, or its process pool."""

    @classmethod
    def of(
        cls,
        fn: Callable[..., Any],
        name: str | None,
        retry: Retry | None,
        timeout: float | None,
        executor: str | None = None,
    ) -> StepDef:
        """Build the definition of ``fn``."""
        if timeout is not None and timeout <= 0:
            raise ValueError("a step timeout must be positive seconds")
        step = name or fn.__qualname__
        check_step_name(step)
        return cls(
            name=step,
            fn=fn,
            retry=retry,
            timeout=timeout,
            is_async=inspect.iscoroutinefunction(fn),
            result_type=return_type(fn),
            executor=executor_of(fn, executor, step),
        )


@dataclass(eq=False)
class WorkflowDef:
    """A registered workflow."""

    name: str
    fn: Callable[..., Any]
    queue: str = "default"
    timeout: float | None = None
    retry: Retry | None = None
    on_success: Callable[[str, Any], Any] | None = None
    on_error: Callable[[str, BaseException], Any] | None = None
    is_permanent: Callable[[BaseException], bool] | None = None
    """A consumer's ``is_permanent``: true stops the retries of the run and of its steps."""
    is_async: bool = False
    result_type: Any = Any
    signature: Signature = field(init=False)

    def __post_init__(self) -> None:
        self.is_async = inspect.iscoroutinefunction(self.fn)
        self.result_type = return_type(self.fn)
        self.signature = Signature(self.fn)


class Registry:
    """The workflows and steps of one App, and the error types it can rebuild on replay."""

    def __init__(self) -> None:
        self.workflows: dict[str, WorkflowDef] = {}
        self.steps: dict[str, StepDef] = {}
        self._errors: dict[tuple[str, str], type[BaseException]] = {}
        self._modules: set[str] = set()

    def identity(self) -> tuple[int, ...]:
        """What changes when a workflow or step is registered or replaced (the App's
        default version is computed again then)."""
        return (
            *(id(w.fn) for w in self.workflows.values()),
            -1,
            *(id(s.fn) for s in self.steps.values()),
        )

    def add_workflow(self, wf: WorkflowDef) -> None:
        """Register ``wf``; a second workflow of the same name is an error."""
        old = self.workflows.get(wf.name)
        if old is not None and old.fn is not wf.fn:
            raise ValueError(f"a workflow named {wf.name!r} is already registered")
        self.workflows[wf.name] = wf
        self._modules.add(wf.fn.__module__)
        if wf.retry:
            self.add_errors(*wf.retry.non_retryable)

    def add_step(self, step: StepDef) -> None:
        """Register ``step``."""
        self.steps[step.name] = step
        self._modules.add(step.fn.__module__)
        if step.retry:
            self.add_errors(*step.retry.non_retryable)

    def add_errors(self, *types: type[BaseException]) -> None:
        """Allow these exception types to be rebuilt from the journal."""
        for t in types:
            self._errors[(t.__module__, t.__qualname__)] = t

    def workflow(self, name: str) -> WorkflowDef:
        """The workflow registered under ``name``."""
        try:
            return self.workflows[name]
        except KeyError:
            raise UnknownWorkflowError(f"no workflow named {name!r} is registered") from None

    def error_type(self, module: str, qualname: str) -> type[BaseException] | None:
        """The exception class recorded as ``module.qualname``, if it may be rebuilt.

        Allowed: builtins, durable's errors, registered types, and exception classes defined
        at the top of the module of a registered step or workflow. Nothing is imported.
        """
        t = self._errors.get((module, qualname))
        if t is not None:
            return t
        if module == "builtins" or module == "durable.errors" or module in self._modules:
            mod = sys.modules.get(module)
            obj = getattr(mod, qualname, None) if mod is not None else None
            if isinstance(obj, type) and issubclass(obj, Exception):
                return obj
        return None
