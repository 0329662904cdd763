"""Traces, metrics and trace-stamped logs (OpenTelemetry), as a collector receives them.

Real processes from the Procfile export over OTLP/HTTP to `otlp.Collector`, a
receiver in the test process. The run most tests observe happens once per
module (`observed`): a web process{% if cookiecutter.worker != "none" %} and a worker{% endif %} holding secrets, sent a few
requests (one with a token in its query string){% if cookiecutter.worker != "none" %} and a job{% endif %}, then stopped. They
export once a minute: what arrived, their stop sent. Each test checks one
promise of that run. A collector that is down or never answers, and a
service told to export nothing, each get a process of their own.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx2 as httpx
import pytest
{%- if cookiecutter.database != "none" %}
from sqlalchemy import make_url
{%- endif %}

from {{ cookiecutter.package_name }}.settings import Settings, load_settings
{% if cookiecutter.worker != "none" -%}
from {{ cookiecutter.package_name }}.worker import BUILD_REPORT
{% endif %}
from .conftest import (
{%- if cookiecutter.worker != "none" %}
    broker_settings,
    clean_queue,
{%- endif %}
    read_procfile,
{%- if cookiecutter.worker != "none" %}
    require_backing_service,
{%- endif %}
    service_environment,
)
from .otlp import Collector, Span
from .processes import ServiceProcess, StartService, wait_for

# Every test here starts real processes: `make test-fast` leaves the module out.
pytestmark = pytest.mark.processes

PACKAGE = "{{ cookiecutter.package_name }}"
SERVICE_NAME = "{{ cookiecutter.project_slug }}"
RELEASE = "telemetry-5e1f"
# Exports every tenth of a second (spans) and half second (metrics), not every 5 s and 60 s.
FAST_EXPORTS = {"OTEL_BSP_SCHEDULE_DELAY": "100", "OTEL_METRIC_EXPORT_INTERVAL": "500"}
# Exports once a minute: within a test, only what a process sends as it stops.
HELD_EXPORTS = {"OTEL_BSP_SCHEDULE_DELAY": "60000", "OTEL_METRIC_EXPORT_INTERVAL": "60000"}
# Secrets the service is given or sent: none may leave it, in telemetry or in a log line.
QUERY_TOKEN = f"query-{secrets.token_hex(8)}"
HEADER_SECRET = f"header-{secrets.token_hex(8)}"
DATABASE_PASSWORD = f"password-{secrets.token_hex(8)}"
SECRETS = {
    "query token": QUERY_TOKEN,
    "OTLP header": HEADER_SECRET,
{%- if cookiecutter.database != "none" %}
    "database password": DATABASE_PASSWORD,
{%- endif %}
}
READ_ID = "observed-read"
{%- if cookiecutter.database != "none" %}
ITEM = {"name": "hex bolt 41f", "description": "M6, zinc plated"}
# The request the tests read about: an item, read from the database.
ROUTE = "/items/{% if cookiecutter.web_framework == 'fastapi' %}{item_id}{% else %}<item_id>{% endif %}"
{%- elif cookiecutter.worker != "none" %}
# The request the tests read about: a report, read from Redis.
ROUTE = "/reports/{% if cookiecutter.web_framework == 'fastapi' %}{report_id}{% else %}<report_id>{% endif %}"
{%- else %}
# The request the tests read about: a path the service does not have, answered 404.
ROUTE = ""
{%- endif %}
# A path no route matches.
UNROUTED = "/no-such-path"
{%- if cookiecutter.database != "none" %}
# A request every test's service answers with a query, and how: no such item.
TRACED = ("/items/2147483647", 404)
{%- else %}
# A request every test's service answers, touching no backing service.
TRACED = (UNROUTED, 404)
{%- endif %}
{%- if cookiecutter.worker == "celery" %}
# Spans of sending a job and running it, made by Celery's instrumentation.
PRODUCER_SPAN = f"apply_async/{BUILD_REPORT}"
CONSUMER_SPAN = f"run/{BUILD_REPORT}"
{%- elif cookiecutter.worker == "rq" %}
# Spans of sending a job and running it: the queue's name, as OpenTelemetry names messaging.
PRODUCER_SPAN = "publish {queue}"
CONSUMER_SPAN = "process {queue}"
{%- endif %}
# Export rounds a down collector is watched for: the service warns once, not once per round.
DOWN_ROUNDS = 4
EXPORT_ROUND_SECONDS = int(FAST_EXPORTS["OTEL_METRIC_EXPORT_INTERVAL"]) / 1000
# The exporters give up on a collector that does not answer after this many seconds...
SLOW_EXPORT_TIMEOUT = 30
# ... while a client waits this long for each answer: a request that waited on an export fails.
CLIENT_TIMEOUT = 5
EXPORT_FAILING = "telemetry export failing"
EXPORT_RECOVERED = "telemetry export recovered"


@dataclass
class ObservedRun:
    """The module's shared run: its processes, its collector and what the client sent."""

    settings: Settings
    collector: Collector
    web: ServiceProcess
    worker: ServiceProcess | None
    read: httpx.Response
    sent_before_stop: list[Span]
    exit_codes: list[int]
{%- if cookiecutter.database != "none" %}

    def database_backend(self) -> str:
        """postgresql or sqlite."""
        return make_url(self.settings.database_url.get_secret_value()).get_backend_name()
{%- endif %}

    def processes(self) -> list[ServiceProcess]:
        return [self.web] if self.worker is None else [self.web, self.worker]

    def log_lines(self) -> list[dict[str, Any]]:
        return [event for process in self.processes() for event in process.json_lines()]

    def server_span(self) -> Span:
        """The SERVER span of the read request."""
        [span] = [span for span in self.collector.spans if is_read(span)]
        return span


