"""Each generated project lints clean, type-checks and passes its own tests in a fresh env.

Every combination of web framework, database and worker the pre-gen hook
accepts is linted and type-checked with the observability options off, and
with both on but for the PostgreSQL stacks (their observability code is the
SQLite stacks'); a set of them that holds every pair of option values (the
observability options' among them) runs its own suite against the real
backing services its options use. Tests of one project share one bake and
one uv environment (xdist_group keeps them on one worker). PostgreSQL runs use TEST_DATABASE_URL;
the generated suite creates and drops its own database there. Worker runs use
the Redis of TEST_REDIS_URL; each generated test takes a queue of its own
there, so suites running at once do not meet.
"""

from __future__ import annotations

import itertools
import re
import shlex
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from .conftest import (
    COOKIECUTTER_JSON,
    DATABASES,
    DEFAULT_ANSWERS,
    FRAMEWORKS,
    OBSERVABILITY_OPTIONS,
    RUFF,
    STACK_OPTIONS,
    UV,
    option_values,
    project_env,
    require_backing_service,
    run,
    stack_key,
)
from .hooks import pre_gen

BakedProject = Callable[..., Path]
WORKERS: list[str] = COOKIECUTTER_JSON["worker"]
DATABASE_SERVER = "TEST_DATABASE_URL"
REDIS_SERVER = "TEST_REDIS_URL"
# Names at the length limit must still lint and format clean.
LONG_NAME = "Customer Notification Preferences Service Gateways"

# Every web_framework x database x worker combination.
STACKS = [
    {"web_framework": framework, "database": database, "worker": worker}
    for framework in FRAMEWORKS
    for database in DATABASES
    for worker in WORKERS
]
# Answers that turn on the observability options: both, or one alone.
OBSERVED = {"use_opentelemetry": True, "use_sentry": True}
OTEL_ONLY = {"use_opentelemetry": True}
SENTRY_ONLY = {"use_sentry": True}
# Every stack with both observability options on.
# Every stack with both observability options on, but PostgreSQL's: their observability code
# is the SQLite stacks' (a database or none is what it differs by).
OBSERVED_STACKS = [{**stack, **OBSERVED} for stack in STACKS if stack["database"] != "postgresql"]


def test_long_name_is_at_the_limit() -> None:
    assert len(LONG_NAME) == pre_gen.NAME_MAX_LENGTH


def bake_key(answers: dict[str, Any]) -> str:
    """A readable id for a set of answers, e.g. `flask-postgresql-celery-observed`."""
    return stack_key(answers) + ("-long-names" if "project_name" in answers else "")


def bake_param(answers: dict[str, Any], *values: object, name: str | None = None) -> Any:
    """A parameter whose tests share one bake: same xdist group, named after the answers."""
    key = bake_key(answers)
    return pytest.param(answers, *values, id=name or key, marks=pytest.mark.xdist_group(key))


def uv_run(project: Path, *command: str, **env: str | None) -> str:
    return run([UV, "run", "--no-sync", *command], project, project_env(**env))


@pytest.mark.parametrize("stack", STACKS, ids=map(bake_key, STACKS))
@pytest.mark.parametrize("python_version", COOKIECUTTER_JSON["python_version"])
def test_every_python_floor_lints_clean(
    cookies: Any, python_version: str, stack: dict[str, str]
) -> None:
    """ruff's rules follow the target version; this machine may lack that Python to run it."""
    result = cookies.bake(extra_context={"python_version": python_version, **stack})
    assert result.exit_code == 0, result.exception
    run([RUFF, "check", "."], result.project_path)
    run([RUFF, "format", "--check", "."], result.project_path)


@pytest.mark.parametrize(
    "answers",
    [bake_param(stack) for stack in STACKS + OBSERVED_STACKS]
    # Observed: the observability code names the package too (what it replaces names nothing).
    + [
        bake_param(
            {
                "project_name": LONG_NAME,
                "web_framework": framework,
                "database": "postgresql",
                **OBSERVED,
            },
            name=f"{framework}-long-names",
        )
        for framework in FRAMEWORKS
    ],
)
def test_lint_format_and_types_are_clean(
    baked_project: BakedProject, answers: dict[str, Any]
) -> None:
    project = baked_project(**answers)
    uv_run(project, "ruff", "check", ".")
    uv_run(project, "ruff", "format", "--check", ".")
    uv_run(project, "mypy")


