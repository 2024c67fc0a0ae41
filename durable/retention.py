"""Retention: which finished runs the log may forget, as ``durable.Retention`` says.

A policy deletes whole runs only (the row, the journal and the signals, in one transaction),
never a run that has not finished, and never a child whose parent may still need it. The
deletion itself is the log's (``Store.prune``); this module turns the public policy into the
log's rules.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass

from durable.log.store import PruneRule

__all__ = ["Retention", "RetentionPolicy", "prune_rules"]


@dataclass(frozen=True, slots=True)
class Retention:
    """How many finished runs of a workflow to keep, and for how long.

    A finished run is deleted when every limit given lets it go: it is not among the
    ``keep_completed`` newest completed runs of its workflow (``keep_failed`` newest failed or
    cancelled ones), and it ended more than ``max_age`` ago. A status with neither limit is
    kept: ``Retention(keep_completed=100)`` never deletes a failed run.

    ``Retention(keep_completed=1000, keep_failed=100)``: the newest 1000 completed and 100
    failed runs of each workflow. ``Retention(max_age=timedelta(days=7))``: every finished run
    for a week. ``Retention(keep_completed=10, max_age=3600)``: completed runs for an hour,
    and the newest 10 of them for ever.
    """

    keep_completed: int | None = None
    """Keep the newest N completed runs of each workflow."""
    keep_failed: int | None = None
    """Keep the newest N failed or cancelled runs of each workflow."""
    max_age: float | dt.timedelta | None = None
    """Keep every run that ended less than this long ago (seconds or a timedelta)."""

    def __post_init__(self) -> None:
        for name in ("keep_completed", "keep_failed"):
            value = getattr(self, name)
            if value is not None and (
                not isinstance(value, int) or isinstance(value, bool) or value < 0
            ):
                raise ValueError(f"{name} must be a non-negative int or None")
        if self.max_age is not None and self.max_age_seconds < 0:  # type: ignore[operator]
            raise ValueError("max_age must be a non-negative duration or None")
        if self.keep_completed is None and self.keep_failed is None and self.max_age is None:
            raise ValueError("a Retention needs keep_completed, keep_failed or max_age")

    @property
    def max_age_seconds(self) -> float | None:
        """``max_age`` in seconds."""
        if isinstance(self.max_age, dt.timedelta):
            return self.max_age.total_seconds()
        return None if self.max_age is None else float(self.max_age)


RetentionPolicy = Retention | Mapping[str, Retention]
"""One :class:`Retention` for every workflow, or one per workflow name."""


def prune_rules(policy: RetentionPolicy) -> list[PruneRule]:
    """The log's rules for ``policy`` (a mapping names its workflows; a single Retention
    applies to every workflow in the log, each counted on its own)."""
    if isinstance(policy, Retention):
        return [_rule(None, policy)]
    rules = []
    for name, retention in policy.items():
        if not isinstance(retention, Retention):
            raise TypeError(f"the retention of {name!r} is not a durable.Retention")
        rules.append(_rule(name, retention))
    return rules


def _rule(workflow: str | None, r: Retention) -> PruneRule:
    return PruneRule(
        workflow=workflow,
        keep_completed=r.keep_completed,
        keep_failed=r.keep_failed,
        older_than=r.max_age_seconds,
    )
