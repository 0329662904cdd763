"""Validate every answer before cookiecutter writes a file.

Each bad answer becomes one line on stderr naming the field, the value and
what is allowed; any bad answer stops generation (cookiecutter then removes
the half-made folder). Standard library only: hooks run on the interpreter
that runs cookiecutter, not in the generated project's environment.
"""

from __future__ import annotations

import json
import keyword
import re
import sys
import unicodedata
from collections.abc import Callable, Iterator, Mapping


def words(text: str) -> frozenset[str]:
    return frozenset(text.split())


# What the generated service's environments install, for every stack and option,
# dev group and build backend included (tests/test_refused_names.py derives these from
# real environments and fails when one is missing). A project that takes one of
# these names would shadow or replace it: as its distribution name (the slug),
# its command (the slug) or its import name (the package).
DEPENDENCY_DISTRIBUTIONS = words(
    """
    alembic amqp annotated-doc annotated-types anyio asgiref ast-serialize billiard
    blinker celery certifi charset-normalizer click click-didyoumean click-plugins
    click-repl croniter fastapi flask googleapis-common-protos greenlet gunicorn h11
    hatchling honcho httpcore httpcore2 httptools httpx httpx2 hypothesis idna iniconfig
    itsdangerous jinja2 kombu librt mako markupsafe mypy mypy-extensions
    opentelemetry-api opentelemetry-exporter-http-transport
    opentelemetry-exporter-otlp-common opentelemetry-exporter-otlp-proto-common
    opentelemetry-exporter-otlp-proto-http opentelemetry-instrumentation
    opentelemetry-instrumentation-asgi opentelemetry-instrumentation-celery
    opentelemetry-instrumentation-fastapi opentelemetry-instrumentation-flask
    opentelemetry-instrumentation-sqlalchemy opentelemetry-instrumentation-wsgi
    opentelemetry-proto opentelemetry-sdk opentelemetry-semantic-conventions
    opentelemetry-util-http packaging pathspec pip pluggy prompt-toolkit protobuf
    psycopg psycopg-binary pydantic pydantic-core pydantic-settings pygments pytest
    python-dateutil python-dotenv redis requests rq ruff sentry-sdk setuptools six
    sniffio sortedcontainers sqlalchemy starlette truststore types-gunicorn
    typing-extensions typing-inspection tzdata tzlocal urllib3 uv uvicorn uvloop vine
    wcwidth werkzeug wrapt
    """
)
DEPENDENCY_MODULES = words(
    """
    _hypothesis_ftz_detector _hypothesis_globals _hypothesis_pytestplugin _pytest
    alembic amqp annotated_doc annotated_types anyio asgiref ast_serialize billiard
    blinker celery certifi charset_normalizer click click_didyoumean click_plugins
    click_repl croniter dateutil dotenv fastapi flask google greenlet gunicorn h11
    honcho httpcore httpcore2 httptools httpx httpx2 hypothesis idna iniconfig
    itsdangerous jinja2 kombu librt mako markupsafe mypy mypy_extensions mypyc
    opentelemetry packaging pathspec pip pluggy prompt_toolkit psycopg psycopg_binary py
    pydantic pydantic_core pydantic_settings pygments pytest redis requests rq ruff
    sentry_sdk setuptools six sniffio sortedcontainers sqlalchemy starlette truststore
    typing_extensions typing_inspection tzdata tzlocal urllib3 uv uvicorn uvloop vine
    wcwidth werkzeug wrapt
    """
)
DEPENDENCY_COMMANDS = words(
    """
    alembic celery dmypy dotenv fastapi flask gunicorn gunicornc honcho httpx httpx2
    hypothesis idna mako-render mypy mypyc normalizer opentelemetry-bootstrap
    opentelemetry-instrument py.test pygmentize pytest rq rqinfo rqworker ruff stubgen
    stubtest uv uvicorn uvx
    """
)
# sys.stdlib_module_names leaves out the standard library's own `test` package.
STDLIB_MODULES = sys.stdlib_module_names | {"test"}
# Names the project itself uses for something else.
PROJECT_NAMES = frozenset({"tests", "migrations", "src"})
# Folders the project's .gitignore leaves out, and so its build backend too.
IGNORED_NAMES = frozenset({"build", "dist", "htmlcov"})