def servers_for(stack: dict[str, str]) -> tuple[str, ...]:
    """The real servers a project's options attach: PostgreSQL, and Redis with a worker."""
    servers = (DATABASE_SERVER,) if stack["database"] == "postgresql" else ()
    return servers + ((REDIS_SERVER,) if stack["worker"] != "none" else ())


# The stacks whose own suites run here: every pair of option values that can
# meet (framework, database, worker, OpenTelemetry, Sentry, two by two) meets
# in one of them, so each framework and each worker library runs with each
# observability option on. Each option's code is its own module, so a fault
# in how two options work together shows in their pair. The updated stack and
# the day-two stacks (below) keep the observability options off: their tests
# expect the default project. (Each framework with each worker library, both
# options on, takes eleven stacks: over the suite's time budget.) The stacks
# are linted and type-checked above, observed or not; each SQLite project's
# fault tests also run it on a PostgreSQL of their own, switched by
# DATABASE_URL alone.
SUITE_STACKS = [
    {"web_framework": "fastapi", "database": "sqlite", "worker": "none"},
    {"web_framework": "fastapi", "database": "sqlite", "worker": "rq", **OBSERVED},
    {"web_framework": "fastapi", "database": "postgresql", "worker": "celery"},
    {"web_framework": "fastapi", "database": "none", "worker": "none", **SENTRY_ONLY},
    {"web_framework": "flask", "database": "sqlite", "worker": "celery"},
    {"web_framework": "flask", "database": "postgresql", "worker": "none", **OBSERVED},
    {"web_framework": "flask", "database": "postgresql", "worker": "rq"},
    {"web_framework": "flask", "database": "none", "worker": "rq", **OTEL_ONLY},
    {"web_framework": "fastapi", "database": "none", "worker": "celery", **OBSERVED},
]
# The options whose pairs of values the suite stacks hold.
SUITE_OPTIONS = (*STACK_OPTIONS, *OBSERVABILITY_OPTIONS)


def answered(stack: dict[str, Any]) -> dict[str, Any]:
    """A stack's answer to each suite option, defaults filled in."""
    return {option: stack.get(option, DEFAULT_ANSWERS[option]) for option in SUITE_OPTIONS}


def value_pairs(stacks: list[dict[str, Any]]) -> set[tuple[tuple[str, Any], tuple[str, Any]]]:
    return {pair for stack in stacks for pair in itertools.combinations(answered(stack).items(), 2)}


def test_suite_stacks_cover_every_pair_of_option_values() -> None:
    every_stack = [
        dict(zip(SUITE_OPTIONS, values, strict=True))
        for values in itertools.product(*map(option_values, SUITE_OPTIONS))
    ]
    assert all(set(stack) <= set(SUITE_OPTIONS) for stack in SUITE_STACKS)
    assert all(
        {option: stack[option] for option in STACK_OPTIONS} in STACKS for stack in SUITE_STACKS
    )
    assert len({bake_key(stack) for stack in SUITE_STACKS}) == len(SUITE_STACKS)
    assert value_pairs(SUITE_STACKS) == value_pairs(every_stack)


@pytest.mark.parametrize("option", OBSERVABILITY_OPTIONS)
def test_suite_stacks_run_each_framework_and_worker_library_with_each_observability_option(
    option: str,
) -> None:
    on = [stack for stack in SUITE_STACKS if answered(stack)[option]]
    assert {stack["web_framework"] for stack in on} == set(FRAMEWORKS)
    assert {stack["worker"] for stack in on} >= {worker for worker in WORKERS if worker != "none"}


