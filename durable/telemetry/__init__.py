"""OpenTelemetry traces and metrics, and the engine's log records: the only place that imports
``opentelemetry``. The engine calls into it; it imports nothing from the engine.

- ``core``: :class:`Telemetry`, built once per App;
- ``run`` / ``step``: one execution of a run, one live step attempt (spans, metrics, logs);
- ``propagation``: the trace context stored with a run;
- ``metrics`` / ``gauges``: the instruments; ``logs``: the log records' fields;
- ``names``: every attribute, metric and field name (documented in docs/observability.md).
"""

from durable.telemetry.core import Telemetry, metrics_enabled, tracing_enabled
from durable.telemetry.gauges import Backlog
from durable.telemetry.run import NO_RUN, RunTelemetry
from durable.telemetry.step import StepTelemetry

__all__ = [
    "NO_RUN",
    "Backlog",
    "RunTelemetry",
    "StepTelemetry",
    "Telemetry",
    "metrics_enabled",
    "tracing_enabled",
]
