"""Config (factor III): every setting comes from the environment.

`Settings` is a pydantic-settings model: each field is one environment
variable of the same name, unprefixed and in any case, so Heroku-style
platforms and Kubernetes can set them. A `.env` file in the working directory
is read for local development; a real environment variable always wins over
it. Secrets may also be files named after their variable in SECRETS_DIR
(default /run/secrets, where Docker and Compose mount them), below both.

A new setting is a new field: any type pydantic validates works (`float`,
`list[str]` given as JSON, `AnyUrl`, `Path`, a `Literal`, a nested model whose
fields are set as `PARENT__CHILD`). Then run `make env-example`.
"""

from __future__ import annotations

{% if cookiecutter.database != "none" or cookiecutter.worker != "none" -%}
import ipaddress
{% endif -%}
import json
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal, get_args
from urllib.parse import {% if cookiecutter.database != "none" or cookiecutter.worker != "none" %}SplitResult, {% endif %}unquote, urlsplit, urlunsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    Field,
    SecretStr,
    ValidationError,
)
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, SettingsConfigDict
{%- if cookiecutter.worker != "none" %}
from redis import ConnectionPool
{%- endif %}
{%- if cookiecutter.database != "none" %}
from sqlalchemy import make_url
from sqlalchemy.exc import ArgumentError
{%- endif %}

LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]
{%- if cookiecutter.database != "none" %}
DATABASE_SCHEMES = ("sqlite", "postgresql", "postgres", "postgresql+psycopg")
{%- endif %}
{%- if cookiecutter.worker != "none" %}
REDIS_SCHEMES = ("redis", "rediss")
REDIS_DATABASE_PATH = re.compile(r"(/[0-9]*)?")
{%- endif %}
{%- if cookiecutter.database != "none" or cookiecutter.worker != "none" %}
# A URL that parses more than one way: the driver may read part of the password as the host,
# and then show it in every error. Said without quoting any of the URL.
AMBIGUOUS_URL = "does not parse one way: percent-encode @ / ? # in the user name and password"
# A DNS name (RFC 1035; `_` as container platforms allow), or an IP address.
HOST_LABEL = re.compile(r"(?!-)[A-Za-z0-9_-]{1,63}(?<!-)")
HOST_NAME_MAX_LENGTH = 253
INVALID_HOST = (
    "the host is no DNS name: dot-separated labels of 1-63 letters, digits, - or _,"
    f" {HOST_NAME_MAX_LENGTH} characters in all"
)
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
RELEASE_PATTERN = re.compile(r"^[A-Za-z0-9._:/@+-]{0,128}$")
DEFAULT_RELEASE = "dev"
# Read from the working directory, for local development.
ENV_FILE = ".env"
# Where Docker and Compose mount secrets; SECRETS_DIR names another directory. It is no
# setting itself: it says where settings are.
DEFAULT_SECRETS_DIR = "/run/secrets"


def release_or_fallback(value: str) -> str:
    """RELEASE_ID, else the first platform variable that names the release, else `dev`."""
    if value:
        return value
    for name in RELEASE_FALLBACKS:
        if fallback := os.environ.get(name, "").strip():
            if not RELEASE_PATTERN.fullmatch(fallback):
                raise ValueError(f"empty, and {name} is not a release ({RELEASE_PATTERN.pattern})")
            return fallback
    return DEFAULT_RELEASE
{%- if cookiecutter.use_opentelemetry or cookiecutter.use_sentry %}


def http_url_or_empty(value: str) -> str:
    """An http(s):// URL with a host, or empty (not configured). Quotes none of the URL."""
    if value:
        url = urlsplit(value)
        if url.scheme not in ("http", "https") or not url.hostname:
            raise ValueError("not an http:// or https:// URL with a host (or empty: off)")
    return value
{%- endif %}
{%- if cookiecutter.use_opentelemetry %}


def key_value_pairs(text: str) -> dict[str, str]:
    """`key1=value1,key2=value2` (OTEL_RESOURCE_ATTRIBUTES, OTEL_EXPORTER_OTLP_HEADERS), decoded.

    The error never quotes a value: header values are credentials.
    """
    pairs: dict[str, str] = {}
    for part in filter(None, (part.strip() for part in text.split(","))):
        key, equals, value = part.partition("=")
        if not equals or not key.strip():
            raise ValueError("must be comma-separated key=value pairs")
        pairs[unquote(key.strip())] = unquote(value.strip())
    return pairs


