"""Where a step body runs (:class:`Executor`), checked when the step is defined, and how a
process pool finds a body again: by its module and qualified name (:func:`locate`)."""

from __future__ import annotations

import enum
import importlib
import inspect
import sys
from collections.abc import Callable
from typing import Any

__all__ = ["Executor", "executor_of", "locate"]


class Executor(enum.StrEnum):
    """Where a step's body runs (``@app.step(executor=...)``)."""

    LOOP = "loop"
    """On the worker's event loop: the executor of an ``async def`` step (the default)."""
    THREAD = "thread"
    """In a thread of the worker's step pool: the executor of a plain ``def`` step (the
    default). The body shares the worker's GIL."""
    PROCESS = "process"
    """In a process of the worker's process pool (``processes=``): for CPU-bound bodies.
    A plain ``def`` defined at the top level of a module (or as a class's method),
    found there by name; arguments and result go through the codec."""


def executor_of(fn: Callable[..., Any], name: str | Executor | None, step: str) -> Executor:
    """The executor of the step ``step`` whose body is ``fn``: ``name`` checked, or the
    default for ``fn``. A ``ValueError`` says what does not fit."""
    is_async = inspect.iscoroutinefunction(fn)
    if name is None:
        return Executor.LOOP if is_async else Executor.THREAD
    try:
        ex = Executor(name)
    except ValueError:
        names = ", ".join(repr(e.value) for e in Executor)
        raise ValueError(f"step {step!r}: unknown executor {name!r} (one of {names})") from None
    if is_async and ex is not Executor.LOOP:
        raise ValueError(
            f"step {step!r} is an async def, which runs on the worker's loop: "
            f"executor={ex.value!r} takes a plain def"
        )
    if not is_async and ex is Executor.LOOP:
        raise ValueError(f"step {step!r}: executor='loop' takes an async def")
    if ex is Executor.PROCESS:
        _check_importable(fn, step)
    return ex


def _check_importable(fn: Callable[..., Any], step: str) -> None:
    """A process pool finds a body by module and qualified name: refuse what it cannot."""
    module = getattr(fn, "__module__", None)
    qualname = getattr(fn, "__qualname__", None)
    if not isinstance(module, str) or not isinstance(qualname, str):
        raise ValueError(
            f"step {step!r}: executor='process' takes a function with a module and a name"
        )
    if "<lambda>" in qualname or "<locals>" in qualname:
        raise ValueError(
            f"step {step!r}: executor='process' cannot run {qualname!r}: a lambda or a function "
            "defined inside another cannot be imported by the pool's processes; define it at "
            f"the top level of module {module!r}"
        )
    if module == "__main__":
        main = sys.modules.get("__main__")
        spec = getattr(main, "__spec__", None)
        if getattr(main, "__file__", None) is None and spec is None:
            raise ValueError(
                f"step {step!r}: executor='process' cannot run a function defined in an "
                "interactive session (the pool's processes cannot import it); define it in "
                "a module"
            )


def locate(module: str, qualname: str) -> Callable[..., Any]:
    """The function ``module.qualname`` (the body itself when it is a registered step's
    wrapper). Raises ``ImportError`` or ``AttributeError`` with what was not found."""
    mod = sys.modules.get("__mp_main__") if module == "__main__" else None
    if mod is None:
        mod = importlib.import_module(module)
    obj: Any = mod
    for part in qualname.split("."):
        obj = getattr(obj, part)
    step = getattr(obj, "__durable_step__", None)
    fn = step.fn if step is not None else obj
    if not callable(fn):
        raise TypeError(f"{module}.{qualname} is not a function")
    return fn  # type: ignore[no-any-return]
