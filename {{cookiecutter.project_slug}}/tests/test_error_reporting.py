"""Error reporting (Sentry): what a real web process sends about an unhandled error.

The web process reports to `ingest.Ingest`, a stand-in for Sentry's ingest in
the test process.
{%- if cookiecutter.database != "none" %} The error is real: the item it reads has a name that is
not text, stored behind the service's back, so building the response fails
in the service's own code (a bug's symptom; a database outage is answered
503 and is no bug).
{%- elif cookiecutter.worker != "none" %} The error is real: where the report's hash lives, Redis
holds a string, stored behind the service's back, so reading it fails with an
error no outage handler answers (a bug's symptom).
{%- else %} This service has no code path that fails on a request: a
test shows that what it answers is not reported, and that it runs with a DSN.
{%- endif %}
"""

from __future__ import annotations

import secrets
from typing import Any

import httpx2 as httpx
import pytest
{%- if cookiecutter.database == "none" and cookiecutter.worker != "none" %}
from redis import Redis
{%- endif %}
{%- if cookiecutter.database != "none" %}
from sqlalchemy import create_engine, make_url, text

from {{ cookiecutter.package_name }}.db import engine_url, migrate
{%- elif cookiecutter.worker != "none" %}

from {{ cookiecutter.package_name }}.reports import ReportStore
from {{ cookiecutter.package_name }}.settings import Settings
{%- endif %}

from .ingest import Envelope, Ingest
from .processes import ServiceProcess, StartService{% if cookiecutter.database != "none" or cookiecutter.worker != "none" %}, wait_for{% endif %}

# Every test here starts real processes: `make test-fast` leaves the module out.
pytestmark = pytest.mark.processes

RELEASE = "errors-3b8d"
ENVIRONMENT = "staging-7"
# Secrets the service is given or sent with the failing request: none may be reported.
DSN_KEY = secrets.token_hex(16)
QUERY_TOKEN = f"query-{secrets.token_hex(8)}"
COOKIE = f"cookie-{secrets.token_hex(8)}"
{%- if cookiecutter.database != "none" %}
DATABASE_PASSWORD = f"password-{secrets.token_hex(8)}"
{%- endif %}
{%- if cookiecutter.use_opentelemetry %}
OTLP_HEADER = f"header-{secrets.token_hex(8)}"
{%- endif %}
SECRETS = {
    "DSN key": DSN_KEY,
    "query token": QUERY_TOKEN,
    "cookie": COOKIE,
{%- if cookiecutter.database != "none" %}
    "database password": DATABASE_PASSWORD,
{%- endif %}
{%- if cookiecutter.use_opentelemetry %}
    "OTLP header": OTLP_HEADER,
{%- endif %}
}
{%- if cookiecutter.database != "none" %}
# The failing request, and the error it meets: pydantic refusing the stored name.
FAILING_PATH = "/items/1"
ERROR_TYPE = "ValidationError"
# What stores a name that is not text: one byte that is no UTF-8.
UNREADABLE_NAME = {
    "postgresql": "ALTER TABLE items ALTER COLUMN name TYPE bytea USING decode('ff', 'hex')",
    "sqlite": "UPDATE items SET name = X'FF'",
}
{%- elif cookiecutter.worker != "none" %}
# The failing request, and the error it meets: Redis refusing HGETALL on a string.
FAILING_PATH = "/reports/1"
ERROR_TYPE = "ResponseError"
{%- endif %}


def reporting_env(env: dict[str, str], ingest: Ingest) -> dict[str, str]:
    """`env` reporting to `ingest`, as release RELEASE in environment ENVIRONMENT."""
    return {
        **env,
        "SENTRY_DSN": ingest.dsn(DSN_KEY),
        "SENTRY_ENVIRONMENT": ENVIRONMENT,
        "RELEASE_ID": RELEASE,
{%- if cookiecutter.use_opentelemetry %}
        "OTEL_EXPORTER_OTLP_HEADERS": f"authorization=Bearer%20{OTLP_HEADER}",
{%- endif %}
    }


def leaked(envelope: Envelope) -> list[str]:
    """The secrets found anywhere in the envelope as it arrived."""
    return [name for name, value in SECRETS.items() if value.encode() in envelope.raw]


