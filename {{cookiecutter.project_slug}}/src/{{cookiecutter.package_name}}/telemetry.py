"""Traces and metrics (OpenTelemetry), sent over OTLP/HTTP to OTEL_EXPORTER_OTLP_ENDPOINT.

`start` sets up this process's tracer and meter providers from the settings;
the `instrument_*` functions trace and measure the web app, the database and
the job queue through OpenTelemetry's own instrumentations. Only processes
that export import this module: without an endpoint nothing is traced and
neither this module nor the exporters and instrumentations it brings are
ever loaded (see `Settings.exports_telemetry`).

Spans and metrics leave in the background, in batches from a bounded queue
(OTEL_BSP_MAX_QUEUE_SIZE spans; beyond it new spans are dropped): a collector
that is down or slow never holds up a request. Its failure is logged once, and
its recovery once. `stop` flushes what is queued, within a bounded time, as the
process stops.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable{% if cookiecutter.web_framework == "flask" %}, Iterable
from contextvars import ContextVar{% endif %}
from typing import Any
from urllib.parse import urlsplit, urlunsplit
{% if cookiecutter.worker == "celery" %}
from celery.signals import worker_process_shutdown
{%- endif %}
{%- if cookiecutter.web_framework == "fastapi" %}
from fastapi import FastAPI
{%- else %}
from flask import Flask, request
{%- endif %}
from opentelemetry import metrics, trace
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
{%- if cookiecutter.worker == "celery" %}
from opentelemetry.instrumentation.celery import CeleryInstrumentor
{%- endif %}
{%- if cookiecutter.web_framework == "fastapi" %}
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
{%- else %}
from opentelemetry.instrumentation.flask import FlaskInstrumentor
{%- endif %}
{%- if cookiecutter.database != "none" %}
from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor
{%- endif %}
from opentelemetry.instrumentation.utils import suppress_instrumentation
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import (
    MetricExportResult,
    MetricsData,
    PeriodicExportingMetricReader,
)
from opentelemetry.sdk.resources import SERVICE_NAME, SERVICE_VERSION, Resource
from opentelemetry.sdk.trace import TracerProvider, sampling
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExportResult
from opentelemetry.trace import Span
{%- if cookiecutter.database != "none" %}
from sqlalchemy import Engine
{%- endif %}

from .settings import Settings, key_value_pairs

logger = logging.getLogger(__name__)

# Probes poll these every few seconds: traced, they would bury the requests. Matched against
# the whole URL: anchored, so that no Host header or query string a client sends matches.
UNTRACED_URLS = r"^https?://[^/?#]*/(healthz|readyz)(\?|$)"
# What a stopping process gives its last spans and metrics, within its grace period.
FLUSH_TIMEOUT_SECONDS = 5
# OpenTelemetry's stable HTTP conventions (the instrumentations still default to the old ones):
# their duration metric is by method, route and status, not also by the client's Host header.
SEMCONV_OPT_IN = ("OTEL_SEMCONV_STABILITY_OPT_IN", "http")
# OpenTelemetry's exporters log every failed export: ExportHealth says it once instead.
EXPORTER_LOGGERS = ("opentelemetry.exporter.otlp.proto.http", "opentelemetry.sdk._shared_internal")
{%- if cookiecutter.database != "none" %}
# The SQLAlchemy instrumentation declares SQLAlchemy < 2.1 and does nothing with a newer one;
# the engine events it uses are the same in 2.1 (tests/test_telemetry.py proves its spans).
SQLALCHEMY_UNLISTED = True
{%- endif %}


class ExportHealth:
    """One warning when exports start failing, one line when they succeed again."""

    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint
        self.failing = False
        self.lock = threading.Lock()

    def noted(self, succeeded: bool) -> None:
        with self.lock:
            if succeeded == (not self.failing):
                return
            self.failing = not succeeded
        if succeeded:
            logger.info("telemetry export recovered", extra={"endpoint": self.endpoint})
        else:
            logger.warning(
                "telemetry export failing: spans and metrics are dropped until it recovers",
                extra={"endpoint": self.endpoint},
            )


export_health: ExportHealth | None = None


class SpanExporter(OTLPSpanExporter):
    """OTLP's span exporter, reporting each export to an ExportHealth."""

    def __init__(self, health: ExportHealth, **options: Any) -> None:
        super().__init__(**options)
        self.health = health

    def export(self, spans: Any) -> SpanExportResult:
        result = super().export(spans)
        self.health.noted(result is SpanExportResult.SUCCESS)
        return result


