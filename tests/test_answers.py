"""What people type: an accepted answer bakes a working project, a refused one leaves nothing.

A property-based test (hypothesis) of the free-text and name questions, with
answers as people really type them: any Unicode, look-alike and wide
characters, emoji, quotes, Jinja and TOML/YAML syntax, surrounding spaces,
empty and very long values, and names that tools, packages or the project's
own files already have. Each answer set is baked by the command line, as a
person runs it, in a sandbox (its own HOME, TMPDIR, working directory and
cookiecutter config).

- Every example: a refused bake prints one `error:` line per bad field and
  leaves nothing behind; an accepted one renders every answer as typed, every
  TOML/YAML/JSON file parses, no Jinja is left, and ruff checks and formats clean.
- A few examples of accepted answers: the project locks and installs (into one
  shared environment, so only the project itself is installed each time),
  type-checks, imports its package and passes its in-process test tier.

The examples are derived from a fixed seed (the same run every time); set
HYPOTHESIS_PROFILE=explore to search further with random ones.
"""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

from .conftest import (
    COOKIECUTTER_JSON,
    OBSERVABILITY_OPTIONS,
    RUFF,
    UNRENDERED,
    UV,
    bake_on_command_line,
    parse_structured,
    project_env,
    run,
)
from .hooks import pre_gen

pytestmark = pytest.mark.xdist_group("answers")