def serve(start_service: StartService, command: str, env: dict[str, str]) -> ServiceProcess:
    web = start_service(command, env)
    web.wait_until_serving()
    return web


def logged_errors(web: ServiceProcess) -> list[dict[str, Any]]:
    """The lines logged at ERROR with a traceback."""
    return [line for line in web.json_lines() if line["level"] == "error" and "exception" in line]
{%- if cookiecutter.database != "none" %}


@pytest.fixture
def failing_env(service_env: dict[str, str], empty_database_url: str) -> dict[str, str]:
    """The service's environment, on a database whose item 1 has a name that is not text.

    Where the database takes a password, its URL carries one.
    """
    url = make_url(empty_database_url)
    if url.get_backend_name() != "sqlite":
        url = url.set(password=DATABASE_PASSWORD)
    database_url = url.render_as_string(hide_password=False)
    engine = create_engine(engine_url(database_url))
    migrate(engine)
    with engine.begin() as connection:
        connection.execute(text("INSERT INTO items (name) VALUES ('bolt')"))
        connection.execute(text(UNREADABLE_NAME[url.get_backend_name()]))
    engine.dispose()
    return {**service_env, "DATABASE_URL": database_url}
{%- elif cookiecutter.worker != "none" %}


@pytest.fixture
def failing_env(service_env: dict[str, str], settings: Settings, redis_url: str) -> dict[str, str]:
    """The service's environment, with a string where report 1's hash lives.

    `redis_url` deletes it afterwards, with every key of the test's queue.
    """
    store = ReportStore(settings)
    with Redis.from_url(redis_url) as redis:
        redis.set(store.key(1), "not a hash")
    store.close()
    return service_env
{%- endif %}
{%- if cookiecutter.database != "none" or cookiecutter.worker != "none" %}


def test_an_unhandled_error_is_reported_once_with_release_environment_and_request_id(
    procfile: dict[str, str], start_service: StartService, failing_env: dict[str, str]
) -> None:
    with Ingest() as ingest:
        web = serve(start_service, procfile["web"], reporting_env(failing_env, ingest))
        with httpx.Client(base_url=web.url) as client:
            assert client.get("/no-such-path").status_code == 404
            response = client.get(
                FAILING_PATH,
                params={"token": QUERY_TOKEN},
                headers={"Cookie": f"session={COOKIE}"},
            )
        assert response.status_code == 500
        wait_for(ingest.events, "the error's event")
        assert web.stop() == 0, web.output()

    [event] = ingest.events()
    assert event["level"] == "error"
    assert event["exception"]["values"][-1]["type"] == ERROR_TYPE
    assert (event["release"], event["environment"]) == (RELEASE, ENVIRONMENT)
    assert event["tags"]["request_id"] == response.headers["x-request-id"]
    envelopes = ingest.envelopes
    assert {envelope.project for envelope in envelopes} == {"1"}
    assert [secret for envelope in envelopes for secret in leaked(envelope)] == []


def test_without_a_dsn_an_unhandled_error_is_only_logged(
    procfile: dict[str, str], start_service: StartService, failing_env: dict[str, str]
) -> None:
    """Nothing is sent: the service knows no ingest. The error is still answered and logged."""
    web = serve(start_service, procfile["web"], {**failing_env, "RELEASE_ID": RELEASE})
    response = httpx.get(f"{web.url}{FAILING_PATH}")
    assert response.status_code == 500
    assert web.stop() == 0, web.output()
    [error] = logged_errors(web)
    assert error["request_id"] == response.headers["x-request-id"]
    assert [line for line in web.json_lines() if line["logger"].startswith("sentry")] == []
{%- else %}


def test_what_the_service_answers_is_not_reported(
    procfile: dict[str, str], start_service: StartService, service_env: dict[str, str]
) -> None:
    with Ingest() as ingest:
        web = serve(start_service, procfile["web"], reporting_env(service_env, ingest))
        with httpx.Client(base_url=web.url) as client:
            assert client.get("/no-such-path", params={"token": QUERY_TOKEN}).status_code == 404
            assert client.get("/readyz").status_code == 200
        assert web.stop() == 0, web.output()
    assert ingest.events() == []
    assert [secret for envelope in ingest.envelopes for secret in leaked(envelope)] == []
    assert logged_errors(web) == []
{%- endif %}