SLUG_PATTERN = re.compile(r"[a-z][a-z0-9]*(?:-[a-z0-9]+)*")
PACKAGE_PATTERN = re.compile(r"[a-z][a-z0-9_]*")
# An address as people write them, with no quotes, backslashes, spaces or
# control characters: it is rendered into a TOML string and the package's
# metadata. The part before the @ is an ASCII dot-atom (no leading, trailing or
# doubled dot), as the build backend's parser (the standard library's email
# package) requires; the domain may have letters of any script.
EMAIL_PATTERN = re.compile(
    r"[A-Za-z0-9!#$%&'*+/=?^`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^`{|}~-]+)*"
    r"@(?:[^\W_](?:[\w-]*[^\W_])?\.)+[A-Za-z][A-Za-z0-9-]*[A-Za-z0-9]"
)
# PEP 440, as published in the specification (and used by `packaging`).
VERSION_PATTERN = re.compile(
    r"""
    v?
    (?:(?P<epoch>[0-9]+)!)?
    (?P<release>[0-9]+(?:\.[0-9]+)*)
    (?P<pre>[-_.]?(?:a|b|c|rc|alpha|beta|pre|preview)[-_.]?[0-9]*)?
    (?P<post>(?:-[0-9]+)|(?:[-_.]?(?:post|rev|r)[-_.]?[0-9]*))?
    (?P<dev>[-_.]?dev[-_.]?[0-9]*)?
    (?:\+(?P<local>[a-z0-9]+(?:[-_.][a-z0-9]+)*))?
    """,
    re.VERBOSE | re.IGNORECASE,
)
# Free text is rendered into TOML and Python string literals: no quotes or
# backslashes, no control characters (C0, C1), no line or paragraph separators,
# no bidirectional overrides (they make code read differently than it runs),
# no lone surrogates (a command line's undecodable bytes; no file can hold them).
TEXT_FORBIDDEN = re.compile(
    '["\\\\\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]'
)
TEXT_MAX_LENGTH = 200
# Names appear in code lines that must stay within the linter's line length,
# which counts a wide character (CJK, most emoji) as two columns.
NAME_MAX_LENGTH = 50

Answers = Mapping[str, object]


def columns(text: str) -> int:
    """Columns `text` takes in an editor or a linter: wide and fullwidth characters count 2."""
    return sum(2 if unicodedata.east_asian_width(char) in "WF" else 1 for char in text)


def module_name_problem(name: str) -> str | None:
    """Why `name` cannot be the service's import name, or None if it can."""
    if keyword.iskeyword(name):
        return "is a Python keyword; choose another name"
    if name in STDLIB_MODULES:
        return f"shadows the standard-library module {name!r}; choose another name"
    if name in DEPENDENCY_MODULES:
        return f"shadows the dependency {name!r}; choose another name"
    if name in PROJECT_NAMES:
        return f"is used by the project layout ({name}/); choose another name"
    if name in IGNORED_NAMES:
        return (
            f"is a folder the project's .gitignore leaves out ({name}/), "
            "so the package would not be built; choose another name"
        )
    return None


def check_slug(slug: str) -> str | None:
    if len(slug) > NAME_MAX_LENGTH:
        return f"is longer than {NAME_MAX_LENGTH} characters"
    if not SLUG_PATTERN.fullmatch(slug):
        return (
            "must be lowercase letters, digits and single hyphens, "
            "starting with a letter (e.g. 'my-service')"
        )
    if slug in DEPENDENCY_DISTRIBUTIONS:
        return f"shadows the dependency {slug!r}; choose another name"
    if slug in DEPENDENCY_COMMANDS:
        return f"shadows the command {slug!r} of a dependency; choose another name"
    return module_name_problem(slug.replace("-", "_"))


