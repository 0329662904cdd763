"""Config (factor III): every setting comes from the environment.

A `.env` file in the working directory is read for local development; a real
environment variable always wins over it. Names are the platform-standard
ones, unprefixed, so Heroku-style platforms and Kubernetes can set them.

The settings are a pydantic model fed by `environment()` rather than a
pydantic-settings class: that library loads its other sources (command line,
secrets, cloud) and asyncio into every process, about a tenth of a Flask web
process's start.
"""

from __future__ import annotations

import os
{% if cookiecutter.worker != "none" %}import re
{% endif %}from collections.abc import Iterator
from typing import Literal
from urllib.parse import {% if cookiecutter.database != "none" %}SplitResult, {% endif %}unquote, urlsplit, urlunsplit

from dotenv import dotenv_values
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

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


class Settings(BaseModel):
    """The service's whole configuration, read once at process start by `load_settings`."""

    # Validated from the whole environment: variables that are not settings are ignored.
    model_config = ConfigDict(extra="ignore", frozen=True)

    port: int = Field(8000, ge=1, le=65535, description="TCP port the web process binds.")
    web_concurrency: int = Field(1, ge=1, le=64, description="Number of web worker processes.")
    graceful_timeout: int = Field(
        20,
        gt=0,
        le=3600,
        description="Seconds to finish in-flight requests after SIGTERM before closing them.",
    )
    log_level: LogLevel = Field("INFO", description="Lowest level that is logged.")
    log_format: Literal["json", "console"] = Field(
        "json",
        description="json: one JSON object per line; console: readable lines for a terminal.",
    )
    release_id: str = Field(
        "",
        max_length=128,
        pattern=r"^[A-Za-z0-9._:/@+-]*$",
        validate_default=True,
        description=(
            "Release on every log line and in /healthz; empty: the first set of "
            + ", ".join(RELEASE_FALLBACKS)
            + f", else {DEFAULT_RELEASE}."
        ),
    )
{%- if cookiecutter.web_framework == "fastapi" %}
    api_docs: bool = Field(
        False,
        description="Serve the OpenAPI schema at /openapi.json and interactive docs at /docs.",
    )
{%- endif %}
{%- if cookiecutter.database == "sqlite" %}
    database_url: SecretStr = Field(
        SecretStr("sqlite:///.data/{{ cookiecutter.package_name }}.sqlite3"),
        description="SQLAlchemy-style database URL: sqlite:///path or postgresql://user:password@host/db.",
    )
{%- elif cookiecutter.database == "postgresql" %}
    database_url: SecretStr = Field(
        description="SQLAlchemy-style database URL: postgresql://user:password@host/db or sqlite:///path.",
        examples=[
            "postgresql://postgres@localhost:5432/{{ cookiecutter.package_name }}",
        ],
    )
{%- endif %}
{%- if cookiecutter.worker != "none" %}
    redis_url: SecretStr = Field(
        SecretStr("redis://localhost:6379/0"),
        description="Redis URL of the job queue: redis://:password@host:6379/0 or rediss:// (TLS).",
    )
    worker_queue: str = Field(
        "{{ cookiecutter.package_name }}",
        pattern=r"^[A-Za-z0-9_.-]{1,64}$",
        description=(
            "Name of the job queue in Redis; give each service (and each test run)"
            " sharing a Redis its own."
        ),
    )
{%- endif %}
{%- if cookiecutter.worker == "celery" %}
    worker_concurrency: int = Field(
        1,
        ge=1,
        le=64,
        description=(
            "Jobs one worker process runs at once; scale further with more worker processes."
        ),
    )
    worker_visibility_timeout: int = Field(
        600,
        ge=1,
        le=86400,
        description=(
            "Seconds before an unacknowledged job goes to another worker: a dead worker's"
            " job is redelivered then; a job running longer than this runs twice."
        ),
    )
{%- elif cookiecutter.worker == "rq" %}
    worker_maintenance_interval: int = Field(
        60,
        ge=1,
        le=3600,
        description=(
            "Seconds between sweeps for jobs of dead workers; such a job is retried"
            " at the first sweep 65 s after its worker's last heartbeat."
        ),
    )
{%- endif %}

    @field_validator("release_id")
    @classmethod
    def _release_from_platform(cls, value: str) -> str:
        return value or platform_release()

    @field_validator("log_level", mode="before")
    @classmethod
    def _level_in_capitals(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value
{%- if cookiecutter.database != "none" %}

    @field_validator("database_url")
    @classmethod
    def _supported_database(cls, value: SecretStr) -> SecretStr:
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

    @field_validator("redis_url")
    @classmethod
    def _supported_redis(cls, value: SecretStr) -> SecretStr:
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


def checked_url(value: SecretStr, schemes: tuple[str, ...]) -> SplitResult:
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


def environment() -> dict[str, str]:
    """Every variable by its name in lower case: the environment's, else `.env`'s if it exists."""
    # A line with a name but no `=` gives None: as if the name were not there.
    from_file = dotenv_values(ENV_FILE).items()
    variables = {name: value for name, value in from_file if value is not None}
    variables.update(os.environ)
    return {name.lower(): value for name, value in variables.items()}


def load_settings() -> Settings:
    """Read the settings, turning validation errors into one line per variable."""
    try:
        return Settings.model_validate(environment())
    except ValidationError as exc:
        raise ConfigError(list(describe_errors(exc))) from None


def describe_errors(exc: ValidationError) -> Iterator[str]:
    """One line per bad variable: its name and the problem, with its value unless secret."""
    for error in exc.errors(include_url=False):
        field = str(error["loc"][0]) if error["loc"] else ""
        name = field.upper()
        if error["type"] == "missing":
            yield f"{name}: required but not set"
            continue
        problem = error["msg"].removeprefix("Value error, ")
        if is_secret(field):
            yield f"{name}: {problem}"
        else:
            yield f"{name}={error['input']!r}: {problem}"


def is_secret(field: str) -> bool:
    info = Settings.model_fields.get(field)
    return info is not None and info.annotation is SecretStr


def display_value(value: object) -> str:
    """A setting as check-config shows it: secrets masked, URLs keep all but the passwords."""
    if isinstance(value, bool):
        return str(value).lower()
    if not isinstance(value, SecretStr):
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
    return {name.upper(): display_value(getattr(settings, name)) for name in Settings.model_fields}


def dotenv_example() -> str:
    """The `.env.example` file: every setting with its description and default."""
    lines = [
        "# Every setting this service reads from the environment.",
        "# Copy to .env for local development; real environment variables win over .env.",
    ]
    for name, info in Settings.model_fields.items():
        lines += ["", f"# {info.description}"]
        if info.is_required():
            example = (info.examples or [""])[0]
            lines.append(f"# Required. Example: {example}")
            lines.append(f"{name.upper()}={example}")
        else:
            lines.append(f"{name.upper()}={display_default(info.default)}")
    return "\n".join(lines) + "\n"


def display_default(value: object) -> str:
    """A default as .env.example shows it: in full, since defaults are not secrets."""
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    return display_value(value)
