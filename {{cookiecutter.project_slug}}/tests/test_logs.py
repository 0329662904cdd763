"""Logs (XI): one JSON object per line on stdout, with the request id when there is one."""

from __future__ import annotations

import importlib.util
import json
import logging
import sys
from collections.abc import Iterator
from typing import Literal

import pytest

from {{ cookiecutter.package_name }}.logs import (
    ConsoleFormatter,
    JsonFormatter,
    configure_logging,
    describe_exception,
    logging_config,
    request_id,
)
from {{ cookiecutter.package_name }}.settings import load_settings

# The web server's own logger, which comes with a handler of its own.
SERVER_LOGGER = "{{ 'uvicorn' if cookiecutter.web_framework == 'fastapi' else 'gunicorn' }}.error"
{%- if cookiecutter.database == "postgresql" %}
REQUIRED = {"DATABASE_URL": "postgresql://service@db.internal:5432/app"}
{%- else %}
REQUIRED: dict[str, str] = {}
{%- endif %}


def make_record(message: str = "hello %s", *args: object, **extra: object) -> logging.LogRecord:
    record = logging.LogRecord(
        "svc.test", logging.WARNING, __file__, 1, message, args or ("world",), None
    )
    record.__dict__.update(extra)
    return record


def test_json_line_has_the_standard_fields() -> None:
    event = json.loads(JsonFormatter().format(make_record()))
    assert set(event) == {"timestamp", "level", "logger", "event"}
    assert event["level"] == "warning"
    assert event["logger"] == "svc.test"
    assert event["event"] == "hello world"
    assert event["timestamp"].endswith("Z")
{%- if cookiecutter.web_framework == "fastapi" %}


def test_json_line_carries_extra_fields_and_drops_uvicorn_colours() -> None:
    record = make_record(status=201, color_message="\x1b[36mhello\x1b[0m")
    event = json.loads(JsonFormatter().format(record))
    assert event["status"] == 201
    assert "color_message" not in event
{%- else %}


def test_json_line_carries_extra_fields() -> None:
    event = json.loads(JsonFormatter().format(make_record(status=201)))
    assert event["status"] == 201
{%- endif %}


def test_extra_fields_never_replace_the_standard_ones() -> None:
    record = make_record(level="debug", logger="forged", event="forged", timestamp="0")
    event = json.loads(JsonFormatter().format(record))
    assert event["level"] == "warning"
    assert event["logger"] == "svc.test"
    assert event["event"] == "hello world"
    assert event["timestamp"].endswith("Z")


def test_json_line_carries_the_current_request_id() -> None:
    token = request_id.set("req-42")
    try:
        event = json.loads(JsonFormatter().format(make_record()))
    finally:
        request_id.reset(token)
    assert event["request_id"] == "req-42"


def test_exception_stays_on_one_line() -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        record = make_record()
        record.exc_info = sys.exc_info()
    line = JsonFormatter().format(record)
    assert "\n" not in line
    assert "ValueError: boom" in json.loads(line)["exception"]


def test_console_format_is_readable() -> None:
    line = ConsoleFormatter().format(make_record(status=201))
    assert "WARNING" in line
    assert "svc.test: hello world status=201" in line


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.mark.usefixtures("restore_logging")
@pytest.mark.parametrize("log_format", ["json", "console"])
def test_configured_logging_writes_to_stdout_only(
    capsys: pytest.CaptureFixture[str], log_format: Literal["json", "console"]
) -> None:
    configure_logging(load_settings({**REQUIRED, "LOG_FORMAT": log_format, "LOG_LEVEL": "INFO"}))
    logging.getLogger(SERVER_LOGGER).info("server line")
    captured = capsys.readouterr()
    assert "server line" in captured.out
    assert captured.err == ""
    if log_format == "json":
        assert json.loads(captured.out)["logger"] == SERVER_LOGGER


def test_configures_only_loggers_of_installed_libraries() -> None:
    config = logging_config(load_settings({**REQUIRED, "LOG_FORMAT": "json", "LOG_LEVEL": "INFO"}))
    for name in config["loggers"]:
        assert importlib.util.find_spec(name.partition(".")[0]) is not None, name


class WrappedError(Exception):
    """Shaped like SQLAlchemy's DBAPIError: the driver's exception is `orig`."""

    def __init__(self, orig: Exception) -> None:
        super().__init__(f"(wrapped) {orig}\n[SQL: SELECT 1]")
        self.orig = orig


@pytest.mark.parametrize(
    ("exc", "described"),
    [
        (ValueError("bad\n\tdetail"), "ValueError: bad"),
        (WrappedError(ConnectionError("refused\nhint")), "ConnectionError: refused"),
        (TimeoutError(), "TimeoutError"),
    ],
    ids=["first-line", "driver-error", "no-message"],
)
def test_describe_exception_is_one_line(exc: Exception, described: str) -> None:
    assert describe_exception(exc) == described