def is_read(span: Span) -> bool:
    """Whether `span` is the SERVER span of a GET of ROUTE (of the unknown path without one)."""
    attributes = span.attributes
    if span.kind != "SERVER" or attributes.get("http.request.method") != "GET":
        return False
    if ROUTE:
        return bool(attributes.get("http.route") == ROUTE)
    return bool(attributes.get("url.path") == UNROUTED)


def exporting_env(
    env: dict[str, str], collector: Collector, exports: dict[str, str] = FAST_EXPORTS
) -> dict[str, str]:
    """`env` exporting to `collector` as release RELEASE, as often as `exports` says."""
    return {
        **env,
        **exports,
        "OTEL_EXPORTER_OTLP_ENDPOINT": collector.endpoint,
        "RELEASE_ID": RELEASE,
    }


def ancestors(span: Span, spans: list[Span]) -> list[Span]:
    """The spans above `span`, its parent first, as far as they arrived."""
    by_id = {candidate.span_id: candidate for candidate in spans}
    chain: list[Span] = []
    while (parent := by_id.get(span.parent_span_id)) is not None:
        chain.append(parent)
        span = parent
    return chain


def events_named(process: ServiceProcess, event: str) -> list[dict[str, Any]]:
    return [line for line in process.json_lines() if line["event"].startswith(event)]
{%- if cookiecutter.database != "none" %}


def with_password(database_url: str) -> str:
    """The URL with DATABASE_PASSWORD; PostgreSQL's trust authentication accepts any."""
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        return database_url
    return url.set(password=DATABASE_PASSWORD).render_as_string(hide_password=False)
{%- endif %}


