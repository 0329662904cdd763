"""Every accepted combination of options bakes completely, with only its own files, and validates.

The options that choose files (framework, database, worker, containers,
Kubernetes, CI) are baked in every combination the pre-gen hook accepts, once
per session. Checks that start a tool run it once over all the bakes: ruff
over every project, each validator over the distinct files.
"""

from __future__ import annotations

import ast
import itertools
import re
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from detect_secrets import SecretsCollection
from detect_secrets.settings import default_settings, get_filters

from .conftest import DEFAULT_ANSWERS, RUFF, UNRENDERED, option_values, parse_structured, run
from .hooks import post_gen
from .validators import VALIDATORS, distinct, files_for, validate

MATRIX_OPTIONS = ("web_framework", "database", "worker", "use_docker", "use_kubernetes", "ci")
# Top-level modules that only a given option value may import.
VALUE_IMPORTS: dict[tuple[str, str], frozenset[str]] = {
    ("web_framework", "fastapi"): frozenset({"fastapi", "starlette", "uvicorn"}),
    ("web_framework", "flask"): frozenset({"flask", "werkzeug", "gunicorn"}),
    ("worker", "celery"): frozenset({"celery", "kombu"}),
    ("worker", "rq"): frozenset({"rq"}),
}
# Modules a project may import only when an option is not "none".
OPTION_IMPORTS: dict[str, frozenset[str]] = {
    "database": frozenset({"sqlalchemy", "alembic"}),
    "worker": frozenset({"redis"}),
}

pytestmark = pytest.mark.xdist_group("matrix")


def accepted_combinations() -> list[dict[str, Any]]:
    """Every combination: the pre-gen hook accepts them all."""
    return [
        {**DEFAULT_ANSWERS, **dict(zip(MATRIX_OPTIONS, values, strict=True))}
        for values in itertools.product(*map(option_values, MATRIX_OPTIONS))
    ]


def combination_id(answers: dict[str, Any]) -> str:
    """`flask-postgresql-celery-docker-k8s-github`; `no-docker`, `no-k8s` when off."""
    return "-".join(
        [
            answers["web_framework"],
            answers["database"],
            f"worker:{answers['worker']}",
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


def imported_modules(project: Path) -> set[str]:
    """Top-level names of every module the project's Python imports."""
    modules: set[str] = set()
    for path in project.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                modules.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                modules.add(node.module.split(".")[0])
    return modules


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
            re.split(r"[\[<>=;! ]", dependency)[0].replace("-", "_")
            for dependency in tomllib.loads((project / "pyproject.toml").read_text())["project"][
                "dependencies"
            ]
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
