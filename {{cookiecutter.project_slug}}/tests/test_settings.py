"""Config (III): settings come from the environment, validated before anything runs."""

from __future__ import annotations

{% if cookiecutter.database != "none" or cookiecutter.worker != "none" -%}
import io
{% endif -%}
{% if cookiecutter.database != "none" -%}
import os
from collections.abc import Callable
{% endif -%}
{% if cookiecutter.database != "none" or cookiecutter.worker != "none" -%}
from contextlib import redirect_stderr, redirect_stdout
{% endif -%}
from pathlib import Path
from typing import Literal
{%- if cookiecutter.database != "none" or cookiecutter.worker != "none" %}
from urllib.parse import quote
{%- endif %}

import pytest
{%- if cookiecutter.database != "none" or cookiecutter.worker != "none" %}
from hypothesis import HealthCheck, example, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
{%- endif %}
from pydantic import AnyHttpUrl, BaseModel, Field, ValidationError

{% if cookiecutter.database != "none" or cookiecutter.worker != "none" -%}
from {{ cookiecutter.package_name }}.cli import main
from {{ cookiecutter.package_name }}.logs import configure_logging
{% endif -%}
from {{ cookiecutter.package_name }}.settings import (
{%- if cookiecutter.database != "none" or cookiecutter.worker != "none" %}
    AMBIGUOUS_URL,
    INVALID_HOST,
{%- endif %}
    RELEASE_FALLBACKS,
    RELEASE_PATTERN,
    ConfigError,
    Settings,
    dotenv_example,
    effective_config,
    load_settings,
    problem_line,
)
{%- if cookiecutter.database != "none" or cookiecutter.worker != "none" %}

from .conftest import app_client
{%- endif %}

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


class Limits(BaseModel):
    burst: int = 10
    window_seconds: float = 1.0


class OwnedSettings(Settings):
    """Settings as an owner grows them: any type pydantic validates."""

    request_timeout: float = Field(2.5, gt=0, description="Seconds to wait for an upstream.")
    allowed_hosts: list[str] = Field(default_factory=list, description="Hosts to accept.")
    upstream_url: AnyHttpUrl = Field(AnyHttpUrl("https://api.example.com"), description="API.")
    export_dir: Path = Field(Path("exports"), description="Where exports are written.")
    mode: Literal["fast", "safe"] = Field("safe", description="How to run.")
    limits: Limits = Field(default_factory=Limits, description="Rate limits.")


@pytest.mark.usefixtures("required_env")
def test_new_settings_of_any_type_load_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name, value in {
        "REQUEST_TIMEOUT": "0.75",
        "ALLOWED_HOSTS": '["a.example", "b.example"]',
        "UPSTREAM_URL": "https://upstream.example/v2",
        "EXPORT_DIR": "/var/exports",
        "MODE": "fast",
        "LIMITS__BURST": "50",
    }.items():
        monkeypatch.setenv(name, value)
    settings = OwnedSettings()
    assert settings.request_timeout == 0.75
    assert settings.allowed_hosts == ["a.example", "b.example"]
    assert str(settings.upstream_url) == "https://upstream.example/v2"
    assert settings.export_dir == Path("/var/exports")
    assert settings.mode == "fast"
    assert settings.limits == Limits(burst=50, window_seconds=1.0)


@pytest.mark.usefixtures("required_env")
def test_a_bad_new_setting_is_one_line_naming_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REQUEST_TIMEOUT", "soon")
    with pytest.raises(ValidationError) as raised:
        OwnedSettings()
    [line] = [problem_line(error, OwnedSettings) for error in raised.value.errors()]
    assert line.startswith("REQUEST_TIMEOUT='soon': Input should be a valid number")


NOT_RELEASES = {"newline": "v1\ninjected", "too-long": "a" * 129, "space": "v 1"}


