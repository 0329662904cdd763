"""The web app in-process: health, readiness, request ids, access lines."""

from __future__ import annotations

import gc
import logging
import re
{%- if cookiecutter.web_framework == "flask" %}
from collections.abc import Iterator
{%- endif %}

import httpx2 as httpx
import pytest
{%- if cookiecutter.web_framework == "fastapi" %}
from fastapi import FastAPI, Request, Response
from fastapi.testclient import TestClient
{%- else %}
from flask import Flask, request
{%- endif %}

from {{ cookiecutter.package_name }}.app import (
    access_logger,
{%- if cookiecutter.web_framework == "flask" %}
    close_app,
{%- endif %}
    create_app,
)
{%- if cookiecutter.web_framework == "flask" %}
from {{ cookiecutter.package_name }}.server import WebServer
{%- endif %}
from {{ cookiecutter.package_name }}.settings import Settings

from .conftest import {% if cookiecutter.web_framework == "fastapi" %}app_client{% else %}wsgi_client{% endif %}

# MAX_REQUEST_BODY_BYTES, at its default in these tests.
MAX_BODY_BYTES: int = Settings.model_fields["max_request_body_bytes"].default


def test_start_up_objects_are_left_out_of_garbage_collections(settings: Settings) -> None:
    """A full collection walks only what requests create: its pause no longer stalls them all."""
    gc.unfreeze()
{%- if cookiecutter.web_framework == "fastapi" %}
    with app_client(settings):  # runs the lifespan, as each worker process does
        assert gc.get_freeze_count() > 0
{%- else %}
    close_app(WebServer(settings).load())  # as each gunicorn worker process does
    assert gc.get_freeze_count() > 0
{%- endif %}
    gc.unfreeze()


def test_healthz_answers_ok(client: httpx.Client) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "release": "dev"}


{% if cookiecutter.worker != "none" -%}
@pytest.mark.usefixtures("redis_url")  # the broker is one of the backing services
{% endif -%}
def test_readyz_reports_each_backing_service(client: httpx.Client) -> None:
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json()["status"] == "ok"
    assert all(result == "ok" for result in response.json()["checks"].values())


def test_request_id_is_generated_and_echoed(client: httpx.Client) -> None:
    response = client.get("/healthz")
    assert re.fullmatch(r"[0-9a-f]{32}", response.headers["x-request-id"])


@pytest.mark.parametrize(
    ("incoming", "kept"),
    [("abc-123", True), ("trace:7f.2_x", True), ("has space", False), ("x" * 129, False)],
    ids=["plain", "punctuated", "space", "too-long"],
)
def test_incoming_request_id_is_kept_when_safe(
    client: httpx.Client, incoming: str, kept: bool
) -> None:
    echoed = client.get("/healthz", headers={"X-Request-ID": incoming}).headers["x-request-id"]
    assert (echoed == incoming) is kept


def test_one_access_line_per_request(
    client: httpx.Client, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger=access_logger.name):
        response = client.get("/healthz", headers={"X-Request-ID": "req-1"})
    [record] = [r for r in caplog.records if r.name == access_logger.name]
    fields = vars(record)
    assert record.getMessage() == "request"
    assert (fields["method"], fields["path"], fields["status"]) == ("GET", "/healthz", 200)
    assert fields["duration_ms"] >= 0
    assert response.headers["x-request-id"] == "req-1"


@pytest.mark.parametrize(
    ("method", "path", "status", "detail"),
    [
        ("GET", "/no-such-page", 404, "Not Found"),
        ("DELETE", "/healthz", 405, "Method Not Allowed"),
    ],
    ids=["unknown-path", "wrong-method"],
)
def test_errors_are_json(
    client: httpx.Client, method: str, path: str, status: int, detail: str
) -> None:
    response = client.request(method, path)
    assert response.status_code == status
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {"detail": detail}


# Interactive docs, the schema and debug pages: each a way in for an attacker, off by default.
DOCS_PATHS = ["/docs", "/redoc", "/openapi.json"]


@pytest.mark.parametrize("path", DOCS_PATHS)
def test_docs_and_schema_are_off_by_default(client: httpx.Client, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 404
    assert response.json() == {"detail": "Not Found"}
{%- if cookiecutter.web_framework == "fastapi" %}


def test_api_docs_turns_on_the_docs_and_schema(settings: Settings) -> None:
    with app_client(settings.model_copy(update={"api_docs": True})) as enabled:
        assert enabled.get("/docs").status_code == 200
        assert enabled.get("/openapi.json").json()["info"]["title"]
{%- else %}


def test_flask_debug_cannot_turn_debug_mode_on(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A FLASK_DEBUG left in the environment must not bring debug pages or raw errors."""
    monkeypatch.setenv("FLASK_DEBUG", "1")
    app = create_app(settings)

    @app.get("/fails")
    def fails() -> str:
        raise RuntimeError("boom")

    try:
        assert app.debug is False
        with wsgi_client(app) as client:
            response = client.get("/fails")
    finally:
        close_app(app)
    assert response.status_code == 500
    assert response.json() == {"detail": "Internal Server Error"}
{%- endif %}


{% if cookiecutter.web_framework == "fastapi" -%}
@pytest.fixture
def app(settings: Settings) -> FastAPI:
    """The app, for tests that give it a route of their own."""
    return create_app(settings)


def client_of(app: FastAPI) -> TestClient:
    return TestClient(app, raise_server_exceptions=False)
{%- else -%}
@pytest.fixture
def app(settings: Settings) -> Iterator[Flask]:
    """The app, for tests that give it a route of their own."""
    app = create_app(settings)
    yield app
    close_app(app)


def client_of(app: Flask) -> httpx.Client:
    return wsgi_client(app)
{%- endif %}


def test_oversized_body_is_a_json_413(app: {% if cookiecutter.web_framework == "fastapi" %}FastAPI{% else %}Flask{% endif %}) -> None:
{%- if cookiecutter.web_framework == "fastapi" %}
    @app.post("/echo")
    async def echo(request: Request) -> Response:
        return Response(await request.body())
{%- else %}
    @app.post("/echo")
    def echo() -> bytes:
        return request.get_data()
{%- endif %}

    with client_of(app) as client:
        response = client.post("/echo", content=b"x" * (MAX_BODY_BYTES + 1))
        assert client.post("/echo", content=b"x" * MAX_BODY_BYTES).status_code == 200
    assert response.status_code == 413
    assert response.json() == {"detail": "{% if cookiecutter.web_framework == "fastapi" %}Content Too Large{% else %}Request Entity Too Large{% endif %}"}
    assert response.headers["x-request-id"]


def test_unexpected_error_is_a_json_500_and_a_logged_traceback(
    app: {% if cookiecutter.web_framework == "fastapi" %}FastAPI{% else %}Flask{% endif %}, caplog: pytest.LogCaptureFixture
) -> None:
    @app.get("/fails")
    def fails() -> str:
        raise RuntimeError("s3cret boom")

    with client_of(app) as client:
        response = client.get("/fails", headers={"X-Request-ID": "req-500"})
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {"detail": "Internal Server Error"}
    assert response.headers["x-request-id"] == "req-500"
    logged = [record for record in caplog.records if record.exc_info]
    assert [str(record.exc_info[1]) for record in logged if record.exc_info] == ["s3cret boom"]
