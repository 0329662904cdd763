"""Config (III): settings come from the environment, validated before anything runs."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

import pytest

from {{ cookiecutter.package_name }}.settings import (
    ConfigError,
    Settings,
    dotenv_example,
    effective_config,
    load_settings,
)

PROJECT_ROOT = Path(__file__).resolve().parents[1]
{%- if cookiecutter.database == "postgresql" %}
REQUIRED = {"DATABASE_URL": "postgresql://service@db.internal:5432/app"}
{%- else %}
REQUIRED: dict[str, str] = {}
{%- endif %}


@pytest.fixture
def required_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in REQUIRED.items():
        monkeypatch.setenv(name, value)


@pytest.mark.usefixtures("required_env")
def test_defaults_suit_local_development() -> None:
    settings = load_settings()
    assert settings.port == 8000
    assert settings.web_concurrency == 1
    assert settings.log_level == "INFO"
    assert settings.log_format == "json"
{%- if cookiecutter.web_framework == "fastapi" %}
    assert settings.api_docs is False
{%- endif %}


@pytest.mark.usefixtures("required_env")
def test_environment_beats_dotenv(monkeypatch: pytest.MonkeyPatch) -> None:
    Path(".env").write_text("PORT=7000\nLOG_LEVEL=debug\n")
    monkeypatch.setenv("PORT", "9000")
    settings = load_settings()
    assert settings.port == 9000  # from the environment
    assert settings.log_level == "DEBUG"  # from .env, case-insensitive


def test_variables_are_read_as_their_types() -> None:
    variables = {**REQUIRED, "port": "8080", "LOG_LEVEL": "warning"}
{%- if cookiecutter.web_framework == "fastapi" %}
    variables["API_DOCS"] = "Yes"
{%- endif %}
    settings = load_settings(variables)
    assert settings.port == 8080  # a name in any case
    assert settings.log_level == "WARNING"
{%- if cookiecutter.web_framework == "fastapi" %}
    assert settings.api_docs is True
{%- endif %}


BAD_VALUES = {
    "port-not-a-number": ("PORT", "eighty", "PORT='eighty': must be an integer from 1 to 65535"),
    "port-zero": ("PORT", "0", "PORT='0': must be an integer from 1 to 65535"),
    "port-too-large": ("PORT", "70000", "PORT='70000': must be an integer from 1 to 65535"),
    "no-workers": ("WEB_CONCURRENCY", "0", "WEB_CONCURRENCY='0': must be an integer from 1 to 64"),
    "too-many-workers": ("WEB_CONCURRENCY", "65", "WEB_CONCURRENCY='65': must be an integer"),
    "workers-not-a-number": ("WEB_CONCURRENCY", "auto", "WEB_CONCURRENCY='auto': must be an"),
    "negative-grace": ("GRACEFUL_TIMEOUT", "-1", "GRACEFUL_TIMEOUT='-1': must be an integer from"),
    "grace-not-a-number": ("GRACEFUL_TIMEOUT", "20s", "GRACEFUL_TIMEOUT='20s': must be an"),
    "unknown-level": ("LOG_LEVEL", "loud", "LOG_LEVEL='loud': must be one of DEBUG, INFO, WARNING"),
    "unknown-format": ("LOG_FORMAT", "xml", "LOG_FORMAT='xml': must be one of json, console"),
    "release-spaces": ("RELEASE_ID", "v 1", "RELEASE_ID='v 1': must match [A-Za-z0-9._:/@+-]"),
{%- if cookiecutter.web_framework == "fastapi" %}
    "docs-not-bool": ("API_DOCS", "maybe", "API_DOCS='maybe': must be true or false"),
{%- endif %}
{%- if cookiecutter.database != "none" %}
    "database-scheme": (
        "DATABASE_URL",
        "mysql://app:s3cret-pw@db/app",
        "DATABASE_URL: scheme mysql:// is not one of sqlite://",
    ),
    "database-no-host": (
        "DATABASE_URL",
        "postgresql://app:s3cret-pw@/app",
        "DATABASE_URL: a PostgreSQL URL needs a host",
    ),
    "database-bad-port": (
        "DATABASE_URL",
        "postgresql://app:s3cret-pw@db:port/app",
        "DATABASE_URL: invalid port",
    ),
    "database-slash-in-password": (
        "DATABASE_URL",
        "postgresql://app:s3cret-pw/x@db/app",
        "DATABASE_URL: invalid port (percent-encode / # ? @ in the password)",
    ),
    "database-sqlite-no-slashes": (
        "DATABASE_URL",
        "sqlite:app.sqlite3",
        "DATABASE_URL: a SQLite URL is sqlite:///relative/path or sqlite:////absolute/path",
    ),
    "database-sqlite-host": (
        "DATABASE_URL",
        "sqlite://db/app.sqlite3",
        "DATABASE_URL: a SQLite URL is sqlite:///relative/path",
    ),
    "database-empty": ("DATABASE_URL", "", "DATABASE_URL: scheme (none) is not one of"),
{%- endif %}
{%- if cookiecutter.worker != "none" %}
    "redis-scheme": (
        "REDIS_URL",
        "http://:s3cret-pw@cache:6379/0",
        "REDIS_URL: scheme http:// is not one of redis://, rediss://",
    ),
    "redis-no-host": ("REDIS_URL", "redis://:s3cret-pw@/0", "REDIS_URL: a Redis URL needs a host"),
    "redis-bad-port": ("REDIS_URL", "redis://:s3cret-pw@cache:port/0", "REDIS_URL: invalid port"),
    "redis-database-name": (
        "REDIS_URL",
        "redis://:s3cret-pw@cache:6379/jobs",
        "REDIS_URL: the path must be a database number",
    ),
    "redis-bad-option": (
        "REDIS_URL",
        "redis://:s3cret-pw@cache:6379/0?socket_timeout=soon",
        "REDIS_URL: Invalid value for 'socket_timeout' in connection URL",
    ),
    "queue-name": ("WORKER_QUEUE", "jobs for all", "WORKER_QUEUE='jobs for all': must match"),
{%- endif %}
{%- if cookiecutter.worker == "celery" %}
    "no-worker-concurrency": ("WORKER_CONCURRENCY", "0", "WORKER_CONCURRENCY='0': must be an"),
    "visibility-not-a-number": (
        "WORKER_VISIBILITY_TIMEOUT",
        "10m",
        "WORKER_VISIBILITY_TIMEOUT='10m': must be an integer from 1 to 86400",
    ),
{%- elif cookiecutter.worker == "rq" %}
    "maintenance-too-long": (
        "WORKER_MAINTENANCE_INTERVAL",
        "3601",
        "WORKER_MAINTENANCE_INTERVAL='3601': must be an integer from 1 to 3600",
    ),
{%- endif %}
}


@pytest.mark.usefixtures("required_env")
@pytest.mark.parametrize(("name", "value", "line"), BAD_VALUES.values(), ids=BAD_VALUES.keys())
def test_bad_value_is_one_line_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, line: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError) as raised:
        load_settings()
    assert len(raised.value.lines) == 1
    assert raised.value.lines[0].startswith(line)
    assert "s3cret-pw" not in raised.value.lines[0]


def test_every_bad_variable_is_reported_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PORT", "x")
    monkeypatch.setenv("LOG_FORMAT", "x")
    with pytest.raises(ConfigError) as raised:
        load_settings()
    names = sorted(line.split("=")[0].split(":")[0] for line in raised.value.lines)
    assert names == sorted(["PORT", "LOG_FORMAT", *REQUIRED])
{%- if cookiecutter.database != "none" %}


def test_effective_config_masks_the_database_password() -> None:
    url = "postgresql://app:s3cret-pw@db:5432/app"
    settings = load_settings({"DATABASE_URL": url})
    config = effective_config(settings)
    assert config["DATABASE_URL"] == "postgresql://app:***@db:5432/app"
    assert "s3cret-pw" not in repr(settings)


QUERY_PASSWORDS = {
    "with-user": "postgresql://app@/app?host=/var/run/postgresql&password=",
    "no-authority": "postgresql:///app?host=/var/run/postgresql&PGPASSWORD=",
}


@pytest.mark.parametrize("url", QUERY_PASSWORDS.values(), ids=QUERY_PASSWORDS.keys())
def test_effective_config_masks_a_password_in_the_query(url: str) -> None:
    settings = load_settings({"DATABASE_URL": f"{url}s3cret-pw"})
    assert effective_config(settings)["DATABASE_URL"] == f"{url}***"
{%- endif %}
{%- if cookiecutter.worker != "none" %}


def test_effective_config_masks_the_redis_password() -> None:
    url = "rediss://:s3cret-pw@cache:6380/1"
    settings = load_settings({"DATABASE_URL": "sqlite:///app.sqlite3", "REDIS_URL": url})
    assert effective_config(settings)["REDIS_URL"] == "rediss://:***@cache:6380/1"
{%- endif %}


@pytest.mark.usefixtures("required_env")
def test_effective_config_names_every_setting() -> None:
    names = [field.name.upper() for field in fields(Settings)]
    assert list(effective_config(load_settings())) == names


def test_env_example_matches_the_settings_schema() -> None:
    committed = (PROJECT_ROOT / ".env.example").read_text()
    assert committed == dotenv_example(), "regenerate it with `make env-example`"