settings.register_profile(
    "ci",
    derandomize=True,
    database=None,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
settings.register_profile(
    "explore",
    parent=settings.get_profile("ci"),
    derandomize=False,
    max_examples=500,
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

# Fragments people type, and that break one file format or another.
FRAGMENTS = [
    # Jinja, and what looks like it elsewhere.
    "{{ 7*7 }}",
    "{% raw %}",
    "{% endraw %}",
    "{# note #}",
    "{{ cookiecutter.project_name }}",
    "${{ secrets.TOKEN }}",
    "{{",
    "}}",
    "{%",
    "%}",
    # TOML, YAML, JSON, shell and Markdown syntax.
    'key = "value"',
    "[tool.ruff]",
    "'''",
    "'",
    "`",
    "- item",
    "key: value",
    "&anchor",
    "*alias",
    "!!python/object",
    "# comment",
    "---",
    "null",
    "~",
    "true",
    "0x1F",
    "1e9",
    "{}",
    "[]",
    "$(rm -rf ~)",
    "*",
    "<b>",
    "&amp;",
    "%s",
    "%(name)s",
    "\\",
    '"',
    # Look-alikes, wide characters, emoji, combining and invisible characters.
    "Ｍｙ Ｓｅｒｖｉｃｅ",
    "Мy Ѕervice",
    "ꓸ",
    "ｰ",
    "服务",
    "サービス",
    "🚀",
    "👩‍💻",
    "🇫🇷",
    "e\u0301",
    "\u200b",
    "\u200d",
    "\ufeff",
    "\u00a0",
    "\u3000",
    "\u2028",
    "\u202e",
    "İ",
    "ß",
    "ﬁ",
    "Ω",
    "𝔘𝔫𝔦",
    "\x85",
    "\t",
    "\n",
    "\r",
    # Surrounding spaces, and nothing at all.
    " ",
    "  leading",
    "trailing  ",
    "",
]

# Names a project already has a use for: its own files and folders, its tools and
# dependencies (as distributions, modules and commands), and the standard library.
TAKEN_NAMES = sorted(
    {"tests", "src", "migrations", "conftest", "docs", "deploy", "build", "dist", "makefile"}
    | {"procfile", "alembic", "setup", "main", "app", "settings", "cli", "test", "types"}
    | pre_gen.DEPENDENCY_DISTRIBUTIONS
    | pre_gen.DEPENDENCY_MODULES
    | pre_gen.DEPENDENCY_COMMANDS
    | {"json", "logging", "typing", "site", "sitecustomize", "__main__", "_pytest", "py"}
)

# Anything a terminal can produce (no lone surrogates, no NUL: a command line cannot hold it).
any_text = st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\x00"))
typed_text = st.one_of(
    any_text,
    st.sampled_from(FRAGMENTS),
    st.lists(st.one_of(st.sampled_from(FRAGMENTS), any_text), min_size=2, max_size=6).map("".join),
    st.sampled_from(FRAGMENTS).map(lambda fragment: fragment * 60),
)
names = st.one_of(
    st.from_regex(r"[a-z][a-z0-9]{0,12}(?:[-_][a-z0-9]{1,8}){0,3}", fullmatch=True),
    st.sampled_from(TAKEN_NAMES),
    st.sampled_from(TAKEN_NAMES).map(lambda name: name.replace("_", "-")),
    st.sampled_from(TAKEN_NAMES).map(lambda name: name.replace("-", "_")),
    typed_text,
)
emails = st.one_of(st.emails(), typed_text.map(lambda text: f"{text}@example.com"), typed_text)
versions = st.one_of(
    st.from_regex(
        r"v?(?:[0-9]!)?[0-9]{1,3}(?:\.[0-9]{1,3}){0,3}(?:(?:a|b|rc)[0-9])?"
        r"(?:\.post[0-9])?(?:\.dev[0-9])?(?:\+[a-z0-9]{1,4})?",
        fullmatch=True,
    ),
    typed_text,
)
FIELD_STRATEGIES: dict[str, st.SearchStrategy[str]] = {
    "project_name": typed_text,
    "project_slug": names,
    "package_name": names,
    "description": typed_text,
    "author_name": typed_text,
    "author_email": emails,
    "version": versions,
}


# Answers as most people give them: most examples then bake, and the nasty
# answers meet the rest of a project that works.
words = st.from_regex(r"[A-Z][a-z]{1,9}(?: [A-Za-z][a-z]{0,9}){0,4}", fullmatch=True)
slugs = st.from_regex(r"[a-z][a-z0-9]{2,9}(?:-[a-z0-9]{1,8}){0,2}", fullmatch=True)
PLAUSIBLE: dict[str, st.SearchStrategy[str]] = {
    "project_name": words,
    "project_slug": slugs,
    "package_name": slugs.map(lambda slug: slug.replace("-", "_")),
    "description": words.map(lambda text: f"{text}."),
    "author_name": words,
    "author_email": slugs.map(lambda slug: f"{slug}@example.com"),
    "version": st.from_regex(r"[0-9]{1,2}\.[0-9]{1,2}\.[0-9]{1,2}", fullmatch=True),
}


@st.composite
def answer_sets(draw: st.DrawFn, accepted_only: bool = False) -> dict[str, str]:
    """Some questions answered, the rest left to their defaults (the slug and package derived).

    With `accepted_only`, every question is answered with a value the pre-gen hook accepts.
    """
    answers = {}
    for field, strategy in FIELD_STRATEGIES.items():
        if accepted_only:
            # Every question answered, so no name is derived from another. The plausible
            # answers keep the filter satisfiable where few nasty ones pass (emails).
            answers[field] = draw(
                st.one_of(PLAUSIBLE[field], strategy).filter(
                    lambda value, f=field: not field_problem(f, value)
                )
            )
        elif draw(st.integers(0, 2)) == 0:  # a third of the questions answered, on average
            answers[field] = draw(st.one_of(PLAUSIBLE[field], strategy))
    if not accepted_only:
        answers["web_framework"] = draw(st.sampled_from(COOKIECUTTER_JSON["web_framework"]))
        # The yes/no questions whose code and docs name the project, answered as typed.
        for option in OBSERVABILITY_OPTIONS:
            answers[option] = draw(st.sampled_from(["yes", "no"]))
    return answers


def field_problem(field: str, value: str) -> str | None:
    return pre_gen.FIELD_CHECKS[field](value)


def files(root: Path) -> Iterator[Path]:
    yield from (path for path in sorted(root.rglob("*")) if path.is_file())


def left_behind(sandbox: Path) -> list[str]:
    """What a bake left outside the replay folder, apart from cookiecutter's own hook scripts.

    Cookiecutter writes each hook it renders to TMPDIR and never deletes it,
    and records the answers in its replay folder before it bakes: both are its
    doing, on every bake, and neither is in the project or beside it.
    """
    return [
        path.relative_to(sandbox).as_posix()
        for folder in ("home", "cwd", "out", "tmp")
        for path in (sandbox / folder).rglob("*")
        if not (folder == "tmp" and re.fullmatch(r"tmp\w+\.py", path.name))
    ]


def refused_fields(answers: dict[str, str]) -> set[str]:
    """The answers the hook refuses as typed (it must see them as typed: answers are data)."""
    return {
        field
        for field, value in answers.items()
        if field in pre_gen.FIELD_CHECKS and field_problem(field, value)
    }


def check_refused(
    result: subprocess.CompletedProcess[str], sandbox: Path, answers: dict[str, str]
) -> None:
    assert result.returncode != 0
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert errors, result.stdout + result.stderr
    named = {line.removeprefix("error: ").split("=", 1)[0] for line in errors}
    # Each refused answer is named; so may be a slug or package derived from a refused name.
    derived = {"project_slug", "package_name"} - set(answers)
    assert refused_fields(answers) <= named <= refused_fields(answers) | derived, errors
    assert left_behind(sandbox) == []


def fastapi_title(project: Path, package: str) -> object:
    tree = ast.parse((project / "src" / package / "app.py").read_text())
    return next(
        node.value.value
        for node in ast.walk(tree)
        if isinstance(node, ast.keyword)
        and node.arg == "title"
        and isinstance(node.value, ast.Constant)
    )


def check_accepted(
    result: subprocess.CompletedProcess[str], sandbox: Path, answers: dict[str, str]
) -> Path:
    assert result.returncode == 0, result.stderr
    assert refused_fields(answers) == set()
    [project] = (sandbox / "out").iterdir()
    pyproject = tomllib.loads((project / "pyproject.toml").read_text())
    metadata = pyproject["project"]
    slug = metadata["name"]
    [package] = (project / "src").iterdir()
    typed = {
        "project_name": next(
            line.removeprefix("# ")
            for line in (project / "README.md").read_text().splitlines()
            if line.startswith("# ")
        ),
        "project_slug": project.name,
        "package_name": package.name,
        "description": metadata["description"],
        "author_name": metadata["authors"][0]["name"],
        "author_email": metadata["authors"][0]["email"],
        "version": metadata["version"],
    }
    assert {field: typed[field] for field in answers if field in typed} == {
        field: value for field, value in answers.items() if field in typed
    }
    assert slug == project.name
    if answers.get("web_framework", "fastapi") == "fastapi":
        assert fastapi_title(project, package.name) == typed["project_name"]
    answered = sorted({value.encode() for value in typed.values()}, key=len, reverse=True)
    for path in files(project):
        if path.suffix in {".toml", ".yaml", ".yml", ".json"}:
            parse_structured(path)
        text = path.read_bytes()
        for value in answered:
            text = text.replace(value, b"")
        assert not UNRENDERED.search(text), path
    for command in (["check"], ["format", "--check"]):
        run([RUFF, *command, "--no-cache", "."], project)
    return project


@pytest.fixture(scope="module")
def sandboxes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    root = tmp_path_factory.mktemp("answers")
    return (root / str(number) for number in range(10**6))


@settings(max_examples=40)
@given(answers=answer_sets())
def test_every_answer_bakes_a_clean_project_or_is_refused_leaving_nothing(
    sandboxes: Iterator[Path], answers: dict[str, str]
) -> None:
    sandbox = next(sandboxes)
    result = bake_on_command_line(sandbox, answers)
    if result.returncode == 0:
        event("accepted")
        check_accepted(result, sandbox, answers)
    else:
        event("refused")
        check_refused(result, sandbox, answers)


# Answers that once broke a bake, found by the property-based tests here.
BAKED_REGRESSIONS: dict[str, dict[str, str]] = {
    # Cookiecutter evaluated answers as Jinja: '49', or a traceback for '{% raw %}'.
    "jinja-in-the-free-text": {
        "project_name": "{{ 7*7 }} Service",
        "project_slug": "svc",
        "description": "{% raw %}{{ cookiecutter.x }}{# note #}",
        "author_name": "{{ cookiecutter.project_name }}",
    },
    # The docstring wrapped at 79 characters: 158 columns of wide characters.
    "wide-description": {"description": "服务 " * 59 + "服务"},
    # ruff's RUF001/RUF002 flagged the typed characters in the docstring and the title.
    "look-alike-characters": {
        "project_name": "Ｍｙ Ѕervice ×",
        "project_slug": "svc",
        "description": "Мy 𝔘𝔫𝔦 ꓸ service, × 2.",
    },
    # hatchling looked for src/<slug>/ and found no package (uv sync failed).
    "package-named-apart-from-the-slug": {"project_slug": "billing-api", "package_name": "billing"},
}


@pytest.mark.parametrize("answers", BAKED_REGRESSIONS.values(), ids=BAKED_REGRESSIONS.keys())
def test_answers_that_once_broke_a_bake_bake_clean(tmp_path: Path, answers: dict[str, str]) -> None:
    check_accepted(bake_on_command_line(tmp_path, answers), tmp_path, answers)


@pytest.fixture(scope="module")
def shared_environment(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """One environment for every accepted bake: only the project itself changes between them."""
    root = tmp_path_factory.mktemp("answers-env")
    return project_env(
        UV_PROJECT_ENVIRONMENT=str(root / "venv"), MYPY_CACHE_DIR=str(root / "mypy-cache")
    )


@settings(max_examples=2)
@given(answers=answer_sets(accepted_only=True))
@example(answers={**BAKED_REGRESSIONS["package-named-apart-from-the-slug"], "version": "v1.0rc1"})
def test_accepted_answers_install_type_check_import_and_pass_their_tests(
    sandboxes: Iterator[Path], shared_environment: dict[str, str], answers: dict[str, str]
) -> None:
    sandbox = next(sandboxes)
    project = check_accepted(bake_on_command_line(sandbox, answers), sandbox, answers)
    [package] = (project / "src").iterdir()
    env = shared_environment
    run([UV, "lock", "--quiet"], project, env)
    run([UV, "sync", "--frozen", "--quiet", "--python", sys.executable], project, env)
    uv_run = [UV, "run", "--no-sync"]
    run([*uv_run, "mypy"], project, env)
    run([*uv_run, "python", "-c", f"import {package.name}"], project, env)
    run([*uv_run, "pytest", "-q", "-m", "not processes", "-p", "no:cacheprovider"], project, env)
