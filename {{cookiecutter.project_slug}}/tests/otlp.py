"""A real OTLP/HTTP receiver: the collector the service exports to, in the test process.

`Collector` listens on 127.0.0.1 and takes what an OpenTelemetry SDK POSTs to
/v1/traces and /v1/metrics (protobuf, compressed with gzip or deflate or not),
answering 200 with the empty response. It keeps every span and metric decoded
to plain Python values, and every body as it arrived (decompressed) for
secret scans. Stopped, it refuses connections; started again, it listens on
the same port. With `blackhole` set it takes each request and never answers.
"""

from __future__ import annotations

import gzip
import threading
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.metrics.v1.metrics_pb2 import Metric as MetricMessage
from opentelemetry.proto.trace.v1.trace_pb2 import Span as SpanMessage
from opentelemetry.proto.trace.v1.trace_pb2 import Status

TRACES = "/v1/traces"
METRICS = "/v1/metrics"
DECOMPRESS: dict[str, Callable[[bytes], bytes]] = {
    "gzip": gzip.decompress,
    "deflate": zlib.decompress,
    "identity": bytes,
}


@dataclass(frozen=True)
class Span:
    """One exported span. Ids are lowercase hex; a root span's `parent_span_id` is ""."""

    name: str
    kind: str  # SERVER, CLIENT, PRODUCER, CONSUMER or INTERNAL
    trace_id: str
    span_id: str
    parent_span_id: str
    status: str  # UNSET, OK or ERROR
    attributes: dict[str, Any]
    scope: str  # the name of the instrumentation that made it
    resource: dict[str, Any]


@dataclass(frozen=True)
class Point:
    """One data point of a metric: a sum's or gauge's value, a histogram's count."""

    attributes: dict[str, Any]
    value: float


@dataclass(frozen=True)
class Metric:
    """One exported metric with its data points; `kind` is sum, gauge or histogram."""

    name: str
    unit: str
    kind: str
    points: tuple[Point, ...]
    scope: str
    resource: dict[str, Any]


class Collector:
    """An OTLP/HTTP receiver on 127.0.0.1; `with Collector() as collector:` it listens."""

    def __init__(self) -> None:
        self.port = 0  # chosen by the system at the first start, kept afterwards
        self.blackhole = False
        self._spans: list[Span] = []
        self._metrics: list[Metric] = []
        self._bodies: list[bytes] = []
        self._headers: list[dict[str, str]] = []
        self._lock = threading.Lock()
        self._released = threading.Event()
        self._server: _Server | None = None

    @property
    def endpoint(self) -> str:
        """The base URL for OTEL_EXPORTER_OTLP_ENDPOINT."""
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        """Listen (again, on the same port), answering each request in a thread of its own."""
        self._released.clear()
        self._server = _Server(self)
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        """Close the port; requests held by `blackhole` end unanswered."""
        if self._server is not None:
            self._released.set()
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> Collector:
        self.start()
        return self

    def __exit__(self, *_exc_info: object) -> None:
        self.stop()

    @property
    def spans(self) -> list[Span]:
        """Every span received so far, in arrival order."""
        with self._lock:
            return list(self._spans)

    @property
    def metrics(self) -> list[Metric]:
        """Every metric received so far, one entry per export, in arrival order."""
        with self._lock:
            return list(self._metrics)

    @property
    def bodies(self) -> list[bytes]:
        """Every request body, decompressed, answered or not."""
        with self._lock:
            return list(self._bodies)

    @property
    def headers(self) -> list[dict[str, str]]:
        """Every request's headers, names in lowercase."""
        with self._lock:
            return list(self._headers)

    def points(self, name: str) -> list[Point]:
        """The data points of every export of the metric `name`."""
        return [point for metric in self.metrics if metric.name == name for point in metric.points]

    def receive(self, path: str, headers: dict[str, str], body: bytes) -> bytes | None:
        """Decode one request; the response body, or None for a path OTLP does not have."""
        encoding = headers.get("content-encoding", "identity")
        data = DECOMPRESS[encoding](body)
        with self._lock:
            self._headers.append(headers)
            self._bodies.append(data)
        if self.blackhole:
            self._released.wait()
            return None
        answer: ExportTraceServiceResponse | ExportMetricsServiceResponse
        if path == TRACES:
            spans = decode_spans(ExportTraceServiceRequest.FromString(data))
            with self._lock:
                self._spans += spans
            answer = ExportTraceServiceResponse()
        elif path == METRICS:
            metrics = decode_metrics(ExportMetricsServiceRequest.FromString(data))
            with self._lock:
                self._metrics += metrics
            answer = ExportMetricsServiceResponse()
        else:
            return None
        response: bytes = answer.SerializeToString()
        return response


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, collector: Collector) -> None:
        super().__init__(("127.0.0.1", collector.port), _Handler)
        self.collector = collector


