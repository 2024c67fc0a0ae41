"""The OpenTelemetry SDK of a test process, with in-memory exporters (the API allows one
global provider per process: the ``otel`` fixture of the integration tests sets it once)."""

from __future__ import annotations

from typing import Any


class OTel:
    """The SDK providers of this test process, with in-memory exporters."""

    def __init__(self) -> None:
        from opentelemetry import metrics, trace
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.metrics.export import InMemoryMetricReader
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

        self.spans = InMemorySpanExporter()
        self.tracer_provider = TracerProvider()
        self.tracer_provider.add_span_processor(SimpleSpanProcessor(self.spans))
        trace.set_tracer_provider(self.tracer_provider)
        self.reader = InMemoryMetricReader()
        metrics.set_meter_provider(MeterProvider(metric_readers=[self.reader]))
        assert trace.get_tracer_provider() is self.tracer_provider, "another provider was set"

    def finished(self, run_id: str | None = None) -> list[Any]:
        """The spans ended so far (of one run, by ``durable.run.id``, if given)."""
        spans = list(self.spans.get_finished_spans())
        if run_id is None:
            return spans
        return [s for s in spans if (s.attributes or {}).get("durable.run.id") == run_id]

    def points(self, name: str) -> list[Any]:
        """The data points of metric ``name`` in a fresh collection."""
        data = self.reader.get_metrics_data()
        out: list[Any] = []
        for rm in data.resource_metrics if data is not None else ():
            for sm in rm.scope_metrics:
                for m in sm.metrics:
                    if m.name == name:
                        out.extend(m.data.data_points)
        return out
