"""Every accepted combination of options bakes completely, with only its own files, and validates.

The options that choose files (framework, database, worker, containers,
Kubernetes, CI) are baked in every combination the pre-gen hook accepts, once
per session, with the observability options (OpenTelemetry, Sentry) off. The
observability options are baked on, alone and together, with every framework,
database and worker, under two deployment answers: the defaults, and one that
writes every deployment file the defaults leave out. That is enough because
what observability changes and what the deployment options own are apart
(test_observability_changes_no_file_the_deployment_options_own), so each file
of an unbaked combination is a file of a baked one. Checks that start a tool
run it once over all the bakes: ruff over every project, each validator over
the distinct files.
"""

from __future__ import annotations

import ast
import difflib
import itertools
import re
import tomllib
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml
from detect_secrets import SecretsCollection
from detect_secrets.settings import default_settings, get_filters

from .conftest import (
    DEFAULT_ANSWERS,
    RUFF,
    STACK_OPTIONS,
    UNRENDERED,
    option_values,
    parse_structured,
    project_files,
    run,
)
from .hooks import post_gen
from .validators import VALIDATORS, distinct, files_for, validate

OBSERVABILITY_OPTIONS = ("use_opentelemetry", "use_sentry")
DEPLOYMENT_OPTIONS = ("use_docker", "use_kubernetes", "ci")
MATRIX_OPTIONS = (*STACK_OPTIONS, *OBSERVABILITY_OPTIONS, *DEPLOYMENT_OPTIONS)
# The deployment answers the observability options are baked under: the
# defaults (containers, GitHub), and the manifests and GitLab CI beside containers.
# Between them they write every path the deployment options own.
OBSERVED_DEPLOYMENTS = (
    {option: DEFAULT_ANSWERS[option] for option in DEPLOYMENT_OPTIONS},
    {"use_docker": True, "use_kubernetes": True, "ci": "gitlab"},
)
# Top-level modules that only a given option value may import.
VALUE_IMPORTS: dict[tuple[str, str | bool], frozenset[str]] = {
    ("web_framework", "fastapi"): frozenset({"fastapi", "starlette", "uvicorn"}),
    ("web_framework", "flask"): frozenset({"flask", "werkzeug", "gunicorn"}),
    ("worker", "celery"): frozenset({"celery", "kombu"}),
    ("worker", "rq"): frozenset({"rq"}),
    ("use_opentelemetry", True): frozenset({"opentelemetry"}),
    ("use_sentry", True): frozenset({"sentry_sdk"}),
}
# Modules a project may import only when an option is not "none".
OPTION_IMPORTS: dict[str, frozenset[str]] = {
    "database": frozenset({"sqlalchemy", "alembic"}),
    "worker": frozenset({"redis"}),
}
# Distributions whose module has another name: OpenTelemetry's are parts of
# one namespace package (a project declares opentelemetry-api and -sdk).
DISTRIBUTION_MODULES = {"opentelemetry_api": "opentelemetry", "opentelemetry_sdk": "opentelemetry"}

pytestmark = pytest.mark.xdist_group("matrix")


def every_choice(options: tuple[str, ...]) -> list[dict[str, Any]]:
    """Every combination of the options' values (the pre-gen hook accepts them all)."""
    return [
        dict(zip(options, values, strict=True))
        for values in itertools.product(*map(option_values, options))
    ]


def accepted_combinations() -> list[dict[str, Any]]:
    """Every code and deployment choice with observability off; every code and
    observability choice (some on) under each of OBSERVED_DEPLOYMENTS."""
    return [
        {**DEFAULT_ANSWERS, **stack, **deployment}
        for stack in every_choice(STACK_OPTIONS)
        for deployment in every_choice(DEPLOYMENT_OPTIONS)
    ] + [
        {**DEFAULT_ANSWERS, **stack, **observed, **deployment}
        for stack in every_choice(STACK_OPTIONS)
        for observed in every_choice(OBSERVABILITY_OPTIONS)
        if any(observed.values())
        for deployment in OBSERVED_DEPLOYMENTS
    ]


def combination_id(answers: dict[str, Any]) -> str:
    """`flask-postgresql-worker:celery-docker-k8s-ci:github`; `no-docker`, `no-k8s` when off.

    With an observability option on: `...-worker:celery-otel-no-sentry-docker-...`.
    """
    observability = (
        [
            "otel" if answers["use_opentelemetry"] else "no-otel",
            "sentry" if answers["use_sentry"] else "no-sentry",
        ]
        if any(answers[option] for option in OBSERVABILITY_OPTIONS)
        else []
    )
    return "-".join(
        [
            answers["web_framework"],
            answers["database"],
            f"worker:{answers['worker']}",
            *observability,
            "docker" if answers["use_docker"] else "no-docker",
            "k8s" if answers["use_kubernetes"] else "no-k8s",
            f"ci:{answers['ci']}",
        ]
    )


