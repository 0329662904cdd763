"""Logs (factor XI): every event is one line on stdout, routed by the platform.

Each line is a JSON object with `timestamp`, `level`, `logger`, `event` and
`release` (RELEASE_ID), plus the request id while a request is served and any `extra=` fields; with
LOG_FORMAT=console the same fields are printed as readable text. The same
configuration is applied in every process: web workers, admin commands, tests.
"""

from __future__ import annotations

import json
import logging
import logging.config
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

from .settings import Settings

request_id: ContextVar[str | None] = ContextVar("request_id", default=None)

# Attributes every LogRecord has; any other attribute came from `extra=`.
_RECORD_ATTRIBUTES = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "taskName",
{%- if cookiecutter.web_framework == "fastapi" %}
    "color_message",  # uvicorn's ANSI-coloured copy of the message
{%- endif %}
}


def event_fields(record: logging.LogRecord, release: str | None = None) -> dict[str, Any]:
    """The fields of one log line, in the order they are written."""
    fields: dict[str, Any] = {
        "timestamp": datetime.fromtimestamp(record.created, UTC)
        .isoformat(timespec="milliseconds")
        .replace("+00:00", "Z"),
        "level": record.levelname.lower(),
        "logger": record.name,
        "event": record.getMessage(),
    }
    if release is not None:
        fields["release"] = release
    current_request = request_id.get()
    if current_request is not None:
        fields["request_id"] = current_request
    for key, value in vars(record).items():
        # An `extra=` key never overwrites a core field: the line stays what it claims to be.
        if key not in _RECORD_ATTRIBUTES and key not in fields:
            fields[key] = value
    if record.exc_info:
        fields["exception"] = logging.Formatter().formatException(record.exc_info)
    return fields


class EventFormatter(logging.Formatter):
    """A formatter of `event_fields`, stamping each line with the process's release."""

    def __init__(self, release: str | None = None) -> None:
        super().__init__()
        self.release = release


class JsonFormatter(EventFormatter):
    """One JSON object per line; values JSON cannot hold are written as strings."""

    def format(self, record: logging.LogRecord) -> str:
        return json.dumps(event_fields(record, self.release), default=str, ensure_ascii=False)


class ConsoleFormatter(EventFormatter):
    """`12:00:00.000 INFO     logger: event key=value` for a developer's terminal."""

    def format(self, record: logging.LogRecord) -> str:
        fields = event_fields(record, self.release)
        exception = fields.pop("exception", None)
        line = "{time} {level:<8} {logger}: {event}".format(
            time=fields.pop("timestamp")[11:23],
            level=fields.pop("level").upper(),
            logger=fields.pop("logger"),
            event=fields.pop("event"),
        )
        line += "".join(f" {key}={value}" for key, value in fields.items())
        return f"{line}\n{exception}" if exception else line


def describe_exception(exc: BaseException) -> str:
    """One line naming a failure: the driver's error if wrapped, its first line, no SQL."""
    cause = getattr(exc, "orig", None) or exc
    lines = str(cause).strip().splitlines()
    return f"{type(cause).__name__}: {lines[0]}" if lines else type(cause).__name__


def logging_config(settings: Settings) -> dict[str, Any]:
    """A `logging.config.dictConfig` schema; the web server applies it in its processes too."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {
            # Every process's formatter stamps its lines with the release it runs.
            "json": {"()": JsonFormatter, "release": settings.release_id},
            "console": {"()": ConsoleFormatter, "release": settings.release_id},
        },
        "handlers": {
            "stdout": {
                "class": "logging.StreamHandler",
                "stream": "ext://sys.stdout",
                "formatter": settings.log_format,
            },
        },
        "loggers": {
{%- if cookiecutter.web_framework == "fastapi" %}
            # uvicorn's loggers bring their own handlers; send them through ours.
            "uvicorn": {"handlers": [], "propagate": True},
            "uvicorn.error": {"handlers": [], "propagate": True},
            # The app writes its own access line, with the request id.
            "uvicorn.access": {"handlers": [], "propagate": False},
{%- else %}
            # gunicorn's loggers bring their own handlers (stderr); send them through ours.
            "gunicorn.error": {"handlers": [], "propagate": True},
            # The app writes its own access line, with the request id.
            "gunicorn.access": {"handlers": [], "propagate": False},
{%- endif %}
{%- if cookiecutter.database != "none" %}
            # Alembic announces each of its plugins at INFO on import.
            "alembic.runtime.plugins": {"level": "WARNING"},
{%- endif %}
        },
        "root": {"handlers": ["stdout"], "level": settings.log_level},
    }


def configure_logging(settings: Settings) -> None:
    logging.config.dictConfig(logging_config(settings))
    logging.captureWarnings(True)
