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
from collections.abc import Callable, Iterator, Mapping

# Import names of the generated service's dependencies and tools. A package
# with one of these names would shadow it in the project's own environment.
DEPENDENCY_MODULES = frozenset(
    {
        "alembic",
        "amqp",
        "annotated_types",
        "anyio",
        "billiard",
        "blinker",
        "celery",
        "click",
        "click_didyoumean",
        "click_plugins",
        "click_repl",
        "croniter",
        "dateutil",
        "dotenv",
        "fastapi",
        "flask",
        "gunicorn",
        "h11",
        "honcho",
        "httpcore",
        "httptools",
        "httpx",
        "idna",
        "itsdangerous",
        "jinja2",
        "kombu",
        "mako",
        "markupsafe",
        "mypy",
        "packaging",
        "pip",
        "prompt_toolkit",
        "psycopg",
        "psycopg_binary",
        "pydantic",
        "pydantic_core",
        "pydantic_settings",
        "pytest",
        "redis",
        "rq",
        "ruff",
        "setuptools",
        "six",
        "sniffio",
        "sqlalchemy",
        "starlette",
        "typing_extensions",
        "tzdata",
        "tzlocal",
        "uv",
        "uvicorn",
        "uvloop",
        "vine",
        "wcwidth",
        "werkzeug",
    }
)
# sys.stdlib_module_names leaves out the standard library's own `test` package.
STDLIB_MODULES = sys.stdlib_module_names | {"test"}
# Names the project itself uses for something else.
PROJECT_NAMES = frozenset({"tests", "migrations", "src"})

SLUG_PATTERN = re.compile(r"[a-z][a-z0-9]*(?:-[a-z0-9]+)*")
PACKAGE_PATTERN = re.compile(r"[a-z_][a-z0-9_]*")
# No quotes or backslashes either: the address is rendered into a TOML string.
EMAIL_PATTERN = re.compile(r"[^@\s\"\\]+@[^@\s\"\\]+\.[A-Za-z0-9-]{2,}")
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
# Free text is rendered into TOML and Python string literals.
TEXT_FORBIDDEN = re.compile(r'["\\\x00-\x1f\x7f]')
TEXT_MAX_LENGTH = 200
# Names appear in code lines that must stay within the linter's line length.
NAME_MAX_LENGTH = 50

Answers = Mapping[str, object]


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
    return None


def check_slug(slug: str) -> str | None:
    if len(slug) > NAME_MAX_LENGTH:
        return f"is longer than {NAME_MAX_LENGTH} characters"
    if not SLUG_PATTERN.fullmatch(slug):
        return (
            "must be lowercase letters, digits and single hyphens, "
            "starting with a letter (e.g. 'my-service')"
        )
    return module_name_problem(slug.replace("-", "_"))


def check_package(name: str) -> str | None:
    if len(name) > NAME_MAX_LENGTH:
        return f"is longer than {NAME_MAX_LENGTH} characters"
    if not PACKAGE_PATTERN.fullmatch(name) or not name.isidentifier():
        return (
            "must be a lowercase Python identifier: letters, digits and "
            "underscores, not starting with a digit (e.g. 'my_service')"
        )
    return module_name_problem(name)


def check_email(email: str) -> str | None:
    if not EMAIL_PATTERN.fullmatch(email):
        return "is not an email address (expected name@example.com)"
    return None


def check_version(version: str) -> str | None:
    if not VERSION_PATTERN.fullmatch(version):
        return "is not a PEP 440 version (e.g. '0.1.0', '1.0rc1')"
    return None


def check_text(
    text: str, *, required: bool = False, max_length: int = TEXT_MAX_LENGTH
) -> str | None:
    if required and not text.strip():
        return "must not be empty"
    if len(text) > max_length:
        return f"is longer than {max_length} characters"
    if TEXT_FORBIDDEN.search(text):
        return "must not contain double quotes, backslashes or control characters"
    return None


FIELD_CHECKS: dict[str, Callable[[str], str | None]] = {
    "project_name": lambda value: check_text(value, required=True, max_length=NAME_MAX_LENGTH),
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
