"""The instruments of the global meter provider that durable records to.

Counters and histograms are created once per :class:`~durable.telemetry.core.Telemetry` (the
meter returns the same instrument for the same name). Through the API's proxy, instruments made
before the application configures its meter provider start recording once it does.
"""

from __future__ import annotations

from opentelemetry import metrics

__all__ = ["DURATION_BUCKETS", "Metrics"]

DURATION_BUCKETS = (
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
    300.0,
    900.0,
    3600.0,
    86400.0,
)
"""Seconds: from a no-op step (about a millisecond) to a run that sleeps for a day."""


class Metrics:
    """Durable's counters and histograms on one meter."""

    def __init__(self, meter: metrics.Meter) -> None:
        self.runs_started = meter.create_counter(
            "durable.runs.started", unit="{run}", description="Runs created (started)."
        )
        self.runs_completed = meter.create_counter(
            "durable.runs.completed", unit="{run}", description="Runs that ended completed."
        )
        self.runs_failed = meter.create_counter(
            "durable.runs.failed", unit="{run}", description="Runs that ended failed."
        )
        self.runs_cancelled = meter.create_counter(
            "durable.runs.cancelled", unit="{run}", description="Runs cancelled by a client."
        )
        self.runs_blocked = meter.create_counter(
            "durable.runs.blocked",
            unit="{run}",
            description="Runs parked blocked: the worker's code could not replay their journal.",
        )
        self.retries = meter.create_counter(
            "durable.retries",
            unit="{retry}",
            description="Retries scheduled: of a step (durable.retry.kind=step) or a whole run.",
        )
        self.takeovers = meter.create_counter(
            "durable.lease.takeovers",
            unit="{run}",
            description="Runs taken over from a worker whose lease had expired (stalled runs).",
        )
        self.step_duration = meter.create_histogram(
            "durable.step.duration",
            unit="s",
            description="Duration of each live step attempt (replayed steps are not counted).",
            explicit_bucket_boundaries_advisory=list(DURATION_BUCKETS),
        )
        self.run_duration = meter.create_histogram(
            "durable.run.duration",
            unit="s",
            description="From a run's creation to its end (completed or failed).",
            explicit_bucket_boundaries_advisory=list(DURATION_BUCKETS),
        )
