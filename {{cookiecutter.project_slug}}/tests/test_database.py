"""Backing services (IV): a database outage makes the service unready, not dead.

/readyz answers 503 with the reason, /healthz stays 200, and requests that need
the database fail fast with 503 instead of hanging or answering 500.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx2 as httpx
import pytest

from {{ cookiecutter.package_name }}.settings import load_settings

from .conftest import app_client


@pytest.fixture
def client_without_database(unused_port: int) -> Iterator[httpx.Client]:
    url = f"postgresql://app:s3cret-pw@127.0.0.1:{unused_port}/app"
    with app_client(load_settings({"DATABASE_URL": url})) as test_client:
        yield test_client


def test_readyz_is_503_with_the_reason_when_the_database_is_down(
    client_without_database: httpx.Client,
) -> None:
    response = client_without_database.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["checks"]["database"].startswith("OperationalError")
    assert "s3cret-pw" not in response.text


def test_healthz_stays_up_when_the_database_is_down(client_without_database: httpx.Client) -> None:
    assert client_without_database.get("/healthz").status_code == 200


def test_requests_needing_the_database_fail_fast_with_503(
    client_without_database: httpx.Client,
) -> None:
    response = client_without_database.post("/items", json={"name": "x"})
    assert response.status_code == 503
    assert response.json() == {"detail": "database unavailable"}