COMBINATIONS = {combination_id(answers): answers for answers in accepted_combinations()}


@pytest.fixture(scope="session")
def matrix(cookies_session: Any) -> dict[str, Path | str]:
    """Each combination's baked project, or the reason it did not bake."""
    baked: dict[str, Path | str] = {}
    for name, answers in COMBINATIONS.items():
        context = {option: answers[option] for option in MATRIX_OPTIONS}
        result = cookies_session.bake(extra_context=context)
        baked[name] = result.project_path if result.exit_code == 0 else repr(result.exception)
    return baked


@pytest.fixture(scope="session")
def projects(matrix: dict[str, Path | str]) -> dict[str, Path]:
    return {name: path for name, path in matrix.items() if isinstance(path, Path)}


def project_paths(project: Path) -> Iterator[Path]:
    yield from (path for path in sorted(project.rglob("*")) if path.is_file())


def test_matrix_spans_every_value_of_every_option() -> None:
    for option in MATRIX_OPTIONS:
        assert {answers[option] for answers in COMBINATIONS.values()} == set(
            option_values(option)
        ), option


def test_every_accepted_combination_bakes(matrix: dict[str, Path | str]) -> None:
    failed = {name: why for name, why in matrix.items() if not isinstance(why, Path)}
    assert failed == {}


def test_no_unrendered_jinja_in_any_name_or_file(projects: dict[str, Path]) -> None:
    leftovers = {
        f"{name}: {path.relative_to(project)}"
        for name, project in projects.items()
        for path in project_paths(project)
        if UNRENDERED.search(str(path.relative_to(project)).encode())
        or UNRENDERED.search(path.read_bytes())
    }
    assert leftovers == set()


def test_no_file_of_an_unchosen_value_remains(projects: dict[str, Path]) -> None:
    remaining = {
        f"{name}: {path}"
        for name, project in projects.items()
        for path in post_gen.paths_to_remove(COMBINATIONS[name])
        if (project / path).exists()
    }
    assert remaining == set()


def choices_baked(options: tuple[str, ...]) -> set[tuple[Any, ...]]:
    return {tuple(answers[option] for option in options) for answers in COMBINATIONS.values()}


def test_matrix_holds_every_code_choice_with_every_deployment_and_observability_choice() -> None:
    for others in (DEPLOYMENT_OPTIONS, OBSERVABILITY_OPTIONS):
        options = (*STACK_OPTIONS, *others)
        assert len(choices_baked(options)) == len(every_choice(options)), others
    assert len(COMBINATIONS) == len(accepted_combinations())  # the ids are distinct


def deployment_paths(package: str) -> set[str]:
    """The paths the deployment options own in the post-gen hook's feature table."""
    return {
        path.format(package_name=package)
        for option in DEPLOYMENT_OPTIONS
        for paths in post_gen.OWNED_PATHS[option].values()
        for path in paths
    }


def owner(path: str, owned: set[str]) -> str | None:
    """The owned path that `path` is or is under, if any."""
    return next((top for top in owned if path == top or path.startswith(f"{top}/")), None)


def changed_files(before: dict[str, bytes], after: dict[str, bytes]) -> set[str]:
    """Paths added, removed or with other bytes."""
    return {path for path in before.keys() | after.keys() if before.get(path) != after.get(path)}


def line_changes(before: bytes, after: bytes) -> Counter[str]:
    """The lines a change removes (`-`) and adds (`+`), counted."""
    old, new = (text.decode(errors="replace").splitlines() for text in (before, after))
    diff = difflib.unified_diff(old, new, n=0)
    return Counter(line for line in diff if line[:1] in "+-" and line[:3] not in ("+++", "---"))


@dataclass
class StackChanges:
    """What the observability and the deployment options change in one stack's bakes."""

    by_observability: set[str] = field(default_factory=set)
    by_deployment: set[str] = field(default_factory=set)
    # Every deployment-owned path the observed bakes hold.
    owned_seen: set[str | None] = field(default_factory=set)
    # (observability choice, path) -> the lines it changes there, under each observed deployment.
    lines: dict[tuple[str, str], list[Counter[str]]] = field(default_factory=dict)