class _Handler(BaseHTTPRequestHandler):
    # HTTP/1.0: one request per connection, so a stopped collector keeps no connection open.
    server: _Server

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        headers = {name.lower(): value for name, value in self.headers.items()}
        response = self.server.collector.receive(self.path, headers, body)
        if self.server.collector.blackhole:
            return  # the connection closes unanswered
        if response is None:
            self.send_error(HTTPStatus.NOT_FOUND)
            return
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", str(len(response)))
        self.end_headers()
        self.wfile.write(response)

    def log_message(self, *args: Any) -> None:
        """Quiet: the tests read what arrived, not an access log."""


def decode_spans(request: ExportTraceServiceRequest) -> list[Span]:
    return [
        Span(
            name=span.name,
            kind=SpanMessage.SpanKind.Name(span.kind).removeprefix("SPAN_KIND_"),
            trace_id=span.trace_id.hex(),
            span_id=span.span_id.hex(),
            parent_span_id=span.parent_span_id.hex(),
            status=Status.StatusCode.Name(span.status.code).removeprefix("STATUS_CODE_"),
            attributes=plain_attributes(span.attributes),
            scope=scope_spans.scope.name,
            resource=plain_attributes(resource_spans.resource.attributes),
        )
        for resource_spans in request.resource_spans
        for scope_spans in resource_spans.scope_spans
        for span in scope_spans.spans
    ]


def decode_metrics(request: ExportMetricsServiceRequest) -> list[Metric]:
    return [
        Metric(
            name=metric.name,
            unit=metric.unit,
            kind=metric.WhichOneof("data") or "",
            points=data_points(metric),
            scope=scope_metrics.scope.name,
            resource=plain_attributes(resource_metrics.resource.attributes),
        )
        for resource_metrics in request.resource_metrics
        for scope_metrics in resource_metrics.scope_metrics
        for metric in scope_metrics.metrics
    ]


def data_points(metric: MetricMessage) -> tuple[Point, ...]:
    kind = metric.WhichOneof("data")
    if kind == "histogram":
        return tuple(
            Point(plain_attributes(point.attributes), point.count)
            for point in metric.histogram.data_points
        )
    if kind == "sum" or kind == "gauge":
        return tuple(
            Point(plain_attributes(point.attributes), point.as_double or point.as_int)
            for point in getattr(metric, kind).data_points
        )
    return ()


def plain_attributes(pairs: Iterable[KeyValue]) -> dict[str, Any]:
    return {pair.key: plain_value(pair.value) for pair in pairs}


def plain_value(value: AnyValue) -> Any:
    """An attribute's value as Python: str, bool, int, float, bytes, list or dict."""
    kind = value.WhichOneof("value")
    if kind == "array_value":
        return [plain_value(item) for item in value.array_value.values]
    if kind == "kvlist_value":
        return plain_attributes(value.kvlist_value.values)
    return None if kind is None else getattr(value, kind)
