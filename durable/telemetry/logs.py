"""Log records of the engine, through the standard ``logging`` module.

Every record about a run carries the fields of :func:`fields` as attributes
(``record.durable_run_id``, ``record.durable_workflow``, ``record.durable_step``,
``record.durable_position``, ``record.durable_attempt``, ``record.durable_worker_id``), always
all of them (``None`` where they do not apply), so that a format string such as
``"%(durable_run_id)s"`` works on every such record and any handler, structlog or loguru can
pick them up. Callers check ``isEnabledFor`` before building a record.
"""

from __future__ import annotations

import logging
from typing import Any

from durable.telemetry import names as n

__all__ = ["RUN_LOG", "STEP_LOG", "batch_fields", "fields"]

RUN_LOG = logging.getLogger("durable.engine.run")
"""Runs: an execution began (DEBUG), ended (DEBUG), failed (INFO)."""
STEP_LOG = logging.getLogger("durable.engine.step")
"""Step attempts: completed (DEBUG), failed (INFO)."""


def fields(
    run_id: str | None,
    workflow: str | None,
    *,
    step: str | None = None,
    position: int | None = None,
    attempt: int | None = None,
    worker_id: str | None = None,
) -> dict[str, Any]:
    """The ``extra`` of a record about a run (and one of its step attempts)."""
    return {
        n.LOG_RUN_ID: run_id,
        n.LOG_WORKFLOW: workflow,
        n.LOG_STEP: step,
        n.LOG_POSITION: position,
        n.LOG_ATTEMPT: attempt,
        n.LOG_WORKER_ID: worker_id,
    }


def batch_fields(run_ids: list[str], *, worker_id: str | None = None) -> dict[str, Any]:
    """The ``extra`` of a record about several runs at once (a batch of appends): every
    field of :func:`fields`, ``durable_run_id`` set when the batch holds one run only, and
    ``durable_run_ids`` listing them all."""
    ids = list(dict.fromkeys(run_ids))
    extra = fields(ids[0] if len(ids) == 1 else None, None, worker_id=worker_id)
    extra[n.LOG_RUN_IDS] = ids
    return extra
