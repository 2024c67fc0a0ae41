"""``app.sequence``: a workflow that chains steps, with journaled success and error handlers.

A sequence calls its steps in order, each with the previous step's result (the first with
the run's input). Its handlers are steps too, called by the same workflow code, so each is
journaled like any step: once its outcome is committed it never runs again, not after a
crash, a takeover or a replay.

- ``on_success(result)`` runs after the last step, with its result. What it returns is
  recorded in its step's journal entry; the run's result stays the last step's result.
- ``on_error(failure)`` runs once the sequence has failed for good: a step (or
  ``on_success``) raised, and the run's retry policy (``retry=``, or ``client.start(retry=)``)
  will not try the workflow again. It gets a :class:`SequenceFailure`; then the run fails
  with the original error, whatever the handler did.
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from durable.engine.policy import Retry, is_retryable, run_retry
from durable.engine.runtime import current_or_none
from durable.engine.steps import error_info
from durable.errors import CorruptJournalError, NonDeterminismError
from durable.options import decode_options

if TYPE_CHECKING:
    from durable.app import App

__all__ = ["SequenceFailure", "define_sequence"]


@dataclass(frozen=True, slots=True)
class SequenceFailure:
    """What a sequence's ``on_error`` handler receives: why the sequence failed for good."""

    sequence: str
    """The sequence's (workflow's) name."""
    step: str
    """The registered name of the step that failed (or of the ``on_success`` handler)."""
    error_type: str
    """The error's type, as the run's journal records it (``"ValueError"``)."""
    message: str
    """The error's message."""
    run_id: str = ""
    """The run's id (empty when the sequence is called outside a run, as a plain call)."""
    attempt: int = 1
    """The run's attempt that failed: the last one its retry policy allows."""


def _check_handler(role: str, fn: object) -> None:
    """``on_success``/``on_error``: ``None``, a step, or a function of one argument."""
    if fn is None:
        return
    if getattr(fn, "__durable_workflow__", None) is not None:
        raise TypeError(f"{role} takes a step or a plain function, not the workflow {fn!r}")
    if not callable(fn):
        raise TypeError(
            f"{role} must be a step or a function of one argument, not {type(fn).__name__} {fn!r}"
        )
    step = getattr(fn, "__durable_step__", None)
    target = step.fn if step is not None else fn
    try:
        inspect.signature(target).bind(None)
    except TypeError:
        what = "the last step's result" if role == "on_success" else "a SequenceFailure"
        raise TypeError(f"{role} {target!r} must take one positional argument ({what})") from None
    except ValueError:  # no signature to inspect (some builtins): let the call tell
        pass


def _handler(app: App, sequence: str, role: str, fn: object) -> Callable[..., Any] | None:
    """A checked handler as a step: a step is used as it is, a plain function is registered
    as the step ``"{sequence}.{role}"``."""
    if fn is None:
        return None
    if getattr(fn, "__durable_step__", None) is not None:
        return fn  # type: ignore[return-value]
    assert callable(fn)
    made: Callable[..., Any] = app.step(name=f"{sequence}.{role}")(fn)
    return made


def _chain(steps: object) -> list[Callable[..., Any]]:
    if isinstance(steps, str | bytes) or not isinstance(steps, Iterable):
        raise TypeError(f"steps must be a list of steps, not {type(steps).__name__} {steps!r}")
    chain = list(steps)
    if not chain:
        raise ValueError("a sequence needs at least one step")
    for s in chain:
        if getattr(s, "__durable_workflow__", None) is not None:
            raise TypeError(f"{s!r} is a workflow, not a step: a sequence chains steps")
        if getattr(s, "__durable_step__", None) is None:
            raise TypeError(f"{s!r} is not a step: decorate it with @app.step")
    return chain


def _step_name(fn: Callable[..., Any]) -> str:
    return str(fn.__durable_step__.name)  # type: ignore[attr-defined]


def _final(exc: Exception) -> bool:
    """Whether the run fails with ``exc`` for good (no retry of the workflow follows)."""
    if isinstance(exc, NonDeterminismError | CorruptJournalError):
        return False  # the code does not match its journal: no handler runs
    run = current_or_none()
    if run is None:
        return True  # a plain call: no run, no retry
    policy = run_retry(decode_options(run.row.options), run.workflow.retry)
    return not is_retryable(policy, exc, run.row.attempt)


def _failure(sequence: str, step: Callable[..., Any], exc: Exception) -> SequenceFailure:
    err = error_info(exc)
    run = current_or_none()
    return SequenceFailure(
        sequence=sequence,
        step=_step_name(step),
        error_type=err.type,
        message=err.message,
        run_id=run.run_id if run is not None else "",
        attempt=run.row.attempt if run is not None else 1,
    )


def define_sequence(
    app: App,
    name: str,
    steps: object,
    *,
    on_success: object = None,
    on_error: object = None,
    retry: Retry | None = None,
    timeout: float | None = None,
    queue: str | None = None,
) -> Callable[..., Any]:
    """Register the sequence ``name`` on ``app`` and return its workflow function (see
    :meth:`durable.App.sequence`)."""
    if not isinstance(name, str) or not name:
        raise TypeError(f"a sequence's name must be a non-empty str, not {name!r}")
    chain = _chain(steps)
    if retry is not None and not isinstance(retry, Retry):
        raise TypeError(f"retry must be a durable.Retry or None, not {type(retry).__name__}")
    if queue is None:
        queue = "default"
    if not isinstance(queue, str) or not queue:
        raise TypeError(f"queue must be a queue name (a non-empty str), not {queue!r}")
    _check_handler("on_success", on_success)
    _check_handler("on_error", on_error)
    if timeout is not None:
        if isinstance(timeout, bool) or not isinstance(timeout, int | float):
            raise TypeError(f"timeout must be seconds (a number) or None, not {timeout!r}")
        if not timeout > 0:
            raise ValueError("a workflow timeout must be positive seconds")
    if name in app.registry.workflows:
        raise ValueError(f"a workflow named {name!r} is already registered")
    success = _handler(app, name, "on_success", on_success)
    error = _handler(app, name, "on_error", on_error)

    def run_sequence(value: Any = None) -> Any:
        current = chain[0]
        try:
            for s in chain:
                current = s
                value = s(value)
            if success is not None:
                current = success
                success(value)
        except Exception as exc:
            if error is not None and _final(exc):
                # A failing handler is journaled as its step's failure; the run keeps the
                # sequence's own error.
                with contextlib.suppress(Exception):
                    error(_failure(name, current, exc))
            raise
        return value

    run_sequence.__qualname__ = name
    run_sequence.__name__ = name
    run_sequence.__module__ = chain[0].__module__
    run_sequence.__doc__ = f"The sequence {name!r}: " + " -> ".join(_step_name(s) for s in chain)
    register = app.workflow(name=name, queue=queue, timeout=timeout, retry=retry)
    wrapped: Callable[..., Any] = register(run_sequence)
    return wrapped