@pytest.fixture(scope="session")
def stack_changes(projects: dict[str, Path]) -> dict[str, StackChanges]:
    """Each stack's bakes compared, one stack's files in memory at a time."""
    owned = deployment_paths(DEFAULT_ANSWERS["package_name"])
    names: dict[str, list[str]] = {}
    for name, answers in COMBINATIONS.items():
        names.setdefault("-".join(answers[option] for option in STACK_OPTIONS), []).append(name)
    changes: dict[str, StackChanges] = {}
    for stack, group in names.items():
        trees = {name: project_files(projects[name]) for name in group}
        found = changes[stack] = StackChanges()
        unobserved = [
            trees[name]
            for name in group
            if not any(COMBINATIONS[name][option] for option in OBSERVABILITY_OPTIONS)
        ]
        found.by_deployment = {
            path
            for path in set().union(*unobserved)
            if len({tree.get(path) for tree in unobserved}) > 1
        }
        for name in group:
            answers = COMBINATIONS[name]
            if not any(answers[option] for option in OBSERVABILITY_OPTIONS):
                continue
            off = trees[combination_id({**answers, **dict.fromkeys(OBSERVABILITY_OPTIONS, False)})]
            changed = changed_files(off, trees[name])
            found.by_observability |= changed
            found.owned_seen |= {owner(path, owned) for path in trees[name]}
            observed = "-".join(f"{option}={answers[option]}" for option in OBSERVABILITY_OPTIONS)
            for path in changed & found.by_deployment:
                found.lines.setdefault((observed, path), []).append(
                    line_changes(off.get(path, b""), trees[name].get(path, b""))
                )
    return changes


def test_observability_changes_no_file_the_deployment_options_own(
    stack_changes: dict[str, StackChanges],
) -> None:
    """Why the observability options need no bake with every deployment choice.

    For each stack, no file an observability choice adds, removes or changes
    (against the same bake with both options off) is one the deployment
    options own. The bakes compared hold every path those options own (the
    manifests, both CIs, the container files), so none passes by being
    absent. A deployment file of a combination the matrix leaves out is then
    as with observability off, which the matrix bakes.
    """
    owned = deployment_paths(DEFAULT_ANSWERS["package_name"])
    assert len(stack_changes) == len(every_choice(STACK_OPTIONS))
    crossing = {
        stack: sorted(path for path in found.by_observability if owner(path, owned))
        for stack, found in stack_changes.items()
    }
    assert {stack: paths for stack, paths in crossing.items() if paths} == {}
    # Not vacuous: the options changed files, and every owned path was there to compare.
    assert [stack for stack, found in stack_changes.items() if not found.by_observability] == []
    unseen = {stack: sorted(owned - found.owned_seen) for stack, found in stack_changes.items()}
    assert {stack: paths for stack, paths in unseen.items() if paths} == {}


def test_observability_changes_the_same_lines_whatever_the_deployment(
    stack_changes: dict[str, StackChanges],
) -> None:
    """In a file both kinds of option change (the README), observability's lines stand apart.

    Each observability choice removes and adds the same lines under each
    observed deployment. Such a file of a combination the matrix leaves out
    is then the baked one with observability off, with the lines the baked
    observed ones show.
    """
    differing = {
        f"{stack}: {observed}: {path}"
        for stack, found in stack_changes.items()
        for (observed, path), lines in found.lines.items()
        if len(lines) != len(OBSERVED_DEPLOYMENTS) or any(other != lines[0] for other in lines)
    }
    assert differing == set()


@cache
def modules_imported_by(source: bytes) -> frozenset[str]:
    """Top-level names of the modules a Python file imports (once per distinct file)."""
    modules: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            modules.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            modules.add(node.module.split(".")[0])
    return frozenset(modules)


def imported_modules(project: Path) -> set[str]:
    """Top-level names of every module the project's Python imports."""
    return set().union(*(modules_imported_by(path.read_bytes()) for path in project.rglob("*.py")))


def forbidden_imports(answers: dict[str, Any]) -> frozenset[str]:
    """Modules that belong to values not chosen in `answers`."""
    forbidden: set[str] = set()
    for (option, value), modules in VALUE_IMPORTS.items():
        if answers[option] != value:
            forbidden |= modules
    for option, modules in OPTION_IMPORTS.items():
        if answers[option] == "none":
            forbidden |= modules
    return frozenset(forbidden)


def test_code_imports_only_the_chosen_values_libraries(projects: dict[str, Path]) -> None:
    stray = {
        name: sorted(imported_modules(project) & forbidden_imports(COMBINATIONS[name]))
        for name, project in projects.items()
    }
    assert {name: modules for name, modules in stray.items() if modules} == {}


def test_chosen_values_libraries_are_declared(projects: dict[str, Path]) -> None:
    """Each chosen value brings its library as a declared dependency."""
    undeclared = {}
    for name, project in projects.items():
        declared = {
            DISTRIBUTION_MODULES.get(distribution, distribution)
            for dependency in tomllib.loads((project / "pyproject.toml").read_text())["project"][
                "dependencies"
            ]
            for distribution in [re.split(r"[\[<>=;! ]", dependency)[0].replace("-", "_")]
        }
        for (option, value), modules in VALUE_IMPORTS.items():
            if COMBINATIONS[name][option] == value and not modules & declared:
                undeclared[f"{name}: {option}={value}"] = sorted(modules)
    assert undeclared == {}


