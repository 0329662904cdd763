"""Config (factor III): every setting comes from the environment.

A `.env` file in the working directory is read for local development; a real
environment variable always wins over it. Names are the platform-standard
ones, unprefixed, so Heroku-style platforms and Kubernetes can set them.

Each field of `Settings` is annotated with a `Setting`: its default, meaning
and allowed values. `load_settings` checks them here, not with pydantic: a
setting needs a few simple types (integers in a range, choices, booleans,
text of a pattern, secrets), and importing pydantic would add a third to a
Flask web process's start.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Annotated, Any, Literal, get_args, get_origin, get_type_hints
from urllib.parse import {% if cookiecutter.database != "none" %}SplitResult, {% endif %}unquote, urlsplit, urlunsplit

from dotenv import dotenv_values

LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]
{%- if cookiecutter.database != "none" %}

DATABASE_SCHEMES = ("sqlite", "postgresql", "postgres", "postgresql+psycopg")
{%- endif %}
{%- if cookiecutter.worker != "none" %}
REDIS_SCHEMES = ("redis", "rediss")
REDIS_DATABASE_PATH = re.compile(r"(/[0-9]*)?")
{%- endif %}
# Where platforms put the deployed version, read when RELEASE_ID is empty; first set wins.
RELEASE_FALLBACKS = (
    "SOURCE_VERSION",  # Heroku (build), Scalingo
    "HEROKU_RELEASE_VERSION",  # Heroku dyno metadata: v42
    "K_REVISION",  # Cloud Run, Knative
    "FLY_MACHINE_VERSION",  # Fly.io
    "RENDER_GIT_COMMIT",  # Render
    "GIT_COMMIT",  # CI servers; any build setting it
)
DEFAULT_RELEASE = "dev"
# Read from the working directory, for local development.
ENV_FILE = ".env"
BOOLEANS = {"true": True, "1": True, "yes": True, "on": True}
BOOLEANS |= {"false": False, "0": False, "no": False, "off": False}


@dataclass(frozen=True)
class Secret:
    """A value that is never shown: not in reprs, and masked by check-config."""

    value: str = field(repr=False)

    def get_secret_value(self) -> str:
        return self.value


@dataclass(frozen=True)
class Setting:
    """How one variable is read; `Settings` annotates each field with one."""

    default: str | None  # as written in .env; None: the variable is required
    description: str
    example: str = ""  # for a required variable, shown in .env.example
    between: tuple[int, int] | None = None  # an integer's bounds, both included
    pattern: str | None = None  # text: the whole value must match
    before: Callable[[str], str] | None = None  # applied to the text first
    after: Callable[[Any], Any] | None = None  # completes the value; ValueError if it is bad


@dataclass(frozen=True, kw_only=True)
class Settings:
    """The service's whole configuration, read once at process start by `load_settings`."""

    port: Annotated[int, Setting("8000", "TCP port the web process binds.", between=(1, 65535))]
    web_concurrency: Annotated[
        int, Setting("1", "Number of web worker processes.", between=(1, 64))
    ]
    graceful_timeout: Annotated[
        int,
        Setting(
            "20",
            "Seconds to finish in-flight requests after SIGTERM before closing them.",
            between=(1, 3600),
        ),
    ]
    log_level: Annotated[
        LogLevel, Setting("INFO", "Lowest level that is logged.", before=str.upper)
    ]
    log_format: Annotated[
        Literal["json", "console"],
        Setting("json", "json: one JSON object per line; console: readable lines for a terminal."),
    ]
    release_id: Annotated[
        str,
        Setting(
            "",
            "Release on every log line and in /healthz; empty: the first set of "
            + ", ".join(RELEASE_FALLBACKS)
            + f", else {DEFAULT_RELEASE}.",
            pattern=r"[A-Za-z0-9._:/@+-]{0,128}",
            after=release_or_fallback,
        ),
    ]
{%- if cookiecutter.web_framework == "fastapi" %}
    api_docs: Annotated[
        bool,
        Setting(
            "false", "Serve the OpenAPI schema at /openapi.json and interactive docs at /docs."
        ),
    ]
{%- endif %}
{%- if cookiecutter.database == "sqlite" %}
    database_url: Annotated[
        Secret,
        Setting(
            "sqlite:///.data/{{ cookiecutter.package_name }}.sqlite3",
            "SQLAlchemy-style database URL: sqlite:///path or postgresql://user:password@host/db.",
            after=supported_database,
        ),
    ]
{%- elif cookiecutter.database == "postgresql" %}
    database_url: Annotated[
        Secret,
        Setting(
            None,
            "SQLAlchemy-style database URL: postgresql://user:password@host/db or sqlite:///path.",
            example="postgresql://postgres@localhost:5432/{{ cookiecutter.package_name }}",
            after=supported_database,
        ),
    ]
{%- endif %}
{%- if cookiecutter.worker != "none" %}
    redis_url: Annotated[
        Secret,
        Setting(
            "redis://localhost:6379/0",
            "Redis URL of the job queue: redis://:password@host:6379/0 or rediss:// (TLS).",
            after=supported_redis,
        ),
    ]
    worker_queue: Annotated[
        str,
        Setting(
            "{{ cookiecutter.package_name }}",
            "Name of the job queue in Redis; give each service (and each test run)"
            " sharing a Redis its own.",
            pattern=r"[A-Za-z0-9_.-]{1,64}",
        ),
    ]
{%- endif %}
{%- if cookiecutter.worker == "celery" %}
    worker_concurrency: Annotated[
        int,
        Setting(
            "1",
            "Jobs one worker process runs at once; scale further with more worker processes.",
            between=(1, 64),
        ),
    ]
    worker_visibility_timeout: Annotated[
        int,
        Setting(
            "600",
            "Seconds before an unacknowledged job goes to another worker: a dead worker's"
            " job is redelivered then; a job running longer than this runs twice.",
            between=(1, 86400),
        ),
    ]
{%- elif cookiecutter.worker == "rq" %}
    worker_maintenance_interval: Annotated[
        int,
        Setting(
            "60",
            "Seconds between sweeps for jobs of dead workers; such a job is retried"
            " at the first sweep 65 s after its worker's last heartbeat.",
            between=(1, 3600),
        ),
    ]
{%- endif %}
{%- if cookiecutter.database != "none" %}


