"""Every bad answer stops generation with one line naming the field, the value and the rule."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from . import conftest
from .conftest import COOKIECUTTER_JSON, bake_on_command_line
from .hooks import pre_gen

DEFAULT_ANSWERS: dict[str, Any] = {**conftest.DEFAULT_ANSWERS, "_cookiecutter": COOKIECUTTER_JSON}

# id -> (answers that differ from the defaults, the line the hook must print)
BAD_ANSWERS: dict[str, tuple[dict[str, str], str]] = {
    "slug-empty": ({"project_slug": ""}, "project_slug='': must be lowercase letters"),
    "slug-uppercase": ({"project_slug": "My-Service"}, "project_slug='My-Service': must be"),
    "slug-space": ({"project_slug": "my service"}, "project_slug='my service': must be"),
    "slug-path": ({"project_slug": "../escape"}, "project_slug='../escape': must be"),
    "slug-leading-digit": ({"project_slug": "9lives"}, "project_slug='9lives': must be"),
    "slug-double-hyphen": ({"project_slug": "my--service"}, "project_slug='my--service': must"),
    "slug-trailing-hyphen": ({"project_slug": "service-"}, "project_slug='service-': must be"),
    "slug-too-long": ({"project_slug": "s" * 51}, f"project_slug='{'s' * 51}': is longer than 50"),
    "slug-keyword": ({"project_slug": "class"}, "project_slug='class': is a Python keyword"),
    "slug-stdlib": (
        {"project_slug": "logging"},
        "project_slug='logging': shadows the standard-library module 'logging'",
    ),
    "slug-stdlib-test": ({"project_slug": "test"}, "project_slug='test': shadows the standard"),
    "slug-dependency": (
        {"project_slug": "fastapi"},
        "project_slug='fastapi': shadows the dependency 'fastapi'",
    ),
    "slug-dependency-hyphenated": (
        {"project_slug": "pydantic-core"},
        "project_slug='pydantic-core': shadows the dependency 'pydantic-core'",
    ),
    "package-hyphen": ({"package_name": "my-service"}, "package_name='my-service': must be a"),
    "package-leading-digit": ({"package_name": "1service"}, "package_name='1service': must be"),
    "package-uppercase": ({"package_name": "MyService"}, "package_name='MyService': must be"),
    "package-keyword": ({"package_name": "import"}, "package_name='import': is a Python keyword"),
    "package-stdlib": ({"package_name": "json"}, "package_name='json': shadows the standard"),
    "package-dependency": (
        {"package_name": "sqlalchemy"},
        "package_name='sqlalchemy': shadows the dependency 'sqlalchemy'",
    ),
    "package-layout": ({"package_name": "tests"}, "package_name='tests': is used by the project"),
    "email-quote": (
        {"author_email": 'a"b@example.com'},
        "author_email='a\"b@example.com': is not an email address",
    ),
    "email-no-at": ({"author_email": "team.example.com"}, "author_email='team.example.com': is"),
    # Found by tests/test_answers.py: hatchling refuses the metadata, so `uv sync` failed.
    "email-doubled-dot": ({"author_email": "a..b@example.com"}, "author_email='a..b@example.com'"),
    "email-leading-dot": ({"author_email": ".a@example.com"}, "author_email='.a@example.com': is"),
    # The build backend refused it (NonASCIILocalPartDefect): `uv sync` failed after the bake.
    "email-non-ascii-local-part": ({"author_email": "é@x.io"}, "author_email='é@x.io': is not"),
    "email-no-domain": ({"author_email": "team@"}, "author_email='team@': is not an email"),
    "email-space": ({"author_email": "te am@example.com"}, "author_email='te am@example.com'"),
    "version-word": ({"version": "latest"}, "version='latest': is not a PEP 440 version"),
    "version-suffix": ({"version": "1.0-final"}, "version='1.0-final': is not a PEP 440"),
    "version-empty": ({"version": ""}, "version='': is not a PEP 440 version"),
    "name-empty": (
        {"project_name": " ", "project_slug": "svc"},
        "project_name=' ': must not be empty",
    ),
    "name-quote": (
        {"project_name": 'The "Best" Service'},
        "project_name='The \"Best\" Service': must not contain double quotes",
    ),
    "name-too-long": ({"project_name": "N" * 51}, f"project_name='{'N' * 51}': is longer than 50"),
    "description-backslash": (
        {"description": "Serves C:\\files"},
        "description='Serves C:\\\\files': must not contain double quotes, backslashes",
    ),
    "author-newline": ({"author_name": "Ada\nLovelace"}, "author_name='Ada\\nLovelace': must not"),
    # Found by the property-based test of the questions (tests/test_answers.py).
    "slug-dependency-distribution": (
        {"project_slug": "python-dotenv"},
        "project_slug='python-dotenv': shadows the dependency 'python-dotenv'",
    ),
    "slug-dependency-command": (
        {"project_slug": "rqworker"},
        "project_slug='rqworker': shadows the command 'rqworker' of a dependency",
    ),
    "package-tool-dependency": (
        {"package_name": "mypy_extensions"},
        "package_name='mypy_extensions': shadows the dependency 'mypy_extensions'",
    ),
    "package-leading-underscore": ({"package_name": "_private"}, "package_name='_private': must"),
    "package-dunder-main": ({"package_name": "__main__"}, "package_name='__main__': must be"),
    "package-ignored-folder": (
        {"package_name": "build"},
        "package_name='build': is a folder the project's .gitignore leaves out (build/)",
    ),
    "slug-slash": ({"project_slug": "team/service"}, "project_slug='team/service': must be"),
    "slug-too-long-for-a-folder": (
        {"project_slug": "s" * 300},
        f"project_slug='{'s' * 300}': is longer than 50 characters",
    ),
    "email-control-character": (
        {"author_email": "a\x01b@example.com"},
        "author_email='a\\x01b@example.com': is not an email address",
    ),
    "email-angle-bracket": ({"author_email": "a<b@example.com"}, "author_email='a<b@example.com'"),
    "version-local": ({"version": "1.0+abc"}, "version='1.0+abc': has an epoch (N!) or a local"),
    "version-epoch": ({"version": "1!2.0"}, "version='1!2.0': has an epoch (N!) or a local"),
    "name-leading-space": (
        {"project_name": "  Lead", "project_slug": "lead"},
        "project_name='  Lead': must not start or end with a space",
    ),
    "description-trailing-space": (
        {"description": "Bills. "},
        "description='Bills. ': must not start or end with a space",
    ),
    "description-empty": ({"description": ""}, "description='': must not be empty"),
    "author-empty": ({"author_name": ""}, "author_name='': must not be empty"),
    "name-too-wide": (
        {"project_name": "服" * 26, "project_slug": "svc"},
        f"project_name='{'服' * 26}': is longer than 50 columns (a wide character counts 2)",
    ),
    "description-line-separator": (
        {"description": "one\u2028two"},
        "description='one\\u2028two': must not contain double quotes, backslashes, control",
    ),
    "author-c1-control": ({"author_name": "A\x85da"}, "author_name='A\\x85da': must not contain"),
    "author-bidi-override": (
        {"author_name": "\u202eAda"},
        "author_name='\\u202eAda': must not contain",
    ),
    "database-unknown": (
        {"database": "mysql"},
        "database='mysql': not one of the choices (sqlite, postgresql, none)",
    ),
    "worker-unknown": (
        {"worker": "huey"},
        "worker='huey': not one of the choices (none, celery, rq)",
    ),
    "docker-not-boolean": ({"use_docker": "maybe"}, "use_docker='maybe': must be yes or no"),
    # Names the observability options' dependencies bring, refused whatever the answers.
    "package-observability-dependency": (
        {"package_name": "sentry_sdk"},
        "package_name='sentry_sdk': shadows the dependency 'sentry_sdk'",
    ),
    "slug-observability-command": (
        {"project_slug": "opentelemetry-instrument"},
        "project_slug='opentelemetry-instrument': shadows the command 'opentelemetry-instrument'",
    ),
}


def test_default_answers_pass() -> None:
    assert pre_gen.problems(DEFAULT_ANSWERS) == []


@pytest.mark.parametrize("worker", ["celery", "rq"])
def test_worker_without_a_database_is_accepted(worker: str) -> None:
    """A service that only relays work (sends mail, calls an API) needs no database."""
    assert pre_gen.problems({**DEFAULT_ANSWERS, "worker": worker, "database": "none"}) == []


@pytest.mark.parametrize(("changes", "line"), BAD_ANSWERS.values(), ids=BAD_ANSWERS.keys())
def test_bad_answer_is_one_line_naming_field_value_and_rule(
    changes: dict[str, str], line: str
) -> None:
    [problem] = pre_gen.problems({**DEFAULT_ANSWERS, **changes})
    assert problem.startswith(line)


def test_every_bad_answer_is_reported_at_once() -> None:
    answers = {**DEFAULT_ANSWERS, "author_email": "x", "version": "y"}
    assert [line.split("=")[0] for line in pre_gen.problems(answers)] == ["author_email", "version"]


# Bakes that cookiecutter itself refuses before the hook can run: an invalid
# choice fails in cookiecutter's own prompt code, and so does a yes/no answer
# that is not one (cookiecutter: "could not be converted to a boolean").
REFUSED_BEFORE_HOOK = {"database-unknown", "worker-unknown", "docker-not-boolean"}
BAKED_BAD_ANSWERS = {
    key: value for key, value in BAD_ANSWERS.items() if key not in REFUSED_BEFORE_HOOK
}


@pytest.fixture
def output_dir(tmp_path: Path) -> Path:
    output = tmp_path / "out"
    output.mkdir()
    return output


@pytest.mark.parametrize(
    ("changes", "line"), BAKED_BAD_ANSWERS.values(), ids=BAKED_BAD_ANSWERS.keys()
)
def test_bad_answer_stops_the_command_line_bake_and_leaves_nothing(
    tmp_path: Path, output_dir: Path, changes: dict[str, str], line: str
) -> None:
    result = bake_on_command_line(tmp_path, changes)
    assert result.returncode == 1
    # A bad slug is also a bad package name, which is derived from it: both are reported.
    errors = [text for text in result.stderr.splitlines() if text.startswith("error: ")]
    assert any(error.startswith(f"error: {line}") for error in errors), result.stderr
    assert list(output_dir.iterdir()) == []


@pytest.mark.parametrize("key", sorted(REFUSED_BEFORE_HOOK))
def test_answers_cookiecutter_refuses_itself_leave_nothing(
    tmp_path: Path, output_dir: Path, key: str
) -> None:
    changes, _ = BAD_ANSWERS[key]
    result = bake_on_command_line(tmp_path, changes)
    assert result.returncode != 0
    assert list(output_dir.iterdir()) == []