class MetricExporter(OTLPMetricExporter):
    """OTLP's metric exporter, reporting each export to an ExportHealth."""

    def __init__(self, health: ExportHealth, **options: Any) -> None:
        super().__init__(**options)
        self.health = health

    def export(
        self, metrics_data: MetricsData, timeout_millis: float | None = 10_000, **kwargs: Any
    ) -> MetricExportResult:
        result = super().export(metrics_data, timeout_millis, **kwargs)
        self.health.noted(result is MetricExportResult.SUCCESS)
        return result


def sampler(settings: Settings) -> sampling.Sampler:
    """OTEL_TRACES_SAMPLER and its argument, as the SDK would read them from the environment."""
    ratio = sampling.TraceIdRatioBased(settings.otel_traces_sampler_arg)
    root: sampling.Sampler = {
        "always_on": sampling.ALWAYS_ON,
        "always_off": sampling.ALWAYS_OFF,
        "traceidratio": ratio,
    }[settings.otel_traces_sampler.removeprefix("parentbased_")]
    if settings.otel_traces_sampler.startswith("parentbased_"):
        return sampling.ParentBased(root)
    return root


def start(settings: Settings) -> None:
    """Trace and measure this process, exporting to OTEL_EXPORTER_OTLP_ENDPOINT in the background.

    Called once in each process that serves or works (each web worker, each job
    worker): a forked process keeps its parent's providers, whose export threads
    the SDK restarts in it. A second call in the same process changes nothing.
    """
    if isinstance(trace.get_tracer_provider(), TracerProvider):
        return
    resource = Resource.create(
        {
            **key_value_pairs(settings.otel_resource_attributes),
            SERVICE_NAME: settings.otel_service_name,
            SERVICE_VERSION: settings.release_id,
        }
    )
    endpoint = settings.otel_exporter_otlp_endpoint.rstrip("/")
    headers = key_value_pairs(settings.otel_exporter_otlp_headers.get_secret_value())
    global export_health  # one per process, like the providers
    export_health = health = ExportHealth(endpoint)
    os.environ.setdefault(*SEMCONV_OPT_IN)
    for name in EXPORTER_LOGGERS:
        logging.getLogger(name).setLevel(logging.CRITICAL + 1)
    tracer_provider = TracerProvider(resource=resource, sampler=sampler(settings))
    tracer_provider.add_span_processor(
        BatchSpanProcessor(SpanExporter(health, endpoint=f"{endpoint}/v1/traces", headers=headers))
    )
    reader = PeriodicExportingMetricReader(
        MetricExporter(health, endpoint=f"{endpoint}/v1/metrics", headers=headers),
        export_interval_millis=settings.otel_metric_export_interval,
    )
    trace.set_tracer_provider(tracer_provider)
    metrics.set_meter_provider(MeterProvider(resource=resource, metric_readers=[reader]))
    logging.setLogRecordFactory(record_factory_with_span(logging.getLogRecordFactory()))