@pytest.fixture(scope="module")
def observed({% if cookiecutter.database != "none" %}database_url: str, {% endif %}tmp_path_factory: pytest.TempPathFactory) -> Iterator[ObservedRun]:
    """A web process{% if cookiecutter.worker != "none" %} and a worker{% endif %} that exported to a collector, after requests and a stop.

    The service holds an OTLP header secret{% if cookiecutter.database != "none" %} and, where the database takes
    one, a password{% endif %}; the read request carries a token in its query string.
    """
    values: dict[str, str] = {}
{%- if cookiecutter.database != "none" %}
    values["DATABASE_URL"] = with_password(database_url)
{%- endif %}
{%- if cookiecutter.worker != "none" %}
    redis_url = require_backing_service("TEST_REDIS_URL")
    values |= broker_settings()
{%- endif %}
    settings = load_settings(values)
    procfile = read_procfile()
    cwd = tmp_path_factory.mktemp("observed")
    with Collector() as collector:
        env = {
            **exporting_env(service_environment(settings), collector, HELD_EXPORTS),
            "OTEL_EXPORTER_OTLP_HEADERS": f"authorization=Bearer%20{HEADER_SECRET}",
        }
        processes = [ServiceProcess(procfile["web"], env=env, cwd=cwd)]
{%- if cookiecutter.worker != "none" %}
        processes.append(ServiceProcess(procfile["worker"], env=env, cwd=cwd))
{%- endif %}
        try:
            web = processes[0]
            web.wait_until_serving()
            with httpx.Client(base_url=web.url, timeout=10) as client:
{%- if cookiecutter.database != "none" %}
                created = client.post("/items", json=ITEM)
                assert created.status_code == 201, created.text
                read_path = f"/items/{created.json()['id']}"
{%- endif %}
{%- if cookiecutter.worker != "none" %}
                queued = client.post("/reports"{% if cookiecutter.database == "none" %}, json={"text": "hex bolt\nwasher"}{% endif %})
                assert queued.status_code == 202, queued.text
                wait_for(lambda: events_named(processes[1], "report done"), "the job done")
{%- if cookiecutter.database == "none" %}
                read_path = f"/reports/{queued.json()['id']}"
{%- endif %}
{%- endif %}
{%- if cookiecutter.database == "none" and cookiecutter.worker == "none" %}
                read_path = UNROUTED
{%- else %}
                assert client.get(UNROUTED).status_code == 404
{%- endif %}
                read = client.get(
                    read_path, params={"token": QUERY_TOKEN}, headers={"X-Request-ID": READ_ID}
                )
            sent_before_stop = collector.spans
            exit_codes = [process.stop() for process in processes]
            yield ObservedRun(
                settings=settings,
                collector=collector,
                web=web,
                worker=processes[1] if len(processes) > 1 else None,
                read=read,
                sent_before_stop=sent_before_stop,
                exit_codes=exit_codes,
            )
        finally:
            for process in processes:
                process.kill()
{%- if cookiecutter.worker != "none" %}
            clean_queue(redis_url, settings.worker_queue)
{%- endif %}


def test_a_stopped_service_exits_zero_having_sent_what_it_held(observed: ObservedRun) -> None:
    """Nothing leaves on its own within a minute (HELD_EXPORTS): the stop sent the rest."""
    assert observed.exit_codes == [0 for _ in observed.processes()]
    assert [span for span in observed.sent_before_stop if span.kind == "SERVER"] == []
    assert is_read(observed.server_span())
    assert "http.server.request.duration" in {metric.name for metric in observed.collector.metrics}


def test_a_request_is_a_server_span_of_the_service_and_release(observed: ObservedRun) -> None:
    span = observed.server_span()
    expected = {
        "http.request.method": "GET",
        "http.response.status_code": observed.read.status_code,
    }
    if ROUTE:  # else the read is of a path no route matches: see the next test
        assert span.name == f"GET {ROUTE}"
        expected["http.route"] = ROUTE
    assert {name: span.attributes.get(name) for name in expected} == expected
    assert span.parent_span_id == ""
    assert span.resource["service.name"] == SERVICE_NAME
    assert span.resource["service.version"] == RELEASE


def test_a_request_no_route_matches_is_named_by_its_method_alone(observed: ObservedRun) -> None:
    """One span name per path would make one per path a scanner tries: the route, or nothing."""
    unrouted = [
        span
        for span in observed.collector.spans
        if span.kind == "SERVER" and span.attributes.get("url.path") == UNROUTED
    ]
    assert unrouted
    assert {(span.name, span.attributes.get("http.response.status_code")) for span in unrouted} == {
        ("GET", 404)
    }


def test_no_url_in_a_span_carries_the_query_string(observed: ObservedRun) -> None:
    urls = {
        name: value
        for name, value in observed.server_span().attributes.items()
        if name.startswith("url.")
    }
    assert urls, "the span names its URL"
    assert [value for value in urls.values() if "token" in str(value)] == []


def test_probes_are_not_traced(observed: ObservedRun) -> None:
    assert observed.web.cold_start is not None, "the web process was probed on /healthz"
    traced_paths = {span.attributes.get("url.path") for span in observed.collector.spans}
    assert traced_paths.isdisjoint({"/healthz", "/readyz"})
{%- if cookiecutter.database != "none" %}


def test_a_query_is_a_client_span_below_its_request(observed: ObservedRun) -> None:
    request = observed.server_span()
    spans = observed.collector.spans
    queries = [
        span
        for span in spans
        if span.trace_id == request.trace_id and "db.statement" in span.attributes
    ]
    assert queries, "the read ran a query"
    for query in queries:
        assert query.kind == "CLIENT"
        assert request in ancestors(query, spans)
        assert query.attributes["db.system"] == observed.database_backend()
        assert query.attributes["db.statement"].startswith("SELECT")


