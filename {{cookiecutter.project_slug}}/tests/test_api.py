"""The web app in-process: health, readiness, request ids, access lines."""

from __future__ import annotations

import logging
import re

import pytest
from fastapi.testclient import TestClient

from {{ cookiecutter.package_name }}.app import access_logger, create_app
from {{ cookiecutter.package_name }}.settings import Settings


def test_healthz_answers_ok(client: TestClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


{% if cookiecutter.worker != "none" -%}
@pytest.mark.usefixtures("redis_url")  # the broker is one of the backing services
{% endif -%}
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


def test_api_docs_are_off_unless_enabled(client: TestClient, settings: Settings) -> None:
    assert client.get("/docs").status_code == 404
    assert client.get("/openapi.json").status_code == 404
    with TestClient(create_app(settings.model_copy(update={"api_docs": True}))) as enabled:
        assert enabled.get("/docs").status_code == 200
        assert enabled.get("/openapi.json").status_code == 200