def record_factory_with_span(
    factory: Callable[..., logging.LogRecord],
) -> Callable[..., logging.LogRecord]:
    """Records that carry the ids of the span they are written in: `trace_id`, `span_id`."""

    def record_with_span(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = factory(*args, **kwargs)
        context = trace.get_current_span().get_span_context()
{%- if cookiecutter.web_framework == "flask" %}
        if not context.is_valid and (span := request_span.get()) is not None:
            context = span.get_span_context()
{%- endif %}
        if context.is_valid:
            record.trace_id = trace.format_trace_id(context.trace_id)
            record.span_id = trace.format_span_id(context.span_id)
        return record

    return record_with_span


def flush() -> None:
    """Send what is queued now, within FLUSH_TIMEOUT_SECONDS: a process about to end.

    Not while exports are failing: the spans would be lost anyway, and each wait would
    hold up what the process does next (a work horse's next job).
    """
    if export_health is not None and export_health.failing:
        return
    run_bounded(flush_providers)


def stop() -> None:
    """Flush and shut the providers down, waiting at most FLUSH_TIMEOUT_SECONDS.

    An export to a collector that does not answer can outlast the process's
    grace period: it is left behind (the process is ending) rather than waited for.
    """
    run_bounded(shutdown_providers)


def run_bounded(function: Callable[[], None]) -> None:
    worker = threading.Thread(target=function, name="telemetry-flush", daemon=True)
    worker.start()
    worker.join(FLUSH_TIMEOUT_SECONDS)


def flush_providers() -> None:
    timeout_millis = FLUSH_TIMEOUT_SECONDS * 1000
    for provider in (trace.get_tracer_provider(), metrics.get_meter_provider()):
        if isinstance(provider, TracerProvider | MeterProvider):
            provider.force_flush(timeout_millis)


def shutdown_providers() -> None:
    for provider in (trace.get_tracer_provider(), metrics.get_meter_provider()):
        if isinstance(provider, TracerProvider | MeterProvider):
            provider.shutdown()


def without_query(url: str) -> str:
    """The URL without its query string, which may carry tokens or personal data."""
    return urlunsplit(urlsplit(url)._replace(query="", fragment=""))


def untraced(check: Callable[[], None]) -> Callable[[], None]:
    """`check`, run without spans: a readiness probe's query would start a trace each time."""

    def run_untraced() -> None:
        with suppress_instrumentation():
            check()

    return run_untraced


def strip_query(span: Span) -> None:
    """Record the request's path and URL without its query (OpenTelemetry records both whole)."""
    attributes = getattr(span, "attributes", None) or {}
    for name in ("http.target", "http.url", "url.full"):
        if isinstance(value := attributes.get(name), str) and "?" in value:
            span.set_attribute(name, without_query(value))
    if "url.query" in attributes:
        span.set_attribute("url.query", "")
{%- if cookiecutter.web_framework == "fastapi" %}


def instrument_app(app: FastAPI) -> None:
    """A SERVER span and duration metrics for every request but the probes'."""
    FastAPIInstrumentor.instrument_app(
        app,
        excluded_urls=UNTRACED_URLS,
        exclude_spans=["receive", "send"],  # a span per ASGI message: noise
        server_request_hook=lambda span, _scope: strip_query(span),
    )
    checks: dict[str, Callable[[], None]] = app.state.readiness_checks
    app.state.readiness_checks = {name: untraced(check) for name, check in checks.items()}
{%- else %}


# Flask's instrumentation ends a request's span as Flask finishes with it, before
# RequestContextMiddleware (around Flask) writes the access line: that line takes its ids
# from here. Set in each request, cleared after it.
request_span: ContextVar[Span | None] = ContextVar("request_span", default=None)


def instrument_app(app: Flask) -> None:
    """A SERVER span and duration metrics for every request but the probes'."""

    def remember_span(span: Span, _environ: Any) -> None:
        if request.url_rule is None:  # no route: named by the method alone, as FastAPI's are
            span.update_name(request.method)
        request_span.set(span)

    FlaskInstrumentor.instrument_app(  # type: ignore[no-untyped-call]  # no type hints
        app,
        request_hook=remember_span,
        # Not in request_hook: the instrumentation sets the request's attributes after it.
        response_hook=lambda span, _status, _headers: strip_query(span),
        excluded_urls=UNTRACED_URLS,
        enable_commenter=False,
    )
    app.wsgi_app = forgetting_request_span(app.wsgi_app)  # type: ignore[method-assign]
    checks: dict[str, Callable[[], None]] = app.extensions["readiness_checks"]
    app.extensions["readiness_checks"] = {name: untraced(check) for name, check in checks.items()}


def forgetting_request_span(
    wsgi_app: Callable[..., Iterable[bytes]],
) -> Callable[..., Iterable[bytes]]:
    def app(environ: Any, start_response: Any) -> Iterable[bytes]:
        token = request_span.set(None)
        try:
            return wsgi_app(environ, start_response)
        finally:
            request_span.reset(token)

    return app
{%- endif %}
{%- if cookiecutter.database != "none" %}


def instrument_engine(engine: Engine) -> None:
    """A CLIENT span for each query on `engine` (its SQL, never its parameters); its pool's use."""
    SQLAlchemyInstrumentor().instrument(
        engine=engine,
        enable_commenter=False,
        skip_dep_check=SQLALCHEMY_UNLISTED,
    )
{%- endif %}
{%- if cookiecutter.worker == "celery" %}


def instrument_jobs() -> None:
    """Spans for sending and running jobs, the trace context carried in each job's headers."""
    CeleryInstrumentor().instrument()  # type: ignore[no-untyped-call]  # no type hints
{%- endif %}
{%- if cookiecutter.database != "none" or cookiecutter.worker == "celery" %}


def instrument_processes() -> None:
    """Trace what an admin or worker process does: {% if cookiecutter.database != "none" %}every engine it creates from now{% endif %}{% if cookiecutter.database != "none" and cookiecutter.worker == "celery" %}, {% endif %}{% if cookiecutter.worker == "celery" %}its jobs{% endif %}."""
{%- if cookiecutter.database != "none" %}
    SQLAlchemyInstrumentor().instrument(enable_commenter=False, skip_dep_check=SQLALCHEMY_UNLISTED)
{%- endif %}
{%- if cookiecutter.worker == "celery" %}
    instrument_jobs()
    # A pool process ends with os._exit: send its spans first.
    worker_process_shutdown.connect(lambda **_kwargs: flush(), weak=False)
{%- endif %}
{%- else %}


def instrument_processes() -> None:
    """Nothing to add: {% if cookiecutter.worker == "rq" %}worker.py traces its jobs through OpenTelemetry's API{% else %}this service has no database or job queue{% endif %}."""
{%- endif %}
