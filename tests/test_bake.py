"""Baking: each answer renders completely, deterministically, with only its own files."""

from __future__ import annotations

import fnmatch
import re
import tomllib
from pathlib import Path
from typing import Any

import pytest

from .conftest import COOKIECUTTER_JSON, DEFAULT_ANSWERS, TEMPLATE, option_values, project_files
from .hooks import post_gen

# The distributions each option value brings in (its libraries, not theirs).
VALUE_DEPENDENCIES: dict[tuple[str, str], set[str]] = {
    ("web_framework", "fastapi"): {"fastapi", "starlette", "uvicorn"},
    ("web_framework", "flask"): {"flask", "gunicorn", "werkzeug"},
    ("database", "sqlite"): {"sqlalchemy", "alembic", "psycopg"},
    ("database", "postgresql"): {"sqlalchemy", "alembic", "psycopg"},
    ("database", "none"): set(),
    ("worker", "none"): set(),
    ("worker", "celery"): {"celery", "kombu", "redis"},
    ("worker", "rq"): {"rq", "redis"},
}
# Each value of every option, baked alone (the others at their defaults, a
# worker with the default database).
OPTION_VALUES = [
    pytest.param(option, value, id=f"{option}={str(value).lower()}")
    for option in COOKIECUTTER_JSON
    if not option.startswith("_") and option in {*post_gen.OWNED_PATHS, "web_framework"}
    for value in option_values(option)
]


def bake(cookies: Any, **answers: str) -> Path:
    result = cookies.bake(extra_context=answers)
    assert result.exit_code == 0, result.exception
    path: Path = result.project_path
    return path


def dependency_names(project: Path) -> set[str]:
    pyproject = tomllib.loads((project / "pyproject.toml").read_text())
    return {re.split(r"[\[<>=;]", dep)[0] for dep in pyproject["project"]["dependencies"]}


def procfile(project: Path) -> dict[str, str]:
    lines = (project / "Procfile").read_text().splitlines()
    return {name: command.strip() for name, command in (line.split(":", 1) for line in lines)}


PROJECT_TEMPLATE = TEMPLATE / "{{cookiecutter.project_slug}}"
# Template syntax in a file's text: a variable, a block or a comment.
JINJA = re.compile(r"\{[{%#]")


@pytest.mark.parametrize("pattern", COOKIECUTTER_JSON["_copy_without_render"])
def test_files_copied_without_rendering_hold_no_template_syntax(pattern: str) -> None:
    # Cookiecutter matches these with fnmatch against paths inside the project template.
    matched = [
        path
        for path in sorted(PROJECT_TEMPLATE.rglob("*"))
        if path.is_file()
        and fnmatch.fnmatch(path.relative_to(PROJECT_TEMPLATE).as_posix(), pattern)
    ]
    assert matched, f"{pattern} matches no file"
    assert [path.name for path in matched if JINJA.search(path.read_text())] == []
    # A name that renders empty cannot be copied: cookiecutter would copy onto the folder.
    assert [path.name for path in matched if JINJA.search(path.name)] == []


def test_every_question_has_a_prompt() -> None:
    questions = {key for key in COOKIECUTTER_JSON if not key.startswith("_")}
    assert questions == set(COOKIECUTTER_JSON["__prompts__"])


def test_default_bake_is_the_sqlite_fastapi_service(cookies: Any) -> None:
    project = bake(cookies)
    assert project.name == "my-service"
    assert {"fastapi", "uvicorn", "sqlalchemy"} <= dependency_names(project)
    assert "DATABASE_URL=sqlite:///.data/my_service.sqlite3" in (
        (project / ".env.example").read_text().splitlines()
    )
    assert procfile(project) == {
        "release": "exec my-service migrate",
        "web": "exec my-service serve",
    }


@pytest.mark.parametrize(("option", "value"), OPTION_VALUES)
def test_only_the_chosen_values_files_remain(cookies: Any, option: str, value: Any) -> None:
    project = bake(cookies, **{option: value})
    answers = {**DEFAULT_ANSWERS, option: value}
    for path in post_gen.paths_to_remove(answers):
        assert not (project / path).exists(), path
    for path in post_gen.OWNED_PATHS.get(option, {}).get(value, ()):
        assert (project / path.format_map(answers)).exists(), path


