"""``Telemetry``: what an App builds once and its clients and workers share: the tracer, the
meter's instruments, and the calls the client makes (a run's stored trace context, the
started and cancelled counters).

Everything goes through the *global* providers of the OpenTelemetry API: durable depends on
``opentelemetry-api`` only, and the application configures the SDK (or does not).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from opentelemetry import context as otel_context
from opentelemetry import metrics, trace
from opentelemetry.metrics import NoOpMeterProvider
from opentelemetry.trace import NoOpTracerProvider, ProxyTracerProvider, SpanKind

from durable.telemetry import names as n
from durable.telemetry import propagation
from durable.telemetry.gauges import QueueGauges, Source
from durable.telemetry.metrics import Metrics
from durable.telemetry.run import RunTelemetry

if TYPE_CHECKING:  # the log's row type only: telemetry sits below the log
    from durable.log.store import RunRow

__all__ = ["Telemetry", "metrics_enabled", "tracing_enabled"]


def tracing_enabled() -> bool:
    """Whether the application has set a tracer provider (the API's default is a proxy to a
    no-op one): without one, durable starts no span at all."""
    provider = trace.get_tracer_provider()
    return not isinstance(provider, ProxyTracerProvider | NoOpTracerProvider)


def metrics_enabled() -> bool:
    """Whether the application has set a meter provider: the API's default is a proxy
    (``_ProxyMeterProvider``, a private name, hence the check by name) whose instruments
    record nothing until one is set; without one, durable records no per-step metric."""
    provider = metrics.get_meter_provider()
    return not (
        isinstance(provider, NoOpMeterProvider) or type(provider).__name__ == "_ProxyMeterProvider"
    )


class Telemetry:
    """The tracer and the instruments of one App (cheap to build: a client without an App
    builds its own)."""

    def __init__(self) -> None:
        self.tracer = trace.get_tracer(n.SCOPE, n.VERSION)
        self.metrics = Metrics(metrics.get_meter(n.SCOPE, n.VERSION))

    def run(self, row: RunRow, worker_id: str, takeover: bool) -> RunTelemetry:
        """The telemetry of one execution of ``row`` by ``worker_id`` (whether tracing and
        metrics are on is decided here, once per execution)."""
        return RunTelemetry(
            self, row, worker_id, takeover, traced=tracing_enabled(), metered=metrics_enabled()
        )

    def start_context(self, workflow: str, run_id: str, queue: str) -> bytes | None:
        """The trace context to store with a run being created (see ``propagation``)."""
        if tracing_enabled():
            span = self.tracer.start_span(
                f"start {workflow}",
                kind=SpanKind.PRODUCER,
                attributes={n.RUN_ID: run_id, n.WORKFLOW: workflow, n.QUEUE: queue},
            )
            span.end()
            ctx = trace.set_span_in_context(span, otel_context.Context())
        elif trace.get_current_span().get_span_context().is_valid:
            ctx = otel_context.get_current()
        else:
            ctx = propagation.synthetic()
        return propagation.encode(ctx)

    def run_started(self, workflow: str, queue: str) -> None:
        """A client created a run."""
        self.metrics.runs_started.add(1, {n.WORKFLOW: workflow, n.QUEUE: queue})

    def run_cancelled(self, workflow: str, queue: str) -> None:
        """A client cancelled a run."""
        self.metrics.runs_cancelled.add(1, {n.WORKFLOW: workflow, n.QUEUE: queue})

    def observe_queues(self, source: Source) -> Callable[[], None]:
        """Report ``source``'s queues on the queue gauges until the returned function is
        called."""
        return QueueGauges.shared().add(source)
