"""How a step body is waited for: with its timeout (on the loop, or in a thread of its
own), or on the worker's loop from a workflow thread; each marks the attempt timed out
(``durable.cancelled()``) when its timeout passes, and lets a cancel of the run reach an
async body."""

from __future__ import annotations

import asyncio
import contextvars
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from durable.engine.registry import StepDef

if TYPE_CHECKING:
    from durable.engine.core import RunCore
    from durable.engine.steps import StepScope

__all__ = ["await_threadsafe", "call_with_timeout", "wait_for"]


async def wait_for(fut: asyncio.Future[Any], step: StepDef, scope: StepScope) -> Any:
    """Await a body's future for at most its step's timeout; past it, mark the attempt
    timed out (``durable.cancelled()``), cancel the future (an async body gets
    ``CancelledError`` and is waited for, as ``asyncio.wait_for`` does; a thread runs on,
    not waited for) and raise ``TimeoutError``."""
    assert step.timeout is not None
    try:
        done, _ = await asyncio.wait({fut}, timeout=step.timeout)
    except asyncio.CancelledError:
        fut.cancel()
        raise
    if not done:
        scope.timed_out.set()
        fut.cancel()
        if isinstance(fut, asyncio.Task):  # an async body: let it handle its CancelledError
            await asyncio.wait({fut})
        fut.add_done_callback(_retrieve)
        raise TimeoutError(f"step {step.name!r} timed out after {step.timeout}s")
    return fut.result()


def _retrieve(fut: asyncio.Future[Any]) -> None:
    """Consume the outcome of a body nobody waits for any more."""
    if not fut.cancelled():
        fut.exception()


def await_threadsafe(
    coro: Any, loop: asyncio.AbstractEventLoop, step: StepDef, run: RunCore, scope: StepScope
) -> Any:
    """Run an async body on the worker's loop from a workflow thread and wait for it; a
    cancel of the run cancels it there."""
    cfut = asyncio.run_coroutine_threadsafe(coro, loop)
    run.body_started(cfut)
    try:
        return cfut.result()
    except TimeoutError:
        if step.timeout is None:
            raise
        scope.timed_out.set()
        raise TimeoutError(f"step {step.name!r} timed out after {step.timeout}s") from None
    finally:
        run.body_ended(cfut)


def call_with_timeout(
    step: StepDef,
    fn: Callable[..., Any],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    scope: StepScope,
) -> Any:
    """Run a sync step body in its own thread and stop waiting after its timeout.

    Python cannot kill a thread: the body keeps running in the background after a timeout
    (``durable.cancelled()`` is true in it from then on), and its eventual result is ignored.
    """
    box: dict[str, Any] = {}
    done = threading.Event()
    ctx = contextvars.copy_context()

    def target() -> None:
        try:
            box["value"] = ctx.run(fn, *args, **kwargs)
        except BaseException as exc:
            box["error"] = exc
        finally:
            done.set()

    threading.Thread(target=target, name=f"durable-step-{step.name}", daemon=True).start()
    assert step.timeout is not None
    if not done.wait(step.timeout):
        scope.timed_out.set()
        raise TimeoutError(f"step {step.name!r} timed out after {step.timeout}s")
    if "error" in box:
        raise box["error"]
    return box["value"]