def supported_database(value: Secret) -> Secret:
    url = checked_url(value, DATABASE_SCHEMES)
    if url.scheme == "sqlite" and (
        url.netloc or not value.get_secret_value().startswith("sqlite://")
    ):
        # SQLAlchemy cannot parse sqlite:path and refuses sqlite://host/path.
        raise ValueError("a SQLite URL is sqlite:///relative/path or sqlite:////absolute/path")
    if url.scheme != "sqlite" and not url.hostname and "host=" not in url.query:
        raise ValueError("a PostgreSQL URL needs a host, e.g. postgresql://user@localhost/db")
    return value
{%- endif %}
{%- if cookiecutter.worker != "none" %}


def supported_redis(value: Secret) -> Secret:
    url = checked_url(value, REDIS_SCHEMES)
    if not url.hostname:
        raise ValueError("a Redis URL needs a host, e.g. redis://localhost:6379/0")
    if not REDIS_DATABASE_PATH.fullmatch(url.path):
        raise ValueError("the path must be a database number, e.g. redis://localhost:6379/0")
    # redis-py's own parser checks the query's options (connecting to nothing);
    # its messages never quote the URL.
    from redis import ConnectionPool

    ConnectionPool.from_url(value.get_secret_value())
    return value
{%- endif %}
{%- if cookiecutter.database != "none" %}


def checked_url(value: Secret, schemes: tuple[str, ...]) -> SplitResult:
    """The URL split into parts; ValueError unless its scheme is allowed and its port valid."""
    url = urlsplit(value.get_secret_value())
    if url.scheme not in schemes:
        allowed = ", ".join(f"{scheme}://" for scheme in schemes)
        given = f"{url.scheme}://" if url.scheme else "(none)"
        raise ValueError(f"scheme {given} is not one of {allowed}")
    try:
        _ = url.port  # raises for a non-numeric or out-of-range port
    except ValueError:
        # The error would quote the port text, which may be part of a password.
        raise ValueError("invalid port (percent-encode / # ? @ in the password)") from None
    return url
{%- endif %}


def release_or_fallback(value: str) -> str:
    return value or platform_release()


def platform_release() -> str:
    """The release the platform names in its own variable, else `dev`."""
    for name in RELEASE_FALLBACKS:
        if value := os.environ.get(name, "").strip():
            return value
    return DEFAULT_RELEASE


class ConfigError(Exception):
    """The environment does not make a valid configuration."""

    def __init__(self, lines: list[str]) -> None:
        super().__init__("\n".join(lines))
        self.lines = lines


