"""Each generated project lints clean, type-checks and passes its own tests in a fresh env.

Tests of one project share one bake and one uv environment (xdist_group keeps
them on one worker). PostgreSQL runs use TEST_DATABASE_URL; the generated
suite creates and drops its own database there. Worker runs use the Redis of
TEST_REDIS_URL; each generated test takes a queue of its own there, so suites
running at once do not meet.
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

WORKERS = [worker for worker in COOKIECUTTER_JSON["worker"] if worker != "none"]

BakedProject = Callable[..., Path]
# Names near the length limit must still lint and format clean.
LONG_NAMES = {
    "project_name": "Customer Notification Preferences Service Gateway",
    "database": "postgresql",
}


def uv_run(project: Path, *command: str, **env: str | None) -> str:
    return run([UV, "run", "--no-sync", *command], project, project_env(**env))


# Every database, and every worker (on the default database).
LINTED_OPTIONS = [{"database": database} for database in DATABASES] + [
    {"worker": worker} for worker in WORKERS
]


def bake_key(answers: dict[str, str]) -> str:
    """A readable id for a set of answers, e.g. `celery-postgresql`."""
    return "-".join(answers.values())


@pytest.mark.parametrize("options", LINTED_OPTIONS, ids=map(bake_key, LINTED_OPTIONS))
@pytest.mark.parametrize("python_version", COOKIECUTTER_JSON["python_version"])
def test_every_python_floor_lints_clean(
    cookies: Any, python_version: str, options: dict[str, str]
) -> None:
    """ruff's rules follow the target version; this machine may lack that Python to run it."""
    result = cookies.bake(extra_context={"python_version": python_version, **options})
    assert result.exit_code == 0, result.exception
    run([RUFF, "check", "."], result.project_path)
    run([RUFF, "format", "--check", "."], result.project_path)


# Each worker with each database it can use.
WORKER_ANSWERS = [
    {"worker": worker, "database": database}
    for worker in WORKERS
    for database in DATABASES
    if database != "none"
]


def bake_param(answers: dict[str, str], *values: object, name: str | None = None) -> Any:
    """A parameter whose tests share one bake: same xdist group, named after the answers."""
    key = bake_key(answers)
    return pytest.param(answers, *values, id=name or key, marks=pytest.mark.xdist_group(key))


@pytest.mark.parametrize(
    "answers",
    [bake_param({"database": db}) for db in DATABASES]
    + [bake_param(answers) for answers in WORKER_ANSWERS]
    + [bake_param(LONG_NAMES, name="long-names")],
)
def test_lint_format_and_types_are_clean(
    baked_project: BakedProject, answers: dict[str, str]
) -> None:
    project = baked_project(**answers)
    uv_run(project, "ruff", "check", ".")
    uv_run(project, "ruff", "format", "--check", ".")
    uv_run(project, "mypy")


DATABASE_SERVER = "TEST_DATABASE_URL"
REDIS_SERVER = "TEST_REDIS_URL"
# name: (the project's answers, the servers its tests run against)
SUITES: dict[str, tuple[dict[str, str], tuple[str, ...]]] = {
    "sqlite-on-sqlite": ({"database": "sqlite"}, ()),
    "sqlite-on-postgresql": ({"database": "sqlite"}, (DATABASE_SERVER,)),
    "postgresql-on-postgresql": ({"database": "postgresql"}, (DATABASE_SERVER,)),
    "none": ({"database": "none"}, ()),
    # SQLite worker projects keep their SQLite file; PostgreSQL ones use the server.
    **{
        f"{answers['worker']}-{answers['database']}": (
            answers,
            (REDIS_SERVER,) if answers["database"] == "sqlite" else (DATABASE_SERVER, REDIS_SERVER),
        )
        for answers in WORKER_ANSWERS
    },
}


@pytest.mark.parametrize(
    ("answers", "servers"),
    [bake_param(answers, servers, name=name) for name, (answers, servers) in SUITES.items()],
)
def test_generated_test_suite_passes(
    baked_project: BakedProject, answers: dict[str, str], servers: tuple[str, ...]
) -> None:
    urls = {server: require_backing_service(server) for server in servers}
    project = baked_project(**answers)
    output = uv_run(
        project,
        "pytest",
        "-p",
        "no:cacheprovider",
        "-q",
        TEST_DATABASE_URL=urls.get(DATABASE_SERVER),
        TEST_REDIS_URL=urls.get(REDIS_SERVER),
        REQUIRE_BACKING_SERVICES="1" if servers else None,
    )
    summary = output.strip().splitlines()
    assert any(" passed" in line for line in summary[-3:]), output
    if DATABASE_SERVER in servers or answers["database"] == "none":
        assert "skipped" not in output, output
