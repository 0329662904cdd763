"""Error reporting (Sentry): unhandled errors go to SENTRY_DSN, with the release and request id.

`start` sets up sentry-sdk in a process that has a DSN; only such processes
import this module (see `Settings.reports_errors`). Sentry's integrations for
the web framework{% if cookiecutter.database != "none" %}, SQLAlchemy{% endif %}{% if cookiecutter.worker != "none" %}, the job queue{% endif %} and logging turn on by themselves:
an unhandled error, or a line logged at ERROR with its exception, becomes an
event. Traces are OpenTelemetry's affair, not Sentry's: none are sent here.

What an event must never carry is taken out before it leaves (`scrubbed`):
the request's query string, cookies and body, any URL's query in any text,
and the value of every secret setting wherever it appears: in a message, a URL
or a frame's variables.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any
from urllib.parse import quote, unquote, urlsplit

import sentry_sdk
from pydantic import SecretStr
from sentry_sdk.types import Event, Hint

from . import logs
from .settings import Settings

FILTERED = "[Filtered]"
# A secret this short is replaced only where it is a whole value: as a substring it would
# match all over an event.
SHORTEST_FILTERED_SUBSTRING = 6
# What a stopping process gives events still in the send queue.
FLUSH_TIMEOUT_SECONDS = 2
# Parts of a request that clients fill with anything: tokens, personal data.
UNSENT_REQUEST_PARTS = ("query_string", "cookies", "data")
# The query of a URL written into any text (a request's repr among a frame's variables).
QUERY_IN_TEXT = re.compile(r"(\bhttps?://[^\s?#'\"<>]*)\?[^\s#'\"<>]*")


def start(settings: Settings) -> None:
    """Report this process's unhandled errors to SENTRY_DSN; a second call changes nothing."""
    if sentry_sdk.get_client().is_active():
        return
    secrets = sorted(secret_values(settings), key=len, reverse=True)

    def before_send(event: Event, _hint: Hint) -> Event:
        return scrubbed(event, secrets)

    sentry_sdk.init(
        dsn=settings.sentry_dsn.get_secret_value(),
        release=settings.release_id,
        environment=settings.sentry_environment,
        send_default_pii=False,
        max_request_body_size="never",
        # A frame's variables hold the raw request (its Cookie and Authorization headers among
        # them) in shapes no scrubber can name: the stack is sent, its variables are not.
        include_local_variables=False,
        before_send=before_send,
    )


def flush() -> None:
    """Send the events still queued, within FLUSH_TIMEOUT_SECONDS: the process is ending."""
    sentry_sdk.flush(FLUSH_TIMEOUT_SECONDS)


def secret_values(settings: Settings) -> set[str]:
    """Every secret setting's value, and each password in one as written and decoded."""
    values: set[str] = set()
    for name in type(settings).model_fields:
        value = getattr(settings, name)
        if not isinstance(value, SecretStr) or not (text := value.get_secret_value()):
            continue
        values.add(text)
        try:
            url = urlsplit(text)
            parts = (url.password, url.username if url.scheme in ("http", "https") else None)
        except ValueError:
            continue
        for part in filter(None, parts):
            values.update({part, unquote(part), quote(unquote(part), safe="")})
    return values


def scrubbed(event: Event, secrets: Iterable[str]) -> Event:
    """The event with the request id as a tag, and without what must not leave the process."""
    if request_id := logs.request_id.get():
        event.setdefault("tags", {})["request_id"] = request_id
    request = event.get("request")
    if isinstance(request, dict):
        for part in UNSENT_REQUEST_PARTS:
            request.pop(part, None)
        if isinstance(url := request.get("url"), str):
            request["url"] = url.partition("?")[0]
    result: Event = without_secrets(event, tuple(secrets))
    return result


def without_secrets(value: Any, secrets: tuple[str, ...]) -> Any:
    """`value` with every secret and URL query in its strings replaced by FILTERED, recursively."""
    if isinstance(value, str):
        value = QUERY_IN_TEXT.sub(rf"\1?{FILTERED}", value)
        for secret in secrets:
            if value == secret:
                return FILTERED
            if len(secret) >= SHORTEST_FILTERED_SUBSTRING:
                value = value.replace(secret, FILTERED)
        return value
    if isinstance(value, dict):
        return {key: without_secrets(item, secrets) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [without_secrets(item, secrets) for item in value]
    return value