@cache
def schema() -> dict[str, tuple[Any, Setting]]:
    """Each setting's field name, type and `Setting`, in the order they are declared."""
    hints = get_type_hints(Settings, include_extras=True)
    return {name: get_args(hint) for name, hint in hints.items()}


def environment() -> dict[str, str]:
    """Every variable: the environment's, else `.env`'s if the file exists."""
    # A line with a name but no `=` gives None: as if the name were not there.
    from_file = dotenv_values(ENV_FILE).items()
    variables = {name: value for name, value in from_file if value is not None}
    variables.update(os.environ)
    return variables


def load_settings(variables: Mapping[str, str] | None = None) -> Settings:
    """The settings from `variables` (names in any case), by default `environment()`.

    ConfigError names every bad variable, one line each, with its value unless secret.
    """
    source = environment() if variables is None else variables
    given = {name.lower(): text for name, text in source.items()}
    values: dict[str, Any] = {}
    problems: list[str] = []
    for name, (kind, setting) in schema().items():
        text = given.get(name, setting.default)
        if text is None:
            problems.append(f"{name.upper()}: required but not set")
            continue
        try:
            values[name] = parse(text, kind, setting)
        except ValueError as exc:
            shown = "" if kind is Secret else f"={text!r}"
            problems.append(f"{name.upper()}{shown}: {exc}")
    if problems:
        raise ConfigError(problems)
    return Settings(**values)


def parse(text: str, kind: Any, setting: Setting) -> Any:
    """A variable's text as a value of type `kind`; ValueError says what is allowed."""
    if setting.before:
        text = setting.before(text)
    value: Any = text
    if kind is int:
        value = integer(text, setting.between)
    elif kind is bool:
        if text.lower() not in BOOLEANS:
            raise ValueError("must be true or false (or 1/0, yes/no, on/off)")
        value = BOOLEANS[text.lower()]
    elif get_origin(kind) is Literal:
        if text not in get_args(kind):
            raise ValueError(f"must be one of {', '.join(get_args(kind))}")
    elif setting.pattern and not re.fullmatch(setting.pattern, text):
        raise ValueError(f"must match {setting.pattern}")
    elif kind is Secret:
        value = Secret(text)
    return setting.after(value) if setting.after else value


def integer(text: str, between: tuple[int, int] | None) -> int:
    allowed = "an integer" + (f" from {between[0]} to {between[1]}" if between else "")
    try:
        value = int(text)
    except ValueError:
        raise ValueError(f"must be {allowed}") from None
    if between and not between[0] <= value <= between[1]:
        raise ValueError(f"must be {allowed}")
    return value


def display_value(value: object) -> str:
    """A setting as check-config shows it: secrets masked, URLs keep all but the passwords."""
    if isinstance(value, bool):
        return str(value).lower()
    if not isinstance(value, Secret):
        return str(value)
    secret = value.get_secret_value()
    url = urlsplit(secret)
    if not url.scheme:
        return "**********"
    shown = secret
    if url.password:
        host = url.netloc.rpartition("@")[2]
        shown = urlunsplit(url._replace(netloc=f"{url.username}:***@{host}"))
    if url.query:
        # Replaced as text: urlunsplit would turn an empty host's `scheme:///` into `scheme:/`.
        shown = shown.replace(f"?{url.query}", f"?{masked_query(url.query)}", 1)
    return shown


def masked_query(query: str) -> str:
    """The query string with the value of every parameter named like `password` masked."""
    pairs = (part.partition("=") for part in query.split("&"))
    return "&".join(
        f"{key}=***" if "password" in unquote(key).lower() else f"{key}{equals}{value}"
        for key, equals, value in pairs
    )


def effective_config(settings: Settings) -> dict[str, str]:
    """Every setting by its environment name, as check-config prints it."""
    return {name.upper(): display_value(getattr(settings, name)) for name in schema()}


def dotenv_example() -> str:
    """The `.env.example` file: every setting with its description and default."""
    lines = [
        "# Every setting this service reads from the environment.",
        "# Copy to .env for local development; real environment variables win over .env.",
    ]
    for name, (_, setting) in schema().items():
        lines += ["", f"# {setting.description}"]
        if setting.default is None:
            lines.append(f"# Required. Example: {setting.example}")
            lines.append(f"{name.upper()}={setting.example}")
        else:
            lines.append(f"{name.upper()}={setting.default}")
    return "\n".join(lines) + "\n"
