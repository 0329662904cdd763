"""Baking: each answer renders completely, deterministically, with only its own files."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

import pytest

from .conftest import COOKIECUTTER_JSON, DATABASES, DEFAULT_ANSWERS, project_files
from .hooks import post_gen

WORKERS: list[str] = COOKIECUTTER_JSON["worker"]
# The distribution each worker brings in.
WORKER_DEPENDENCIES = {"none": set(), "celery": {"celery"}, "rq": {"rq"}}

# Each value of the options baked one at a time (the others at their defaults).
OPTION_VALUES = [("database", database) for database in DATABASES] + [
    ("worker", worker) for worker in WORKERS
]
OPTION_IDS = [f"{option}={value}" for option, value in OPTION_VALUES]

# Jinja that survived rendering: a variable, a block, a comment, or a context lookup.
UNRENDERED = re.compile(rb"\{\{|\{%|%\}|\{#|cookiecutter\.")


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


def test_every_question_has_a_prompt() -> None:
    questions = {key for key in COOKIECUTTER_JSON if not key.startswith("_")}
    assert questions == set(COOKIECUTTER_JSON["__prompts__"])


def test_default_bake_is_the_sqlite_fastapi_service(cookies: Any) -> None:
    project = bake(cookies)
    assert project.name == "my-service"
    assert (project / "src" / "my_service" / "app.py").is_file()
    assert procfile(project) == {"release": "my-service migrate", "web": "my-service serve"}


@pytest.mark.parametrize(("option", "value"), OPTION_VALUES, ids=OPTION_IDS)
def test_no_unrendered_jinja_remains(cookies: Any, option: str, value: str) -> None:
    project = bake(cookies, **{option: value})
    leftovers = {path: UNRENDERED.findall(data) for path, data in project_files(project).items()}
    assert {path: found for path, found in leftovers.items() if found} == {}


@pytest.mark.parametrize(("option", "value"), OPTION_VALUES, ids=OPTION_IDS)
def test_only_the_chosen_options_files_remain(cookies: Any, option: str, value: str) -> None:
    project = bake(cookies, **{option: value})
    answers = {**DEFAULT_ANSWERS, option: value}
    for path in post_gen.paths_to_remove(answers):
        assert not (project / path).exists(), path
    for path in post_gen.OWNED_PATHS[option][value]:
        assert (project / path.format_map(answers)).exists(), path


@pytest.mark.parametrize("database", DATABASES)
def test_pyproject_declares_the_script_and_the_chosen_dependencies(
    cookies: Any, database: str
) -> None:
    project = bake(cookies, database=database)
    pyproject = tomllib.loads((project / "pyproject.toml").read_text())
    assert pyproject["project"]["scripts"] == {"my-service": "my_service.cli:main"}
    names = dependency_names(project)
    assert {"fastapi", "uvicorn", "pydantic-settings"} <= names
    assert ({"sqlalchemy", "alembic", "psycopg"} <= names) is (database != "none")


@pytest.mark.parametrize("database", DATABASES)
def test_procfile_has_a_release_phase_only_with_a_database(cookies: Any, database: str) -> None:
    processes = procfile(bake(cookies, database=database))
    assert processes["web"] == "my-service serve"
    assert ("release" in processes) is (database != "none")


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


@pytest.mark.parametrize("worker", WORKERS)
def test_worker_has_its_module_process_type_and_dependencies(cookies: Any, worker: str) -> None:
    project = bake(cookies, worker=worker)
    assert (project / "src" / "my_service" / "worker.py").is_file() is (worker != "none")
    processes = procfile(project)
    if worker == "none":
        assert "worker" not in processes
    else:
        assert processes["worker"] == "my-service worker"
    names = dependency_names(project)
    chosen = WORKER_DEPENDENCIES[worker]
    assert chosen <= names
    assert not (set().union(*WORKER_DEPENDENCIES.values()) - chosen) & names
