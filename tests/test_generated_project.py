"""Each generated project lints clean, type-checks and passes its own tests in a fresh env.

Every web framework is tried with every database. Tests of one project share
one bake and one uv environment (xdist_group keeps them on one worker).
PostgreSQL runs use TEST_DATABASE_URL; the generated suite creates and drops
its own database there.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from .conftest import (
    COOKIECUTTER_JSON,
    DATABASES,
    FRAMEWORKS,
    RUFF,
    UV,
    project_env,
    require_backing_service,
    run,
)

BakedProject = Callable[..., Path]
# Names near the length limit must still lint and format clean.
LONG_NAME = "Customer Notification Preferences Service Gateway"


def bake_param(name: str, **answers: str) -> Any:
    """A parameter for one bake: named, and kept on the xdist worker that holds its env."""
    return pytest.param(answers, id=name, marks=pytest.mark.xdist_group(name))


def uv_run(project: Path, *command: str, **env: str | None) -> str:
    return run([UV, "run", "--no-sync", *command], project, project_env(**env))


@pytest.mark.parametrize("database", DATABASES)
@pytest.mark.parametrize("framework", FRAMEWORKS)
@pytest.mark.parametrize("python_version", COOKIECUTTER_JSON["python_version"])
def test_every_python_floor_lints_clean(
    cookies: Any, python_version: str, framework: str, database: str
) -> None:
    """ruff's rules follow the target version; this machine may lack that Python to run it."""
    answers = {"python_version": python_version, "web_framework": framework, "database": database}
    result = cookies.bake(extra_context=answers)
    assert result.exit_code == 0, result.exception
    run([RUFF, "check", "."], result.project_path)
    run([RUFF, "format", "--check", "."], result.project_path)


@pytest.mark.parametrize(
    "answers",
    [
        bake_param(f"{framework}-{database}", web_framework=framework, database=database)
        for framework in FRAMEWORKS
        for database in DATABASES
    ]
    + [
        bake_param(
            f"{framework}-long-names",
            project_name=LONG_NAME,
            web_framework=framework,
            database="postgresql",
        )
        for framework in FRAMEWORKS
    ],
)
def test_lint_format_and_types_are_clean(
    baked_project: BakedProject, answers: dict[str, str]
) -> None:
    project = baked_project(**answers)
    uv_run(project, "ruff", "check", ".")
    uv_run(project, "ruff", "format", "--check", ".")
    uv_run(project, "mypy")


# (project's database option, where its tests' database lives)
SUITES = {
    "sqlite-on-sqlite": ("sqlite", None),
    "sqlite-on-postgresql": ("sqlite", "TEST_DATABASE_URL"),
    "postgresql-on-postgresql": ("postgresql", "TEST_DATABASE_URL"),
    "none": ("none", None),
}


@pytest.mark.parametrize(
    ("framework", "database", "server"),
    [
        pytest.param(
            framework,
            database,
            server,
            id=f"{framework}-{name}",
            marks=pytest.mark.xdist_group(f"{framework}-{database}"),
        )
        for framework in FRAMEWORKS
        for name, (database, server) in SUITES.items()
    ],
)
def test_generated_test_suite_passes(
    baked_project: BakedProject, framework: str, database: str, server: str | None
) -> None:
    database_url = require_backing_service(server) if server else None
    project = baked_project(web_framework=framework, database=database)
    output = uv_run(
        project,
        "pytest",
        "-p",
        "no:cacheprovider",
        "-q",
        TEST_DATABASE_URL=database_url,
        REQUIRE_BACKING_SERVICES="1" if server else None,
    )
    summary = output.strip().splitlines()
    assert any(" passed" in line for line in summary[-3:]), output
    if server or database == "none":
        assert "skipped" not in output, output
