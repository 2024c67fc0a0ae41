"""The names durable gives its spans' attributes, its metrics and its log record fields.

Every name is documented in ``docs/observability.md``; change both together.
"""

from __future__ import annotations

import enum
import importlib.metadata

from durable.types import Status

__all__ = [
    "ATTEMPT",
    "LOG_ATTEMPT",
    "LOG_POSITION",
    "LOG_RUN_ID",
    "LOG_RUN_IDS",
    "LOG_STEP",
    "LOG_WORKER_ID",
    "LOG_WORKFLOW",
    "OUTCOME",
    "PARENT_RUN_ID",
    "POSITION",
    "QUEUE",
    "RUN_ATTEMPT",
    "RUN_ID",
    "SCOPE",
    "STAGE",
    "STEP",
    "TAKEOVER",
    "VERSION",
    "WORKER_ID",
    "WORKFLOW",
    "Outcome",
]

SCOPE = "durable"
"""The instrumentation scope of every span and metric (the tracer's and meter's name)."""

try:
    VERSION = importlib.metadata.version("durable-pipelines")
except importlib.metadata.PackageNotFoundError:  # pragma: no cover - not installed
    VERSION = ""

# -- span and metric attributes ------------------------------------------------------------

RUN_ID = "durable.run.id"
"""The run's id."""
WORKFLOW = "durable.workflow"
"""The run's workflow name."""
QUEUE = "durable.queue"
"""The run's queue."""
RUN_ATTEMPT = "durable.run.attempt"
"""The run's attempt (1, then 2... after a workflow-level retry)."""
PARENT_RUN_ID = "durable.run.parent_id"
"""The parent run of a child workflow's run."""
TAKEOVER = "durable.run.takeover"
"""This execution took the run over from a worker whose lease had expired."""
WORKER_ID = "durable.worker.id"
"""The worker executing the run."""
STAGE = "durable.stage"
"""The stage (``durable.stage(name)``)."""
STEP = "durable.step.name"
"""The step's name."""
POSITION = "durable.step.position"
"""The step's position in the run (its order of call, from 1)."""
ATTEMPT = "durable.step.attempt"
"""The step's attempt (from 1)."""
OUTCOME = "durable.outcome"
"""How an execution, a step attempt or a run ended: an :class:`Outcome`."""


class Outcome(enum.StrEnum):
    """The values of :data:`OUTCOME` (the telemetry's words, not the run's status)."""

    COMPLETED = Status.COMPLETED.value
    """The step attempt or the run completed."""
    FAILED = Status.FAILED.value
    """It failed for good."""
    RETRY = "retry"
    """It failed and will be tried again."""
    SUSPENDED = "suspended"
    """The execution handed its lease back (a sleep, a wait)."""
    DROPPED = "dropped"
    """The worker stopped executing the run without an ending (lease lost, stopping)."""
    BLOCKED = Status.BLOCKED.value
    """The code could not replay the run's journal: it is parked (not ended)."""


# -- log record attributes (``record.durable_run_id``...) -----------------------------------

LOG_RUN_ID = "durable_run_id"
LOG_RUN_IDS = "durable_run_ids"
"""The ids of all the runs a record is about, when it is about several (a batch)."""
LOG_WORKFLOW = "durable_workflow"
LOG_STEP = "durable_step"
LOG_POSITION = "durable_position"
LOG_ATTEMPT = "durable_attempt"
LOG_WORKER_ID = "durable_worker_id"