def make_command(project: Path, target: str) -> list[str]:
    """The one command of a target of the project's Makefile, split as the shell splits it."""
    recipe = re.search(rf"^{target}:.*\n\t(.+)$", (project / "Makefile").read_text(), re.MULTILINE)
    assert recipe is not None, f"no {target} target"
    return shlex.split(recipe[1])


# The stacks an owner grows in test_day_two.py: both frameworks, databases and
# worker libraries. Their suites (the owner's tests included) run there, the
# other suite stacks' here: each suite stack's suite runs once.
DAY_TWO_STACKS = [
    {"web_framework": "fastapi", "database": "postgresql", "worker": "celery"},
    {"web_framework": "flask", "database": "postgresql", "worker": "rq"},
    {"web_framework": "flask", "database": "sqlite", "worker": "celery"},
]


# The stack test_update.py updates with cruft: its suite runs there, on the updated project.
UPDATED_STACK = {"web_framework": "fastapi", "database": "sqlite", "worker": "none"}


def unobserved(stack: dict[str, Any]) -> bool:
    return not any(answered(stack)[option] for option in OBSERVABILITY_OPTIONS)


def test_updated_stack_is_a_suite_stack_no_owner_grows() -> None:
    assert UPDATED_STACK in SUITE_STACKS
    assert UPDATED_STACK not in DAY_TWO_STACKS
    assert unobserved(UPDATED_STACK)


def test_day_two_stacks_are_suite_stacks_with_every_option_value() -> None:
    assert all(stack in SUITE_STACKS for stack in DAY_TWO_STACKS)
    assert all(unobserved(stack) for stack in DAY_TWO_STACKS)
    values = {(option, stack[option]) for stack in DAY_TWO_STACKS for option in stack}
    assert values >= {("web_framework", framework) for framework in FRAMEWORKS}
    assert values >= {("database", database) for database in DATABASES if database != "none"}
    assert values >= {("worker", worker) for worker in WORKERS if worker != "none"}


def backing_services(servers: tuple[str, ...]) -> dict[str, str | None]:
    """The test variables of a project's suite: its servers' URLs, and that it needs them."""
    urls = {server: require_backing_service(server) for server in servers}
    return {
        "TEST_DATABASE_URL": urls.get(DATABASE_SERVER),
        "TEST_REDIS_URL": urls.get(REDIS_SERVER),
        "REQUIRE_BACKING_SERVICES": "1" if servers else None,
    }


def generated_suite_passes(
    project: Path, answers: dict[str, str], servers: tuple[str, ...], env: dict[str, str | None]
) -> set[str]:
    """Both tiers pass: `make test-fast` alone (its tests start no process), then the rest.

    The generated suite fails any test that starts a process without the
    `processes` marker, so the fast tier passing alone shows it starts none
    and needs nothing the other tier set up; `make test` runs both tiers.
    Returns the ids of the tests that passed.
    """
    assert make_command(project, "test") == ["uv", "run", "pytest"]
    fast = make_command(project, "test-fast")
    assert fast == ["uv", "run", "pytest", "-m", "not processes"]
    outputs = [
        uv_run(project, *command, "-p", "no:cacheprovider", "-q", "-rap", **env)
        for command in (fast[2:], ["pytest", "-m", "processes"])
    ]
    for output in outputs:
        assert re.search(r"^\d+ passed.*, \d+ deselected in ", output, re.MULTILINE), output
    if DATABASE_SERVER in servers or answers["database"] == "none":
        assert not any("skipped" in output for output in outputs), outputs
    return {test for output in outputs for test in re.findall(r"^PASSED (\S+)", output, re.M)}


@pytest.mark.parametrize(
    ("answers", "servers"),
    [
        bake_param(stack, servers_for(stack))
        for stack in SUITE_STACKS
        if stack not in DAY_TWO_STACKS and stack != UPDATED_STACK
    ],
)
def test_generated_test_suite_passes(
    baked_project: BakedProject, answers: dict[str, Any], servers: tuple[str, ...]
) -> None:
    env = backing_services(servers)
    generated_suite_passes(baked_project(**answers), answers, servers, env)
