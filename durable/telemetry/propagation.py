"""The trace context stored with a run (``runs.trace_context``), so that one run is one trace.

When a run is created, the context of a span is injected (with the global propagator, W3C
``traceparent`` by default) into a small carrier dict, stored msgpack-encoded in the run's row.
Every execution of the run, by any worker, extracts it and starts its run span as a child.

What the stored context names:

- tracing on where the run is created: a short ``start {workflow}`` span (PRODUCER), a child of
  the caller's current span (a web request...). Every execution is a sibling under it.
- tracing off there but a current span exists (another library's tracing): that span.
- neither: a made-up (synthetic) span id in a fresh trace id, so that the executions still share
  one trace; the backend then shows the root span as missing.
"""

from __future__ import annotations

import random

import msgspec
from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

__all__ = ["decode", "encode", "synthetic"]

_CARRIER = msgspec.msgpack.Decoder(dict[str, str])
_ENCODER = msgspec.msgpack.Encoder()


def encode(ctx: otel_context.Context) -> bytes | None:
    """The carrier of ``ctx`` (``None`` if it holds no valid span)."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier, context=ctx)
    if not carrier:
        return None
    return _ENCODER.encode(carrier)


def decode(raw: bytes | None) -> otel_context.Context | None:
    """The context stored with a run (``None`` if there is none or it is unreadable)."""
    if not raw:
        return None
    try:
        carrier = _CARRIER.decode(raw)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None
    return propagate.extract(carrier, context=otel_context.Context())


def synthetic() -> otel_context.Context:
    """A context naming a made-up, sampled span in a new trace."""
    span = SpanContext(
        trace_id=random.getrandbits(128) or 1,
        span_id=random.getrandbits(64) or 1,
        is_remote=True,
        trace_flags=TraceFlags(TraceFlags.SAMPLED),
    )
    return trace.set_span_in_context(NonRecordingSpan(span), otel_context.Context())
