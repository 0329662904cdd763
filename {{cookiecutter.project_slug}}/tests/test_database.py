"""Backing services (IV): a database outage makes the service unready, not dead.

/readyz answers 503 naming the failed check (the reason goes to the log),
/healthz stays 200, and requests that need the database fail fast with 503
instead of hanging or answering 500. Nothing shows a password.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import httpx2 as httpx
import pytest

from {{ cookiecutter.package_name }}.cli import EXIT_CONFIG, main
from {{ cookiecutter.package_name }}.settings import load_settings

from .conftest import app_client


@pytest.fixture
def client_without_database(unused_port: int) -> Iterator[httpx.Client]:
    url = f"postgresql://app:s3cret-pw@127.0.0.1:{unused_port}/app"
    with app_client(load_settings({"DATABASE_URL": url})) as test_client:
        yield test_client


def warnings_logged(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [record for record in caplog.records if record.levelno >= logging.WARNING]


def test_readyz_names_the_failed_check_and_logs_why(
    client_without_database: httpx.Client, caplog: pytest.LogCaptureFixture, unused_port: int
) -> None:
    response = client_without_database.get("/readyz")
    assert response.status_code == 503
    # /readyz is unauthenticated: no host, port, user or driver text.
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["checks"]["database"] == "unavailable"
    [record] = warnings_logged(caplog)
    assert record.getMessage() == "readiness check failed"
    assert vars(record)["check"] == "database"
    assert vars(record)["error"].startswith("OperationalError")
    assert str(unused_port) in vars(record)["error"]  # the log says which server
    assert "s3cret-pw" not in vars(record)["error"]


def test_healthz_stays_up_when_the_database_is_down(client_without_database: httpx.Client) -> None:
    assert client_without_database.get("/healthz").status_code == 200


def test_requests_needing_the_database_fail_fast_with_503(
    client_without_database: httpx.Client,
) -> None:
    response = client_without_database.post("/items", json={"name": "x"})
    assert response.status_code == 503
    assert response.json() == {"detail": "database unavailable"}


def assert_503_with_one_log_line_each(
    client: httpx.Client, caplog: pytest.LogCaptureFixture
) -> None:
    for method, path, body in (("GET", "/readyz", None), ("POST", "/items", {"name": "x"})):
        caplog.clear()
        response = client.request(method, path, json=body)
        assert response.status_code == 503, response.text
        [record] = warnings_logged(caplog)
        assert record.exc_info is None  # one line, no traceback


def test_a_host_that_does_not_resolve_is_503_and_one_log_line(
    caplog: pytest.LogCaptureFixture,
) -> None:
    settings = load_settings({"DATABASE_URL": "postgresql://app@no-such-host.invalid/app"})
    with app_client(settings) as client:
        assert_503_with_one_log_line_each(client, caplog)


def test_a_sqlite_file_made_unusable_after_start_is_503_and_one_log_line(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    directory = tmp_path / "data"
    directory.mkdir()
    settings = load_settings({"DATABASE_URL": f"sqlite:///{directory / 'app.sqlite3'}"})
    directory.rmdir()
    directory.write_text("")  # a file where its directory was: nothing can open it
    with app_client(settings) as client:
        assert_503_with_one_log_line_each(client, caplog)


def test_migrate_says_in_one_line_that_the_sqlite_directory_cannot_be_made(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    if not Path("/proc/self").is_dir():
        pytest.skip("needs /proc, where no one can make a directory")
    monkeypatch.setenv("DATABASE_URL", "sqlite:////proc/no-such-directory/app.sqlite3")
    # Refused by the settings, or (as root, who may write anywhere else) when made.
    assert main(["migrate"]) in (1, EXIT_CONFIG)
    output = capsys.readouterr()
    [line] = (output.out + output.err).splitlines()
    assert "/proc" in line