def check_package(name: str) -> str | None:
    if len(name) > NAME_MAX_LENGTH:
        return f"is longer than {NAME_MAX_LENGTH} characters"
    if not PACKAGE_PATTERN.fullmatch(name) or not name.isidentifier():
        return (
            "must be a lowercase Python identifier: letters, digits and "
            "underscores, starting with a letter (e.g. 'my_service')"
        )
    return module_name_problem(name)


def check_email(email: str) -> str | None:
    if not EMAIL_PATTERN.fullmatch(email):
        return "is not an email address (expected name@example.com)"
    return None


def check_version(version: str) -> str | None:
    match = VERSION_PATTERN.fullmatch(version)
    if not match:
        return "is not a PEP 440 version (e.g. '0.1.0', '1.0rc1')"
    if match["epoch"] or match["local"]:
        return (
            "has an epoch (N!) or a local label (+...), which an image tag cannot hold "
            "and PyPI refuses; use a plain version (e.g. '0.1.0')"
        )
    return None


def check_text(
    text: str, *, max_length: int = TEXT_MAX_LENGTH, measure: Callable[[str], int] = len
) -> str | None:
    if not text.strip():
        return "must not be empty"
    if text != text.strip():
        return "must not start or end with a space or other whitespace"
    if measure(text) > max_length:
        unit = "columns (a wide character counts 2)" if measure is columns else "characters"
        return f"is longer than {max_length} {unit}"
    if TEXT_FORBIDDEN.search(text):
        return (
            "must not contain double quotes, backslashes, control characters, "
            "line separators or bidirectional overrides"
        )
    return None


FIELD_CHECKS: dict[str, Callable[[str], str | None]] = {
    "project_name": lambda value: check_text(value, max_length=NAME_MAX_LENGTH, measure=columns),
    "project_slug": check_slug,
    "package_name": check_package,
    "description": check_text,
    "author_name": check_text,
    "author_email": check_email,
    "version": check_version,
}


def choice_problems(answers: Answers, choices: Mapping[str, object]) -> Iterator[str]:
    """Answers to multiple-choice questions must be one of cookiecutter.json's values."""
    for field, allowed in choices.items():
        if field.startswith("_") or not isinstance(allowed, list):
            continue
        value = answers.get(field)
        if value not in allowed:
            options = ", ".join(map(str, allowed))
            yield f"{field}={value!r}: not one of the choices ({options})"


def boolean_problems(answers: Answers, defaults: Mapping[str, object]) -> Iterator[str]:
    """Yes/no questions must arrive as booleans (cookiecutter converts y/n, yes/no, true/false)."""
    for field, default in defaults.items():
        if isinstance(default, bool) and not isinstance(answers.get(field), bool):
            yield f"{field}={answers.get(field)!r}: must be yes or no (y/n, true/false)"


def problems(answers: Answers) -> list[str]:
    """One line per bad answer; empty when every answer is acceptable."""
    found = []
    for field, check in FIELD_CHECKS.items():
        value = answers.get(field)
        why = check(value) if isinstance(value, str) else "must be text (got a non-string value)"
        if why:
            found.append(f"{field}={value!r}: {why}")
    choices = answers.get("_cookiecutter", {})
    if isinstance(choices, Mapping):
        found.extend(choice_problems(answers, choices))
        found.extend(boolean_problems(answers, choices))
    return found


def main(answers_json: str) -> int:
    found = problems(json.loads(answers_json))
    for line in found:
        print(f"error: {line}", file=sys.stderr)
    return 1 if found else 0


if __name__ == "__main__":
    # Cookiecutter renders this file before running it: the answers arrive as JSON.
    sys.exit(main(r"""{{ cookiecutter | jsonify }}"""))
