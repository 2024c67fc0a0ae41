"""Tracing: see a durable run as one OpenTelemetry trace, on SQLite, with no backend needed.

Run it::

    pip install -e . opentelemetry-sdk
    python examples/tracing.py

It configures the OpenTelemetry SDK as an application would (durable itself only uses the
API), then starts a run inside a span that stands for a web request, runs it with an embedded
worker, and prints every span as one line, indented under its parent: the request, the
``start order_pipeline`` span stored with the run, the run span, its stages and its step
attempts (with the retried one twice), and the span events (progress, messages).

To send the spans to a backend instead (Jaeger, Tempo, an OpenTelemetry Collector...), install
``opentelemetry-exporter-otlp-proto-http`` and set the endpoint, e.g. with Jaeger::

    docker run --rm -p 16686:16686 -p 4318:4318 jaegertracing/all-in-one
    OTEL_EXPORTER_OTLP_ENDPOINT=http://localhost:4318 python examples/tracing.py

then open http://localhost:16686 and look for the service ``durable-example``. See
``docs/observability.md`` for every span, attribute and metric.

Options: ``--database URL`` (default ``sqlite:///tracing.db``, or ``DURABLE_DATABASE_URL``).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    SimpleSpanProcessor,
    SpanExporter,
    SpanExportResult,
)

import durable

# tests/test_examples.py runs every example that defines TEST_ARGS, with a temporary
# database passed as --database URL, and expects exit status 0.
TEST_ARGS: list[str] = []


class Collect(SpanExporter):
    """Keeps the finished spans, to print them as a tree at the end."""

    def __init__(self) -> None:
        self.spans: list[ReadableSpan] = []

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.spans.extend(spans)
        return SpanExportResult.SUCCESS


def configure_tracing() -> tuple[TracerProvider, Collect | None]:
    """The SDK's tracer provider: OTLP if ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set, else kept in
    memory and printed."""
    provider = TracerProvider(resource=Resource.create({"service.name": "durable-example"}))
    collect = None
    if os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    else:
        collect = Collect()
        provider.add_span_processor(SimpleSpanProcessor(collect))
    trace.set_tracer_provider(provider)
    return provider, collect


def print_tree(spans: list[ReadableSpan]) -> None:
    """One line per span, children indented under their parent, in start order."""
    by_parent: dict[int | None, list[ReadableSpan]] = {}
    ids = {s.context.span_id for s in spans if s.context is not None}
    for s in sorted(spans, key=lambda s: s.start_time or 0):
        parent = s.parent.span_id if s.parent is not None and s.parent.span_id in ids else None
        by_parent.setdefault(parent, []).append(s)

    def show(parent: int | None, depth: int) -> None:
        for s in by_parent.get(parent, []):
            assert s.context is not None and s.start_time and s.end_time
            attrs = s.attributes or {}
            keys = ("durable.step.attempt", "durable.outcome", "durable.worker.id")
            shown = " ".join(f"{k.split('.')[-1]}={attrs[k]}" for k in keys if k in attrs)
            ms = (s.end_time - s.start_time) / 1e6
            print(f"{s.context.trace_id:032x} {'  ' * depth}{s.name} [{ms:.1f} ms] {shown}")
            for e in s.events:
                items = (e.attributes or {}).items()
                data = ", ".join(f"{k}={v}" for k, v in items if k != "exception.stacktrace")
                print(f"{' ' * 32} {'  ' * depth}  * {e.name} {data}")
            show(s.context.span_id, depth + 1)

    show(None, 0)


app = durable.App("tracing-example", database=None)
attempts: list[int] = []


@app.step
def fetch_order(order_id: int) -> dict[str, int]:
    durable.progress(1.0)
    return {"order": order_id, "items": 3}


@app.step(retry=durable.Retry(attempts=3, initial_delay=0.05))
def charge(order: dict[str, int]) -> str:
    attempts.append(1)
    if len(attempts) == 1:
        raise ConnectionError("payment service unavailable (on purpose, to show a retry)")
    return f"charged order {order['order']}"


@app.step
def ship(order: dict[str, int]) -> str:
    return f"shipped {order['items']} items"


@app.workflow
def order_pipeline(order_id: int) -> list[str]:
    with durable.stage("prepare"):
        order = fetch_order(order_id)
        durable.message("order loaded", items=order["items"])
    with durable.stage("fulfil"):
        return [charge(order), ship(order)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--database",
        default=os.environ.get("DURABLE_DATABASE_URL") or "sqlite:///tracing.db",
        help="the log's URL (default: $DURABLE_DATABASE_URL, else sqlite:///tracing.db)",
    )
    args = parser.parse_args(argv)
    app.database = args.database
    provider, collect = configure_tracing()
    tracer = trace.get_tracer("example")
    client = app.client()
    with tracer.start_as_current_span("POST /orders"):  # stands for a traced web request
        handle = client.start(order_pipeline, 42)
    with app.worker(worker_id="example-worker"):
        print(f"run {handle.id}: {handle.result(timeout=60)}")
    provider.force_flush()
    if collect is not None:
        print_tree(collect.spans)
    else:
        print(f"spans sent to {os.environ['OTEL_EXPORTER_OTLP_ENDPOINT']}")
    provider.shutdown()
    app.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
