"""A worker process of ``procs/worker.py`` that exports its spans and metrics over OTLP/HTTP.

    OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:PORT \\
        python tests/integration/procs/traced_worker.py DB_URL WORKER_ID LEASE_TIMEOUT

The SDK is configured as an application would: the official OTLP/HTTP exporters (endpoint from
the environment), each span exported as it ends (so that a SIGKILL loses only unfinished
spans), metrics every half second and at exit. ``service.instance.id`` is the process id.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from opentelemetry import metrics, trace
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

from worker import main  # noqa: E402


def configure() -> MeterProvider:
    """Global SDK providers exporting to ``OTEL_EXPORTER_OTLP_ENDPOINT``."""
    resource = Resource.create(
        {"service.name": "durable-test-worker", "service.instance.id": str(os.getpid())}
    )
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    reader = PeriodicExportingMetricReader(OTLPMetricExporter(), export_interval_millis=500)
    meter_provider = MeterProvider(resource=resource, metric_readers=[reader])
    metrics.set_meter_provider(meter_provider)
    return meter_provider


if __name__ == "__main__":
    meters = configure()
    rc = main(sys.argv)
    meters.shutdown()
    sys.exit(rc)
