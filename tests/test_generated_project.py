"""Each generated project lints clean, type-checks and passes its own tests in a fresh env.

Tests of one project share one bake and one uv environment (xdist_group keeps
them on one worker). PostgreSQL runs use TEST_DATABASE_URL; the generated
suite creates and drops its own database there.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from .conftest import (
    COOKIECUTTER_JSON,
    DATABASES,
    RUFF,
    UV,
    project_env,
    require_backing_service,
    run,
)

BakedProject = Callable[..., Path]
# Names near the length limit must still lint and format clean.
LONG_NAMES = {
    "project_name": "Customer Notification Preferences Service Gateway",
    "database": "postgresql",
}


def uv_run(project: Path, *command: str, **env: str | None) -> str:
    return run([UV, "run", "--no-sync", *command], project, project_env(**env))


@pytest.mark.parametrize("database", DATABASES)
@pytest.mark.parametrize("python_version", COOKIECUTTER_JSON["python_version"])
def test_every_python_floor_lints_clean(cookies: Any, python_version: str, database: str) -> None:
    """ruff's rules follow the target version; this machine may lack that Python to run it."""
    result = cookies.bake(extra_context={"python_version": python_version, "database": database})
    assert result.exit_code == 0, result.exception
    run([RUFF, "check", "."], result.project_path)
    run([RUFF, "format", "--check", "."], result.project_path)


@pytest.mark.parametrize(
    "answers",
    [pytest.param({"database": db}, id=db, marks=pytest.mark.xdist_group(db)) for db in DATABASES]
    + [pytest.param(LONG_NAMES, id="long-names", marks=pytest.mark.xdist_group("long-names"))],
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
    ("database", "server"),
    [
        pytest.param(*suite, id=name, marks=pytest.mark.xdist_group(suite[0]))
        for name, suite in SUITES.items()
    ],
)
def test_generated_test_suite_passes(
    baked_project: BakedProject, database: str, server: str | None
) -> None:
    database_url = require_backing_service(server) if server else None
    project = baked_project(database=database)
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