def key_value_text(value: str) -> str:
    key_value_pairs(value)
    return value


def secret_key_value_text(value: SecretStr) -> SecretStr:
    key_value_pairs(value.get_secret_value())
    return value
{%- endif %}
{%- if cookiecutter.use_sentry %}


def supported_sentry_dsn(value: SecretStr) -> SecretStr:
    """Empty (nothing is sent), or https://<key>@<host>/<project id> as Sentry shows it."""
    text = value.get_secret_value()
    if text:
        http_url_or_empty(text)
        url = urlsplit(text)
        if not url.username or not url.path.strip("/"):
            raise ValueError("a DSN is https://<key>@<host>/<project id> (or empty: off)")
    return value
{%- endif %}
{%- if cookiecutter.database != "none" %}


# What SQLAlchemy's make_url raises for a URL it cannot read.
UNPARSEABLE_URL = (ArgumentError, ValueError)


def supported_database(value: SecretStr) -> SecretStr:
    text = value.get_secret_value()
    url = checked_url(text, DATABASE_SCHEMES)
    if url.scheme == "sqlite" and (url.netloc or not text.startswith("sqlite://")):
        # SQLAlchemy cannot parse sqlite:path and refuses sqlite://host/path.
        raise ValueError("a SQLite URL is sqlite:///relative/path or sqlite:////absolute/path")
    if url.scheme != "sqlite" and not url.hostname and "host=" not in url.query:
        raise ValueError("a PostgreSQL URL needs a host, e.g. postgresql://user@localhost/db")
    try:
        # SQLAlchemy parses the URL with its own rules: it must read what urllib read.
        parsed = make_url(text)
    except UNPARSEABLE_URL:  # their messages quote the URL
        raise ValueError(AMBIGUOUS_URL) from None
    given = (url.username, url.password, url.hostname, url.port)
    read = (parsed.username, parsed.password, parsed.host, parsed.port)
    if tuple(unquote(part) if isinstance(part, str) else part for part in given) != read:
        raise ValueError(AMBIGUOUS_URL)
    if url.scheme == "sqlite" and parsed.database and parsed.database != ":memory:":
        require_usable_sqlite_file(Path(parsed.database))
    return value


def require_usable_sqlite_file(path: Path) -> None:
    """ValueError unless SQLite can create or open `path` and write beside it (its WAL files)."""
    if path.is_dir():
        raise ValueError(f"{path} is a directory, not a SQLite file")
    directory = path.parent
    while not directory.exists() and directory != directory.parent:
        directory = directory.parent  # `migrate` creates the missing ones
    if not directory.is_dir():
        raise ValueError(f"{directory} is not a directory: no SQLite file can be made under it")
    if not os.access(directory, os.W_OK | os.X_OK):
        raise ValueError(f"directory {directory} is not writable (a read-only filesystem?)")
    if path.exists() and not os.access(path, os.R_OK | os.W_OK):
        raise ValueError(f"{path} is not readable and writable")
{%- endif %}
{%- if cookiecutter.worker != "none" %}


def supported_redis(value: SecretStr) -> SecretStr:
    text = value.get_secret_value()
    url = checked_url(text, REDIS_SCHEMES)
    if not url.hostname:
        raise ValueError("a Redis URL needs a host, e.g. redis://localhost:6379/0")
    if not REDIS_DATABASE_PATH.fullmatch(url.path):
        raise ValueError("the path must be a database number, e.g. redis://localhost:6379/0")
    # redis-py's own parser checks the query's options (connecting to nothing);
    # its messages never quote the URL.
    ConnectionPool.from_url(text)
    return value
{%- endif %}
{%- if cookiecutter.database != "none" or cookiecutter.worker != "none" %}