@pytest.mark.parametrize(("option", "value"), OPTION_VALUES)
def test_pyproject_declares_the_script_and_the_chosen_dependencies(
    cookies: Any, option: str, value: Any
) -> None:
    project = bake(cookies, **{option: value})
    answers = {**DEFAULT_ANSWERS, option: value}
    pyproject = tomllib.loads((project / "pyproject.toml").read_text())
    assert pyproject["project"]["scripts"] == {"my-service": "my_service.cli:main"}
    names = dependency_names(project)
    chosen = {
        name
        for (option_name, option_value), names in VALUE_DEPENDENCIES.items()
        if answers[option_name] == option_value
        for name in names
    }
    # Every project's settings are a pydantic-settings model.
    assert {"pydantic", "pydantic-settings", *chosen} <= names
    assert not (set().union(*VALUE_DEPENDENCIES.values()) - chosen) & names


@pytest.mark.parametrize(
    ("database", "worker"),
    [
        (database, worker)
        for database in COOKIECUTTER_JSON["database"]
        for worker in COOKIECUTTER_JSON["worker"]
    ],
    ids=lambda value: value,
)
def test_procfile_has_release_with_a_database_and_worker_with_a_worker(
    cookies: Any, database: str, worker: str
) -> None:
    project = bake(cookies, database=database, worker=worker)
    # `exec`: the runner's shell becomes the process, which gets the signals and reports its status.
    expected = {"web": "exec my-service serve"}
    if database != "none":
        expected["release"] = "exec my-service migrate"
    if worker != "none":
        expected["worker"] = "exec my-service worker"
    assert procfile(project) == expected
    assert (project / "src" / "my_service" / "worker.py").is_file() is (worker != "none")


def test_same_answers_render_byte_identical_trees(cookies: Any) -> None:
    answers = {"project_name": "Billing API", "database": "postgresql"}
    first, second = bake(cookies, **answers), bake(cookies, **answers)
    assert first != second
    assert project_files(first) == project_files(second)


@pytest.mark.parametrize("license_id", COOKIECUTTER_JSON["license"])
def test_license_renders_with_the_author(cookies: Any, license_id: str) -> None:
    project = bake(cookies, license=license_id, author_name="Acme Platform Team")
    text = (project / "LICENSE").read_text()
    assert "Acme Platform Team" in text
    assert text.endswith("\n")
    assert not text.endswith("\n\n")
    expected = "LicenseRef-Proprietary" if license_id == "Proprietary" else license_id
    assert tomllib.loads((project / "pyproject.toml").read_text())["project"]["license"] == expected


@pytest.mark.parametrize("python_version", COOKIECUTTER_JSON["python_version"])
def test_python_version_sets_the_floor_everywhere(cookies: Any, python_version: str) -> None:
    project = bake(cookies, python_version=python_version)
    pyproject = tomllib.loads((project / "pyproject.toml").read_text())
    assert pyproject["project"]["requires-python"] == f">={python_version}"
    assert pyproject["tool"]["ruff"]["target-version"] == "py" + python_version.replace(".", "")
    assert pyproject["tool"]["mypy"]["python_version"] == python_version


def test_free_text_lands_in_metadata_verbatim(cookies: Any) -> None:
    description = "Bills customers' accounts & sends <invoices> — monthly."
    project = bake(cookies, description=description, author_name="Zoë O'Brien")
    metadata = tomllib.loads((project / "pyproject.toml").read_text())["project"]
    assert metadata["description"] == description
    assert metadata["authors"] == [{"name": "Zoë O'Brien", "email": "you@example.com"}]


# `make <target>` as the generated docs, docstrings and comments quote it.
QUOTED_MAKE_TARGET = re.compile(r"`make ([a-z][a-z-]*)")


@pytest.mark.parametrize("framework", COOKIECUTTER_JSON["web_framework"])
def test_every_quoted_make_target_is_in_the_makefile(cookies: Any, framework: str) -> None:
    """An owner told to run `make x` finds target x, whichever files the options keep."""
    project = bake(cookies, web_framework=framework, database="postgresql", worker="celery")
    targets = set(re.findall(r"^([a-z][a-z-]*):", (project / "Makefile").read_text(), re.M))
    quoted = {
        (path, target)
        for path, content in project_files(project).items()
        for target in QUOTED_MAKE_TARGET.findall(content.decode(errors="replace"))
    }
    assert quoted, "no file quotes a make target"
    assert {(path, target) for path, target in quoted if target not in targets} == set()