def test_a_query_span_has_placeholders_not_values(observed: ObservedRun) -> None:
    inserts = [
        span
        for span in observed.collector.spans
        if span.kind == "CLIENT" and span.attributes.get("db.statement", "").startswith("INSERT")
    ]
    assert inserts, "creating the item ran an INSERT"
    for span in inserts:
        assert ITEM["name"] not in span.attributes["db.statement"]
{%- endif %}
{%- if cookiecutter.worker != "none" %}


def consumer_spans(collector: Collector) -> list[Span]:
    return [span for span in collector.spans if span.kind == "CONSUMER"]


def test_a_job_continues_the_trace_of_the_request_that_queued_it(observed: ObservedRun) -> None:
    spans = observed.collector.spans
    [queued] = [
        span
        for span in spans
        if span.kind == "SERVER"
        and span.attributes.get("http.request.method") == "POST"
        and span.attributes.get("http.route") == "/reports"
    ]
    producers = [span for span in spans if span.kind == "PRODUCER"]
    consumers = consumer_spans(observed.collector)
    queue = observed.settings.worker_queue
    assert [span.name for span in producers] == [PRODUCER_SPAN.format(queue=queue)]
    assert [span.name for span in consumers] == [CONSUMER_SPAN.format(queue=queue)]
    [producer], [consumer] = producers, consumers
    assert producer.trace_id == consumer.trace_id == queued.trace_id
    assert queued in ancestors(producer, spans)
    assert consumer.parent_span_id == producer.span_id
    assert consumer.resource["service.name"] == queued.resource["service.name"]
{%- endif %}


def expected_metrics() -> list[Any]:
    """Each metric the service exports, with attributes one of its data points must have."""
    return [
        # By route, not by path: one series per route, not one per item.
        pytest.param(
            "http.server.request.duration",
{%- if cookiecutter.database != "none" or cookiecutter.worker != "none" %}
            {"http.request.method": "GET", "http.response.status_code": 200, "http.route": ROUTE},
{%- else %}
            {"http.request.method": "GET", "http.response.status_code": 404},
{%- endif %}
            id="HTTP request duration",
        ),
{%- if cookiecutter.worker != "none" %}
        pytest.param(
            "job.duration",
            {"job.name": BUILD_REPORT, "job.outcome": "success"},
            id="job duration",
        ),
{%- endif %}
{%- if cookiecutter.database != "none" %}
        pytest.param("db.client.connections.usage", {"state": "idle"}, id="database pool usage"),
{%- endif %}
    ]


@pytest.mark.parametrize(("name", "attributes"), expected_metrics())
def test_metrics_arrive(observed: ObservedRun, name: str, attributes: dict[str, Any]) -> None:
    points = [point.attributes for point in observed.collector.points(name)]
    assert [point for point in points if attributes.items() <= point.items()], points
    resources = [metric.resource for metric in observed.collector.metrics if metric.name == name]
    services = {(resource["service.name"], resource["service.version"]) for resource in resources}
    assert services == {(SERVICE_NAME, RELEASE)}


def test_log_lines_carry_the_ids_of_the_span_they_were_written_in(
    observed: ObservedRun,
) -> None:
    [access] = [
        line
        for line in observed.web.json_lines()
        if line["logger"] == f"{PACKAGE}.access" and line.get("request_id") == READ_ID
    ]
    span = observed.server_span()
    assert (access["trace_id"], access["span_id"]) == (span.trace_id, span.span_id)
{%- if cookiecutter.worker != "none" %}
    assert observed.worker is not None
    [done] = [line for line in observed.worker.json_lines() if line["event"] == "report done"]
    [consumer] = consumer_spans(observed.collector)
    assert (done["trace_id"], done["span_id"]) == (consumer.trace_id, consumer.span_id)
{%- endif %}
    exported = {(span.trace_id, span.span_id) for span in observed.collector.spans}
    stamped = {
        (line["trace_id"], line["span_id"]) for line in observed.log_lines() if "trace_id" in line
    }
    assert stamped <= exported, "every stamped line names a span the collector has"


