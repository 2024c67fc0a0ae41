"""W1 with tracing on: the same 10-step workflow, with an SDK ``TracerProvider`` whose
``BatchSpanProcessor`` hands every span to an exporter that drops it.

Set beside ``w1`` (tracing off: the API's default no-op provider) in the same invocation, the
two give the overhead of durable's spans (a run span, and one span per live step attempt).
A global tracer provider can be set only once per process, so the traced measurement always
runs in a fresh interpreter (``benchmarks._child``), leaving the caller's process untraced.
"""

from __future__ import annotations

from collections.abc import Sequence

from benchmarks.model import Measurement, Settings

TARGET = "benchmarks.w1_traced:traced_in_this_process"


def durable_w1_traced(settings: Settings, backend: str) -> Measurement:
    """W1 in a fresh interpreter with spans on."""
    from benchmarks.runner import measure_in_subprocess

    return measure_in_subprocess(TARGET, backend, settings)


def traced_in_this_process(settings: Settings, backend: str) -> Measurement:
    """Set the SDK tracer provider in this process, then measure W1."""
    from opentelemetry import trace
    from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

    from benchmarks.w1_latency import durable_w1

    class Dropping(SpanExporter):
        """Counts the spans and drops them."""

        def __init__(self) -> None:
            self.spans = 0

        def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
            self.spans += len(spans)
            return SpanExportResult.SUCCESS

    exporter = Dropping()
    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    m = durable_w1(settings, backend)
    provider.force_flush()
    extra = {**m.extra, "spans": float(exporter.spans)}
    return Measurement(ops=m.ops, seconds=m.seconds, cpu_seconds=m.cpu_seconds, extra=extra)
