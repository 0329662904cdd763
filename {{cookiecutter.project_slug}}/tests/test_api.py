"""The web app in-process: health, readiness, request ids, access lines."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from {{ cookiecutter.package_name }}.app import access_logger, create_app
from {{ cookiecutter.package_name }}.settings import Settings


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def test_healthz_answers_ok(client: TestClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_readyz_reports_each_backing_service(client: TestClient) -> None:
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json()["status"] == "ok"
    assert all(result == "ok" for result in response.json()["checks"].values())


def test_request_id_is_generated_and_echoed(client: TestClient) -> None:
    response = client.get("/healthz")
    assert re.fullmatch(r"[0-9a-f]{32}", response.headers["x-request-id"])


@pytest.mark.parametrize(
    ("incoming", "kept"),
    [("abc-123", True), ("trace:7f.2_x", True), ("has space", False), ("x" * 129, False)],
    ids=["plain", "punctuated", "space", "too-long"],
)
def test_incoming_request_id_is_kept_when_safe(
    client: TestClient, incoming: str, kept: bool
) -> None:
    echoed = client.get("/healthz", headers={"X-Request-ID": incoming}).headers["x-request-id"]
    assert (echoed == incoming) is kept


def test_one_access_line_per_request(client: TestClient, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger=access_logger.name):
        response = client.get("/healthz", headers={"X-Request-ID": "req-1"})
    [record] = [r for r in caplog.records if r.name == access_logger.name]
    fields = vars(record)
    assert record.getMessage() == "request"
    assert (fields["method"], fields["path"], fields["status"]) == ("GET", "/healthz", 200)
    assert fields["duration_ms"] >= 0
    assert response.headers["x-request-id"] == "req-1"


def test_api_docs_are_off_unless_enabled(settings: Settings) -> None:
    with TestClient(create_app(settings)) as client:
        assert client.get("/docs").status_code == 404
        assert client.get("/openapi.json").status_code == 404
    with TestClient(create_app(settings.model_copy(update={"api_docs": True}))) as client:
        assert client.get("/docs").status_code == 200
        assert client.get("/openapi.json").status_code == 200
{%- if cookiecutter.database != "none" %}


@pytest.fixture
def client_without_database(unused_port: int) -> Iterator[TestClient]:
    url = f"postgresql://app:s3cret-pw@127.0.0.1:{unused_port}/app"
    with TestClient(create_app(Settings(_env_file=None, database_url=url))) as test_client:
        yield test_client


def test_readyz_is_503_with_the_reason_when_the_database_is_down(
    client_without_database: TestClient,
) -> None:
    response = client_without_database.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["checks"]["database"].startswith("OperationalError")
    assert "s3cret-pw" not in response.text


def test_healthz_stays_up_when_the_database_is_down(client_without_database: TestClient) -> None:
    assert client_without_database.get("/healthz").status_code == 200


def test_requests_needing_the_database_fail_fast_with_503(
    client_without_database: TestClient,
) -> None:
    response = client_without_database.post("/items", json={"name": "x"})
    assert response.status_code == 503
    assert response.json() == {"detail": "database unavailable"}
{%- endif %}