def checked_url(text: str, schemes: tuple[str, ...]) -> SplitResult:
    """The URL split into parts; ValueError unless it parses one way, with an allowed scheme.

    No message quotes the URL: any part of it may be part of a password.
    """
    try:
        url = urlsplit(text)
    except ValueError:  # an unbalanced [ or ]
        raise ValueError(AMBIGUOUS_URL) from None
    if url.scheme not in schemes:
        allowed = ", ".join(f"{scheme}://" for scheme in schemes)
        given = f"{url.scheme}://" if url.scheme else "(none)"
        raise ValueError(f"scheme {given} is not one of {allowed}")
    # An @ after the first one, or after the host, or a fragment: a delimiter in a password.
    after_host = text[len(url.scheme) + len("://") + len(url.netloc) :] if url.netloc else ""
    if "#" in text or url.netloc.count("@") > 1 or "@" in after_host:
        raise ValueError(AMBIGUOUS_URL)
    try:
        _ = url.port  # raises for a non-numeric or out-of-range port
    except ValueError:
        # The error would quote the port text, which may be part of a password.
        raise ValueError("invalid port (percent-encode / # ? @ in the password)") from None
    hosts = url.hostname.split(",") if url.hostname else []  # libpq takes several
    if not all(is_host_name(host) for host in hosts):
        raise ValueError(INVALID_HOST)
    return url


def is_host_name(host: str) -> bool:
    """A name the resolver takes (Python's refuses a label over 63 characters), or an IP."""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        name = host.removesuffix(".")
        return len(name) <= HOST_NAME_MAX_LENGTH and all(
            HOST_LABEL.fullmatch(label) for label in name.split(".")
        )
    return True
{%- endif %}