@pytest.mark.parametrize("kind", SECRETS)
def test_no_secret_leaves_in_telemetry_or_logs(observed: ObservedRun, kind: str) -> None:
    value = SECRETS[kind]
{%- if cookiecutter.database != "none" %}
    if kind == "database password" and observed.database_backend() == "sqlite":
        pytest.skip("SQLite takes no password")
{%- endif %}
    bodies = observed.collector.bodies
    assert bodies, "the collector received exports"
    assert not any(value.encode() in body for body in bodies), f"an export carries the {kind}"
    lines = [line for process in observed.processes() for line in process.stdout + process.stderr]
    assert [line for line in lines if value in line] == []


def test_the_otlp_headers_reach_the_collector(observed: ObservedRun) -> None:
    """The header secret is sent where it belongs: the collector's request headers."""
    headers = observed.collector.headers
    assert headers
    assert {request.get("authorization") for request in headers} == {f"Bearer {HEADER_SECRET}"}


# Each failure of the collector: a service of its own.


def traced_request(client: httpx.Client) -> int:
    response = client.get(TRACED[0])
    return response.status_code


def test_a_collector_down_costs_no_request_and_one_warning_until_it_is_back(
    procfile: dict[str, str], start_service: StartService, service_env: dict[str, str]
) -> None:
    with Collector() as collector:
        # Each export gives up within about a second: several failed rounds in the test's time.
        env = {**exporting_env(service_env, collector), "OTEL_EXPORTER_OTLP_TIMEOUT": "2"}
        web = start_service(procfile["web"], env)
        web.wait_until_serving()
        with httpx.Client(base_url=web.url, timeout=CLIENT_TIMEOUT) as client:
            assert traced_request(client) == TRACED[1]
            wait_for(lambda: collector.spans, "the first span")

            collector.stop()
            wait_for(lambda: events_named(web, EXPORT_FAILING), "the warning")
            down_until = time.monotonic() + DOWN_ROUNDS * EXPORT_ROUND_SECONDS
            while time.monotonic() < down_until:
                assert traced_request(client) == TRACED[1]

            collector.start()
            sent = len(collector.spans)
            assert traced_request(client) == TRACED[1]
            wait_for(lambda: events_named(web, EXPORT_RECOVERED), "the recovery")
            wait_for(lambda: len(collector.spans) > sent, "spans after the recovery")
        assert web.stop() == 0, web.output()
    [failing] = events_named(web, EXPORT_FAILING)
    [recovered] = events_named(web, EXPORT_RECOVERED)
    assert (failing["level"], failing["logger"]) == ("warning", f"{PACKAGE}.telemetry")
    assert (recovered["level"], recovered["logger"]) == ("info", f"{PACKAGE}.telemetry")
    assert web.stderr == []


def test_a_collector_that_never_answers_holds_up_no_request(
    procfile: dict[str, str], start_service: StartService, service_env: dict[str, str]
) -> None:
    with Collector() as collector:
        collector.blackhole = True
        env = {
            **exporting_env(service_env, collector),
            "OTEL_EXPORTER_OTLP_TIMEOUT": str(SLOW_EXPORT_TIMEOUT),
        }
        web = start_service(procfile["web"], env)
        web.wait_until_serving()
        with httpx.Client(base_url=web.url, timeout=CLIENT_TIMEOUT) as client:
            assert traced_request(client) == TRACED[1]
            wait_for(lambda: collector.bodies, "an export held by the collector")
            # ReadTimeout if a request waited on the held export.
            assert [traced_request(client) for _ in range(5)] == [TRACED[1]] * 5
        assert web.stop() == 0, "a stop waits for no export beyond its bound"


def test_without_an_endpoint_nothing_is_sent_or_logged(
    procfile: dict[str, str], start_service: StartService, service_env: dict[str, str]
) -> None:
    with Collector() as collector:
        # Only the SDK's own per-signal variables name the collector: nothing may read them.
        env = {
            **service_env,
            **FAST_EXPORTS,
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": f"{collector.endpoint}/v1/traces",
            "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT": f"{collector.endpoint}/v1/metrics",
        }
        web = start_service(procfile["web"], env)
        web.wait_until_serving()
        assert httpx.get(f"{web.url}{TRACED[0]}").status_code == TRACED[1]
        assert web.stop() == 0, web.output()
        assert collector.bodies == []
    events = web.json_lines()
    assert [event for event in events if event["logger"] == f"{PACKAGE}.telemetry"] == []
    assert [event for event in events if "trace_id" in event] == []
