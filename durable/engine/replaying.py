"""Run today's code of a workflow against a run's journal, executing no step and writing
nothing, to check that the code still matches what the run recorded.

:func:`replay_run` is ``client.replay`` (it raises what it finds); :func:`check_replay`
gives the same verdict as a value (:class:`ReplayVerdict`), for tools that check many runs
at once and report, for each, whether a worker of this code would block it, where and why.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import msgspec

from durable.codec import Codec
from durable.engine.blocking import arguments_changed
from durable.engine.control import ReplayEnd, Suspend
from durable.engine.registry import Registry, WorkflowDef
from durable.engine.replay import Journal
from durable.engine.runner import run_body, unmatched_end
from durable.engine.runtime import RunState
from durable.engine.services import NoAppends, Services
from durable.errors import (
    NonDeterminismError,
    RunFailedError,
    StepFailedError,
    UnknownWorkflowError,
)
from durable.log.store import RunRow, Store
from durable.types import Status

__all__ = ["ReplayVerdict", "check_replay", "replay_run"]

REPLAY_WORKER = "replay"
"""The worker id that ``durable.info()`` reports during a replay."""


def replay_run(
    workflow: WorkflowDef,
    row: RunRow,
    journal: Journal,
    *,
    registry: Registry,
    codec: Codec,
    store: Store,
) -> Any:
    """Replay ``row``'s run of ``workflow`` against ``journal`` with live execution off.

    Returns the replayed result of a completed run, ``None`` for a run that has not
    finished (checked up to the end of its journal).

    Raises:
        NonDeterminismError: the code no longer matches the journal.
        RunFailedError: the replayed code fails as the run did.
    """
    try:
        args, kwargs = workflow.signature.decode_args(row.input)
    except msgspec.ValidationError as exc:
        raise arguments_changed(row.id, workflow.name, exc) from exc
    services = Services(
        registry=registry, codec=codec, store=store, committer=NoAppends(), worker_id=REPLAY_WORKER
    )
    state = RunState(services, row, row.lease_epoch, journal, workflow, replay_only=True)
    try:
        finished, value = _replay(state, args, kwargs)
    except (NonDeterminismError, RunFailedError, UnknownWorkflowError):
        raise
    except StepFailedError as exc:
        raise RunFailedError(row.id, exc.error_type, exc.error_message) from exc
    except Exception as exc:
        raise RunFailedError(row.id, type(exc).__qualname__, str(exc)) from exc
    if not finished and row.status == Status.COMPLETED:
        raise NonDeterminismError(
            f"run {row.id!r} completed, but today's code goes on past the end of its "
            f"journal (position {state.position})"
        )
    return value if finished else None


@dataclass(frozen=True, slots=True)
class ReplayVerdict:
    """What replaying one run against the code found."""

    run_id: str
    workflow: str
    blocks: bool
    """Whether a worker of this code would park the run ``BLOCKED``."""
    mismatch: NonDeterminismError | None = None
    """When it blocks: the mismatch (its ``position``, ``called``, ``recorded``)."""
    failure: RunFailedError | None = None
    """When the replayed code raises (the run would fail or retry, not block)."""

    @property
    def position(self) -> int | None:
        """Where the code and the journal part, if they do."""
        return self.mismatch.position if self.mismatch is not None else None


def check_replay(
    workflow: WorkflowDef,
    row: RunRow,
    journal: Journal,
    *,
    registry: Registry,
    codec: Codec,
    store: Store,
) -> ReplayVerdict:
    """:func:`replay_run` as a verdict: never raises for what the replay finds."""
    try:
        replay_run(workflow, row, journal, registry=registry, codec=codec, store=store)
    except NonDeterminismError as exc:
        return ReplayVerdict(row.id, row.workflow, True, mismatch=exc)
    except RunFailedError as exc:
        return ReplayVerdict(row.id, row.workflow, False, failure=exc)
    return ReplayVerdict(row.id, row.workflow, False)


def _replay(state: RunState, args: list[Any], kwargs: dict[str, Any]) -> tuple[bool, Any]:
    """``(True, result)`` if the code returned, ``(False, None)`` if it reached the end of
    the journal (or a suspension). Raises a mismatch first, then what the workflow raised."""
    try:
        result = run_body(state, args, kwargs)
    except (ReplayEnd, Suspend):
        if state.nondeterminism is not None:
            raise state.nondeterminism from None
        return False, None
    except Exception:
        if state.nondeterminism is not None:
            raise state.nondeterminism from None
        raise
    if state.nondeterminism is not None:
        raise state.nondeterminism
    if state.suspensions:
        return False, None
    mismatch = unmatched_end(state)
    if mismatch is not None:
        raise mismatch
    return True, result
