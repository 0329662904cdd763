"""What the container and Kubernetes tests share: the combinations, the bakes, the readers.

A pytest plugin (conftest.py loads it): its fixtures bake every combination
once per session, with both the container files and the manifests.
"""

from __future__ import annotations

import shlex
import subprocess
from pathlib import Path
from typing import Any

import pytest

from .conftest import COOKIECUTTER_JSON

# Every combination that changes the process contract.
COMBINATIONS: list[dict[str, str]] = [
    {"web_framework": framework, "database": database, "worker": worker}
    for framework in COOKIECUTTER_JSON["web_framework"]
    for database in COOKIECUTTER_JSON["database"]
    for worker in COOKIECUTTER_JSON["worker"]
]


def combination_id(answers: dict[str, str]) -> str:
    return "-".join(answers.values())


@pytest.fixture(scope="session")
def deploy_projects(cookies_session: Any) -> dict[str, Path]:
    """Every combination baked with use_docker and use_kubernetes: path by combination id."""
    projects = {}
    for answers in COMBINATIONS:
        context = {**answers, "use_docker": True, "use_kubernetes": True}
        result = cookies_session.bake(extra_context=context)
        assert result.exit_code == 0, result.exception
        projects[combination_id(answers)] = result.project_path
    return projects


@pytest.fixture(params=COMBINATIONS, ids=combination_id)
def answers(request: pytest.FixtureRequest) -> dict[str, str]:
    combination: dict[str, str] = request.param
    return combination


@pytest.fixture
def project(deploy_projects: dict[str, Path], answers: dict[str, str]) -> Path:
    """The project baked with `answers`, shared by many tests: read it, don't change it."""
    return deploy_projects[combination_id(answers)]


def procfile_commands(project: Path) -> dict[str, list[str]]:
    """Each Procfile process type's command, split into its arguments, without its `exec`."""
    lines = (project / "Procfile").read_text().splitlines()
    return {
        name: shlex.split(command.strip().removeprefix("exec "))
        for name, command in (line.split(":", 1) for line in lines)
    }


def env_file(path: Path) -> dict[str, str]:
    """A KEY=value file (.env.example, kustomize's env files), comments and blanks skipped."""
    lines = (line.strip() for line in path.read_text().splitlines())
    return dict(line.split("=", 1) for line in lines if "=" in line and not line.startswith("#"))


def git_ignored(project: Path, paths: list[str]) -> set[str]:
    """Which of `paths` the project's .gitignore files ignore (in a fresh repository)."""
    subprocess.run(["git", "init", "--quiet", str(project)], check=True)
    result = subprocess.run(
        ["git", "-C", str(project), "check-ignore", "--no-index", *paths],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode in (0, 1), result.stderr  # 1: none of them is ignored
    return set(result.stdout.split())
