"""A tiny OTLP/HTTP receiver for tests: ``http.server`` on 127.0.0.1 in a thread, decoding the
protobuf requests of the official exporters with the message classes of ``opentelemetry-proto``.
"""

from __future__ import annotations

import gzip
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest


class Received:
    """What arrived, decoded: flat lists of spans (with their resource) and metrics."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.spans: list[dict[str, Any]] = []
        self.metrics: list[dict[str, Any]] = []
        self.requests = 0

    def add_traces(self, body: bytes) -> None:
        req = ExportTraceServiceRequest()
        req.ParseFromString(body)
        with self.lock:
            self.requests += 1
            for rs in req.resource_spans:
                resource = _attrs(rs.resource.attributes)
                for ss in rs.scope_spans:
                    for s in ss.spans:
                        self.spans.append(
                            {
                                "name": s.name,
                                "trace_id": s.trace_id.hex(),
                                "span_id": s.span_id.hex(),
                                "parent_id": s.parent_span_id.hex(),
                                "attributes": _attrs(s.attributes),
                                "events": [e.name for e in s.events],
                                "status": s.status.code,
                                "scope": ss.scope.name,
                                "resource": resource,
                            }
                        )

    def add_metrics(self, body: bytes) -> None:
        req = ExportMetricsServiceRequest()
        req.ParseFromString(body)
        with self.lock:
            self.requests += 1
            for rm in req.resource_metrics:
                for sm in rm.scope_metrics:
                    for m in sm.metrics:
                        kind = m.WhichOneof("data")
                        points = getattr(m, kind).data_points if kind else []
                        self.metrics.append(
                            {
                                "name": m.name,
                                "kind": kind,
                                "points": [
                                    {
                                        "attributes": _attrs(p.attributes),
                                        "value": _value(p),
                                    }
                                    for p in points
                                ],
                            }
                        )

    def span_list(self) -> list[dict[str, Any]]:
        """A copy of the spans received so far."""
        with self.lock:
            return list(self.spans)


def _value(point: Any) -> float:
    """A number point's value, or a histogram point's count."""
    try:
        kind = point.WhichOneof("value")
    except ValueError:
        kind = None
    if kind:
        return float(getattr(point, kind))
    return float(getattr(point, "count", 0))


def _attrs(kvs: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for kv in kvs:
        v = kv.value
        kind = v.WhichOneof("value")
        out[kv.key] = getattr(v, kind) if kind else None
    return out


class Receiver:
    """``with Receiver() as r``: ``r.endpoint`` is the base URL for the exporters."""

    def __init__(self) -> None:
        self.received = Received()
        received = self.received

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                if self.path == "/v1/traces":
                    received.add_traces(body)
                elif self.path == "/v1/metrics":
                    received.add_metrics(body)
                else:
                    self.send_response(404)
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def endpoint(self) -> str:
        """``http://127.0.0.1:PORT``."""
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