class Settings(BaseSettings):
    """The service's whole configuration, read once at process start by `load_settings`."""

    model_config = SettingsConfigDict(
        env_file=ENV_FILE,
        env_nested_delimiter="__",
        extra="ignore",  # the environment holds much else
        frozen=True,
    )

    port: int = Field(8000, ge=1, le=65535, description="TCP port the web process binds.")
    web_concurrency: int = Field(1, ge=1, le=64, description="Number of web worker processes.")
    graceful_timeout: int = Field(
        20,
        ge=1,
        le=3600,
        description="Seconds to finish in-flight requests after SIGTERM before closing them.",
    )
    # What one client can hold of a web process: the README's "Limits" says what each guards.
    max_connections: int = Field(
        500,
        ge=1,
        le=100_000,
        description="Connections one web process holds open at once; beyond it, new ones wait"
        " in the listen backlog (or get a 503) until one closes.",
    )
    request_read_timeout: float = Field(
        10,
        gt=0,
        le=3600,
        description="Seconds a client has to send a whole request (line, headers and body)"
        " from when it connects or starts one; then its connection is closed.",
    )
    # Whole seconds: what uvicorn's timeout_keep_alive and gunicorn's keepalive take.
    keep_alive_timeout: int = Field(
        5,
        ge=1,
        le=3600,
        description="Seconds an idle connection is kept open between requests.",
    )
    max_request_header_bytes: int = Field(
        32_768,
        ge=1024,
        le=1_048_576,
        description="Largest request line and headers accepted, in bytes; a larger one gets"
        " a 431 (414 for the request line).",
    )
    max_request_body_bytes: int = Field(
        1_048_576,
        ge=0,
        le=1_073_741_824,
        description="Largest request body accepted, in bytes; a larger one gets a 413.",
    )
    log_level: Annotated[LogLevel, BeforeValidator(lambda value: str(value).upper())] = Field(
        "INFO", description="Lowest level that is logged."
    )
    log_format: Literal["json", "console"] = Field(
        "json",
        description="json: one JSON object per line; console: readable lines for a terminal.",
    )
    release_id: Annotated[str, AfterValidator(release_or_fallback)] = Field(
        "",
        pattern=RELEASE_PATTERN.pattern,
        description="Release on every log line and in /healthz; empty: the first set of "
        + ", ".join(RELEASE_FALLBACKS)
        + f", else {DEFAULT_RELEASE}.",
    )
{%- if cookiecutter.web_framework == "fastapi" %}
    api_docs: bool = Field(
        False,
        description="Serve the OpenAPI schema at /openapi.json and interactive docs at /docs.",
    )
{%- endif %}
{%- if cookiecutter.database == "sqlite" %}
    database_url: Annotated[SecretStr, AfterValidator(supported_database)] = Field(
        SecretStr("sqlite:///.data/{{ cookiecutter.package_name }}.sqlite3"),
        validate_default=True,  # its directory must be usable too
        description="SQLAlchemy-style database URL: sqlite:///path or"
        " postgresql://user:password@host/db.",
    )
{%- elif cookiecutter.database == "postgresql" %}
    database_url: Annotated[SecretStr, AfterValidator(supported_database)] = Field(
        description="SQLAlchemy-style database URL: postgresql://user:password@host/db or"
        " sqlite:///path.",
        examples=[
            "postgresql://postgres@localhost:5432/{{ cookiecutter.package_name }}",
        ],
    )
{%- endif %}
{%- if cookiecutter.worker != "none" %}
    redis_url: Annotated[SecretStr, AfterValidator(supported_redis)] = Field(
        SecretStr("redis://localhost:6379/0"),
        description="Redis URL of the job queue: redis://:password@host:6379/0 or rediss:// (TLS).",
    )
    worker_queue: str = Field(
        "{{ cookiecutter.package_name }}",
        pattern=r"^[A-Za-z0-9_.-]{1,64}$",
        description="Name of the job queue in Redis; give each service (and each test run)"
        " sharing a Redis its own.",
    )
{%- endif %}
{%- if cookiecutter.worker == "celery" %}
    worker_concurrency: int = Field(
        1,
        ge=1,
        le=64,
        description="Jobs one worker process runs at once; scale further with more worker"
        " processes.",
    )
    worker_visibility_timeout: int = Field(
        600,
        ge=1,
        le=86400,
        description="Seconds before an unacknowledged job goes to another worker: a dead"
        " worker's job is redelivered then; a job running longer than this runs twice.",
    )
{%- elif cookiecutter.worker == "rq" %}
    worker_maintenance_interval: int = Field(
        60,
        ge=1,
        le=3600,
        description="Seconds between sweeps for jobs of dead workers; such a job is retried"
        " at the first sweep 20 s after its worker's last heartbeat.",
    )
{%- endif %}
{%- if cookiecutter.use_opentelemetry %}
    # OpenTelemetry's own variables (opentelemetry.io/docs/specs/otel/configuration/
    # sdk-environment-variables), validated here like any setting; telemetry.py applies them.
    otel_exporter_otlp_endpoint: Annotated[str, AfterValidator(http_url_or_empty)] = Field(
        "",
        description="OTLP/HTTP collector URL, e.g. http://localhost:4318: traces and metrics"
        " are sent to its /v1/traces and /v1/metrics. Empty: nothing is traced or sent.",
    )
    otel_exporter_otlp_headers: Annotated[SecretStr, AfterValidator(secret_key_value_text)] = Field(
        SecretStr(""),
        description="Headers sent with every export, key=value,key2=value2 (an API key).",
    )
    otel_service_name: str = Field(
        "{{ cookiecutter.project_slug }}",
        min_length=1,
        max_length=255,
        description="service.name of every span and metric.",
    )
    otel_resource_attributes: Annotated[str, AfterValidator(key_value_text)] = Field(
        "",
        description="More resource attributes, key=value,key2=value2, e.g."
        " deployment.environment.name=production; service.version is RELEASE_ID.",
    )
    otel_traces_sampler: Literal[
        "always_on",
        "always_off",
        "traceidratio",
        "parentbased_always_on",
        "parentbased_always_off",
        "parentbased_traceidratio",
    ] = Field(
        "parentbased_always_on",
        description="Which traces are kept: parentbased_* follow the caller's decision.",
    )
    otel_traces_sampler_arg: float = Field(
        1.0, ge=0, le=1, description="Share of traces kept by the *traceidratio samplers."
    )
    otel_metric_export_interval: int = Field(
        60_000, ge=100, le=86_400_000, description="Milliseconds between metric exports."
    )
    otel_sdk_disabled: bool = Field(
        False, description="true: trace and send nothing, even with an endpoint set."
    )
{%- endif %}
{%- if cookiecutter.use_sentry %}
    sentry_dsn: Annotated[SecretStr, AfterValidator(supported_sentry_dsn)] = Field(
        SecretStr(""),
        description="Sentry DSN errors are reported to: https://<key>@<host>/<project id>."
        " Empty: nothing is sent.",
    )
    sentry_environment: str = Field(
        "production",
        pattern=r"^[^/\r\n\t\f]{1,64}$",
        description="Environment every error report is filed under, e.g. staging.",
    )
{%- endif %}
{%- if cookiecutter.use_opentelemetry %}

    @property
    def exports_telemetry(self) -> bool:
        """An OTLP endpoint is set and the SDK is not disabled: traces and metrics are sent."""
        return bool(self.otel_exporter_otlp_endpoint) and not self.otel_sdk_disabled
{%- endif %}
{%- if cookiecutter.use_sentry %}

    @property
    def reports_errors(self) -> bool:
        """A Sentry DSN is set: unhandled errors are reported."""
        return bool(self.sentry_dsn.get_secret_value())
{%- endif %}