def test_every_yaml_toml_and_json_file_parses(projects: dict[str, Path]) -> None:
    failures = {}
    for name, project in projects.items():
        for path in project_paths(project):
            if path.suffix in {".yaml", ".yml", ".toml", ".json"}:
                try:
                    parse_structured(path)
                except (ValueError, yaml.YAMLError) as exc:
                    failures[f"{name}: {path.relative_to(project)}"] = str(exc)
    assert failures == {}


@pytest.mark.parametrize("command", [["check"], ["format", "--check"]], ids=["check", "format"])
def test_every_combination_is_ruff_clean(projects: dict[str, Path], command: list[str]) -> None:
    """One ruff run over all the bakes; each project's own pyproject configures its files."""
    root = next(iter(projects.values())).parents[1]
    run([RUFF, *command, "--no-cache", *map(str, projects.values())], root)


@pytest.mark.parametrize("validator", sorted(VALIDATORS))
def test_every_distinct_config_file_passes_its_validator(
    projects: dict[str, Path], validator: str
) -> None:
    files = files_for(validator, projects.values())
    assert files, f"no bake produced a file for {validator}"
    validate(validator, files)


# One mistake per validator, made in the text of a real baked file (PyYAML would
# read a workflow's `on:` as True, so the files are edited as text).
MISTAKES: dict[str, tuple[str, str]] = {
    "hadolint": ('CMD ["my-service", "serve"]', "CMD my-service serve"),
    "compose-spec": ("condition: service_healthy", "condition: healthy"),
    "github-workflows": ("runs-on:", "runs_on:"),
    "dependabot": ("interval: weekly", "interval: fortnightly"),
    "gitlab-ci": ("\n  script:", "\n  scripts:"),
    "kubernetes": ("containerPort:", "containerport:"),
}


def test_every_validator_has_a_mistake_to_catch() -> None:
    assert set(MISTAKES) == set(VALIDATORS)


@pytest.mark.parametrize("validator", sorted(MISTAKES))
def test_each_validator_rejects_a_file_with_one_mistake(
    projects: dict[str, Path], validator: str, tmp_path: Path
) -> None:
    """The validators are not vacuous: a baked file with one mistake fails."""
    right, wrong = MISTAKES[validator]
    source = next(
        path for path in files_for(validator, projects.values()) if right in path.read_text()
    )
    broken = tmp_path / source.name
    broken.write_text(source.read_text().replace(right, wrong))
    with pytest.raises(AssertionError, match=validator):
        validate(validator, [broken])


# Values the template writes on purpose that only look like credentials; any other is a finding.
PLACEHOLDER_SECRETS = {
    "s3cret-pw": "the generated tests' sentinel, checked never to be echoed",
    "password": "documentation of a URL's shape: postgresql://user:password@host/db",
    "https://<key>@<host>/<project id>": "documentation of a Sentry DSN's shape (use_sentry)",
    "change-me": "the Kubernetes secret example, to be replaced before use",
    "postgres": "the CI job's throwaway PostgreSQL service container",
}


def secrets_in(files: list[Path]) -> dict[str, list[str]]:
    """detect-secrets' findings with all its plugins: file -> the kinds of secret."""
    found: dict[str, list[str]] = {}
    with default_settings() as settings:
        # Added to the default filters (configure_filters would replace some of them).
        settings.filters["detect_secrets.filters.regex.should_exclude_secret"] = {
            "pattern": [f"^{re.escape(value)}$" for value in PLACEHOLDER_SECRETS]
        }
        get_filters.cache_clear()
        collection = SecretsCollection()
        for path in files:
            collection.scan_file(str(path))
    for filename, secret in collection:
        found.setdefault(filename, []).append(secret.type)
    return found


def test_no_baked_file_holds_a_secret(projects: dict[str, Path]) -> None:
    """Every file of every bake is what a project commits; `.env` is never among them."""
    assert [name for name, project in projects.items() if (project / ".env").exists()] == []
    files = distinct(path for project in projects.values() for path in project_paths(project))
    assert secrets_in(files) == {}


def test_secret_scan_finds_a_password_put_in_a_baked_file(
    projects: dict[str, Path], tmp_path: Path
) -> None:
    """The scan is not vacuous: a real-looking password in a baked .env.example is found."""
    source = next(
        project / ".env.example"
        for project in projects.values()
        if "redis://localhost" in (project / ".env.example").read_text()
    )
    planted = tmp_path / ".env.example"
    planted.write_text(
        source.read_text().replace("redis://localhost", "redis://default:Wq8-unlisted@localhost")
    )
    assert secrets_in([planted]) == {str(planted): ["Basic Auth Credentials"]}