@pytest.mark.usefixtures("required_env")
@pytest.mark.parametrize("value", NOT_RELEASES.values(), ids=NOT_RELEASES.keys())
@pytest.mark.parametrize("name", RELEASE_FALLBACKS)
def test_every_release_fallback_obeys_the_release_pattern(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    """What reaches every log line and /healthz is held to RELEASE_ID's pattern and length."""
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError) as raised:
        load_settings()
    assert raised.value.lines == [
        f"RELEASE_ID='': empty, and {name} is not a release ({RELEASE_PATTERN.pattern})"
    ]


@pytest.mark.usefixtures("required_env")
def test_release_falls_back_to_the_platform_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("K_REVISION", "svc-00042-abc")
    assert load_settings().release_id == "svc-00042-abc"
{%- if cookiecutter.database != "none" %}


def test_secret_files_are_read_below_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "DATABASE_URL").write_text("postgresql://app:s3cret-pw@file-db/app\n")
    monkeypatch.setenv("SECRETS_DIR", str(secrets))
    assert load_settings().database_url.get_secret_value().endswith("@file-db/app")
    monkeypatch.setenv("DATABASE_URL", "postgresql://app:s3cret-pw@env-db/app")
    assert load_settings().database_url.get_secret_value().endswith("@env-db/app")
{%- endif %}


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
    "port-not-a-number": ("PORT", "eighty", "PORT='eighty': Input should be a valid integer"),
    "port-zero": ("PORT", "0", "PORT='0': Input should be greater than or equal to 1"),
    "port-too-large": ("PORT", "70000", "PORT='70000': Input should be less than or equal"),
    "no-workers": ("WEB_CONCURRENCY", "0", "WEB_CONCURRENCY='0': Input should be greater than"),
    "too-many-workers": ("WEB_CONCURRENCY", "65", "WEB_CONCURRENCY='65': Input should be less"),
    "workers-not-a-number": ("WEB_CONCURRENCY", "auto", "WEB_CONCURRENCY='auto': Input should be"),
    "negative-grace": ("GRACEFUL_TIMEOUT", "-1", "GRACEFUL_TIMEOUT='-1': Input should be greater"),
    "grace-not-a-number": ("GRACEFUL_TIMEOUT", "20s", "GRACEFUL_TIMEOUT='20s': Input should be a"),
    "unknown-level": ("LOG_LEVEL", "loud", "LOG_LEVEL='LOUD': Input should be 'DEBUG', 'INFO', "),
    "unknown-format": ("LOG_FORMAT", "xml", "LOG_FORMAT='xml': Input should be 'json' or"),
    "release-spaces": ("RELEASE_ID", "v 1", "RELEASE_ID='v 1': String should match pattern"),
{%- if cookiecutter.web_framework == "fastapi" %}
    "docs-not-bool": ("API_DOCS", "maybe", "API_DOCS='maybe': Input should be a valid boolean"),
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
        f"DATABASE_URL: {AMBIGUOUS_URL}",
    ),
    # SQLAlchemy read `pw@db` as the host, and showed it in every connection error.
    "database-at-in-password": (
        "DATABASE_URL",
        "postgresql://app:s3cret-pw@pw@db/app",
        f"DATABASE_URL: {AMBIGUOUS_URL}",
    ),
    # Python's resolver refuses a label over 63 characters: a UnicodeError, later, as a 500.
    "database-host-label-too-long": (
        "DATABASE_URL",
        f"postgresql://app:s3cret-pw@{'a' * 64}.example/app",
        f"DATABASE_URL: {INVALID_HOST}",
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
    "queue-name": ("WORKER_QUEUE", "jobs for all", "WORKER_QUEUE='jobs for all': String should"),
{%- endif %}
{%- if cookiecutter.worker == "celery" %}
    "no-worker-concurrency": ("WORKER_CONCURRENCY", "0", "WORKER_CONCURRENCY='0': Input should"),
    "visibility-not-a-number": (
        "WORKER_VISIBILITY_TIMEOUT",
        "10m",
        "WORKER_VISIBILITY_TIMEOUT='10m': Input should be a valid integer",
    ),
{%- elif cookiecutter.worker == "rq" %}
    "maintenance-too-long": (
        "WORKER_MAINTENANCE_INTERVAL",
        "3601",
        "WORKER_MAINTENANCE_INTERVAL='3601': Input should be less than or equal to 3600",
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
{%- if cookiecutter.database != "none" or cookiecutter.worker != "none" %}


# URLs that parse more than one way, or name a host no resolver takes: refused at start.
# (One of each kind is in BAD_VALUES; test_cli.py runs some through the real commands.)
UNSAFE_URLS = {
{%- if cookiecutter.database != "none" %}
    # urllib read host `app`, port 12: the check passed a URL SQLAlchemy reads otherwise.
    "database-digits-then-slash": (
        "DATABASE_URL",
        "postgresql://app:12/34s3cret-pw@db/app",
        f"DATABASE_URL: {AMBIGUOUS_URL}",
    ),
    "database-hash-in-password": (
        "DATABASE_URL",
        "postgresql://app:s3cret-pw#1@db/app",
        f"DATABASE_URL: {AMBIGUOUS_URL}",
    ),
    "database-question-mark-in-password": (
        "DATABASE_URL",
        "postgresql://app:s3cret-pw?x@db/app",
        f"DATABASE_URL: {AMBIGUOUS_URL}",
    ),
    "database-host-name-too-long": (
        "DATABASE_URL",
        f"postgresql://app:s3cret-pw@{'a.' * 127}example/app",
        f"DATABASE_URL: {INVALID_HOST}",
    ),
    "database-host-empty-label": (
        "DATABASE_URL",
        "postgresql://app:s3cret-pw@db..internal/app",
        f"DATABASE_URL: {INVALID_HOST}",
    ),
{%- endif %}
{%- if cookiecutter.worker != "none" %}
    "redis-at-in-password": (
        "REDIS_URL",
        "redis://:s3cret-pw@pw@cache:6379/0",
        f"REDIS_URL: {AMBIGUOUS_URL}",
    ),
    "redis-hash-in-password": (
        "REDIS_URL",
        "redis://:12#s3cret-pw@cache:6379/0",
        f"REDIS_URL: {AMBIGUOUS_URL}",
    ),
    "redis-host-label-too-long": (
        "REDIS_URL",
        f"redis://:s3cret-pw@{'a' * 64}.example:6379/0",
        f"REDIS_URL: {INVALID_HOST}",
    ),
{%- endif %}
}


@pytest.mark.usefixtures("required_env")
@pytest.mark.parametrize(("name", "value", "line"), UNSAFE_URLS.values(), ids=UNSAFE_URLS.keys())
def test_a_url_that_parses_more_than_one_way_is_refused(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, line: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError) as raised:
        load_settings()
    assert raised.value.lines == [line]
{%- endif %}
{%- if cookiecutter.database != "none" %}


def under_a_file(root: Path) -> Path:
    (root / "file").write_text("")
    return root / "file" / "data" / "app.sqlite3"


def in_a_read_only_directory(root: Path) -> Path:
    root.chmod(0o555)
    return root / "app.sqlite3"


# How the file is made unusable -> what the line says.
UNUSABLE_SQLITE: dict[str, tuple[Callable[[Path], Path], str]] = {
    "a-directory": (lambda root: root, "is a directory, not a SQLite file"),
    "under-a-file": (under_a_file, "is not a directory: no SQLite file can be made under it"),
    "read-only-directory": (in_a_read_only_directory, "is not writable (a read-only filesystem?)"),
}


# Root writes in a read-only directory: as root, the read-only case is proven on a
# truly read-only filesystem instead, by the template's image tests (--read-only).
@pytest.mark.parametrize(
    ("make_path", "problem"),
    [
        pytest.param(*case, id=key)
        for key, case in UNUSABLE_SQLITE.items()
        if key != "read-only-directory" or os.geteuid() != 0
    ],
)
def test_an_unusable_sqlite_path_is_refused_in_one_line(
    tmp_path: Path, make_path: Callable[[Path], Path], problem: str
) -> None:
    root = tmp_path / "root"  # a directory of its own, to make read-only
    root.mkdir()
    path = make_path(root)
    with pytest.raises(ConfigError) as raised:
        load_settings({"DATABASE_URL": f"sqlite:///{path}"})
    [line] = raised.value.lines
    assert line.startswith("DATABASE_URL: ")
    assert line.endswith(problem)
{%- endif %}


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
    names = [name.upper() for name in Settings.model_fields]
    assert list(effective_config(load_settings())) == names


def test_env_example_matches_the_settings_schema() -> None:
    committed = (PROJECT_ROOT / ".env.example").read_text()
    assert committed == dotenv_example(), "regenerate it with `make env-example`"

{%- if cookiecutter.database != "none" or cookiecutter.worker != "none" %}


# URL delimiters, and letters no line the service writes holds: four of them in a row in any
# output are a piece of the password.
URL_TEXT_ALPHABET = "@:/?#[]%&=+;!$'()~QZXζж€"
# Each secret URL, pointing at a port nothing listens on: every check fails, and says why.
SECRET_URLS = {
{%- if cookiecutter.database != "none" %}
    "DATABASE_URL": "postgresql://app:{password}@127.0.0.1:{port}/app",
{%- endif %}
{%- if cookiecutter.worker != "none" %}
    "REDIS_URL": "redis://app:{password}@127.0.0.1:{port}/0",
{%- endif %}
}


def pieces(secret: str) -> set[str]:
    """Every 4 characters in a row of `secret`."""
    return {secret[start : start + 4] for start in range(len(secret) - 3)}


def command_output(*args: str) -> tuple[int, str]:
    """The exit status of the service's command, run in-process, and all it wrote."""
    output = io.StringIO()
    with redirect_stdout(output), redirect_stderr(output):
        status = main(list(args))
    return status, output.getvalue()


def readyz_output() -> str:
    """/readyz's answer and the log lines written while answering it."""
    settings = load_settings()
    output = io.StringIO()
    with redirect_stdout(output):
        configure_logging(settings)
        with app_client(settings) as client:
            response = client.get("/readyz")
    assert response.status_code == 503
    return response.text + output.getvalue()


@pytest.mark.parametrize("variable", SECRET_URLS)
@hypothesis_settings(
    max_examples=20,
    derandomize=True,  # the same examples in every run
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(credential=st.text(URL_TEXT_ALPHABET, min_size=4, max_size=16), encoded=st.booleans())
@example(credential="QZ@ζж€X", encoded=False)  # SQLAlchemy took `ζж€X@127.0.0.1` for the host
@example(credential="QZ@ζж€X", encoded=True)
def test_no_output_holds_any_part_of_a_password(
    monkeypatch: pytest.MonkeyPatch, unused_port: int, variable: str, credential: str, encoded: bool
) -> None:
    """Whatever the password (`credential`), refused or tried: no output shows a piece of it."""
    in_url = quote(credential, safe="") if encoded else credential
    for name, url in SECRET_URLS.items():  # all unreachable, so that readiness fails
        monkeypatch.setenv(name, url.format(password="", port=unused_port))
    monkeypatch.setenv(variable, SECRET_URLS[variable].format(password=in_url, port=unused_port))
    status, shown = command_output("check-config")
    if status == 0:  # accepted: then every attempt to connect fails, and says why
{%- if cookiecutter.database != "none" %}
        if variable == "DATABASE_URL":
            shown += command_output("migrate")[1]
{%- endif %}
        shown += readyz_output()
    assert [piece for piece in pieces(credential) | pieces(in_url) if piece in shown] == []
{%- endif %}