class ConfigError(Exception):
    """The environment does not make a valid configuration: one line per bad variable."""

    def __init__(self, lines: list[str]) -> None:
        super().__init__("\n".join(lines))
        self.lines = lines


def load_settings(variables: Mapping[str, str] | None = None) -> Settings:
    """The settings from the environment, `.env` and SECRETS_DIR; or from `variables` alone.

    ConfigError names every bad variable, one line each, with its value unless secret.
    """
    try:
        if variables is not None:  # names in any case, as in the environment
            return Settings.model_validate({name.lower(): text for name, text in variables.items()})
        return Settings(_secrets_dir=secrets_dir())
    except ValidationError as exc:
        raise ConfigError([problem_line(error) for error in exc.errors()]) from None


def secrets_dir() -> Path | None:
    """The directory of secret files: SECRETS_DIR, else /run/secrets if it exists."""
    given = os.environ.get("SECRETS_DIR", "")
    if given and not Path(given).is_dir():
        line = f"SECRETS_DIR={given!r}: must be a directory of secret files"
        raise ConfigError([line])
    path = Path(given or DEFAULT_SECRETS_DIR)
    return path if path.is_dir() else None


def problem_line(error: Mapping[str, Any], model: type[BaseSettings] = Settings) -> str:
    """One `NAME='value': what is allowed` line; a secret's value is never shown."""
    location = [str(part) for part in error["loc"] if not isinstance(part, int)]
    name = "__".join(location).upper()
    if error["type"] == "missing":
        return f"{name}: required but not set"
    # A ValueError of our own checks: its message alone.
    message = str(error["ctx"]["error"]) if error["type"] == "value_error" else error["msg"]
    field = model.model_fields.get(location[0]) if location else None
    if field is None or is_secret(field):
        return f"{name}: {message}"
    return f"{name}={error['input']!r}: {message}"


def is_secret(field: FieldInfo) -> bool:
    return SecretStr in (field.annotation, *get_args(field.annotation))


def display_value(value: object) -> str:
    """A setting as check-config shows it: secrets masked, URLs keep all but the passwords."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, BaseModel | list | dict):
        return json.dumps(value.model_dump(mode="json") if isinstance(value, BaseModel) else value)
    if not isinstance(value, SecretStr):
        return str(value)
    secret = value.get_secret_value()
    if not secret:
        return ""
    url = urlsplit(secret)
    if not url.scheme:
        return "**********"
    shown = secret
    host = url.netloc.rpartition("@")[2]
    if url.password:
        shown = urlunsplit(url._replace(netloc=f"{url.username}:***@{host}"))
    elif url.username and url.scheme in ("http", "https"):  # a key, as in a Sentry DSN
        shown = urlunsplit(url._replace(netloc=f"***@{host}"))
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
        "# Secrets may instead be files named after the variable in $SECRETS_DIR"
        f" (default {DEFAULT_SECRETS_DIR}).",
    ]
    for name, field in Settings.model_fields.items():
        lines += ["", f"# {field.description}"]
        if field.is_required():
            example = field.examples[0] if field.examples else ""
            lines.append(f"# Required. Example: {example}")
            lines.append(f"{name.upper()}={example}")
        else:
            lines.append(f"{name.upper()}={env_text(field.get_default(call_default_factory=True))}")
    return "\n".join(lines) + "\n"


def env_text(value: object) -> str:
    """A default as it is written in a .env file: JSON for anything but plain text and numbers."""
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, str | int | float):
        return str(value)
    return display_value(value)
