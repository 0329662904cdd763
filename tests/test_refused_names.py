"""The names a project cannot take are derived from what its environments install.

Each stack (web framework x database x worker) is baked with both
observability options on, locked and synced, dev group included, into one
shared environment; every distribution, top-level module and command found
there must be a name the pre-gen hook refuses. The options only add
requirements, so these environments hold what the stacks without them
install: syncing those too would double this test's time for no new name. A
new dependency that brings a new name fails here until the hook's lists hold it.
"""

from __future__ import annotations

import itertools
import re
import sys
import tomllib
from importlib.metadata import distributions
from pathlib import Path
from typing import Any

import pytest

from .conftest import OBSERVABILITY_OPTIONS, STACK_OPTIONS, UV, option_values, project_env, run
from .hooks import pre_gen

pytestmark = pytest.mark.xdist_group("refused-names")

# Every combination is accepted, a worker without a database included; each
# with the options that only add requirements on.
OBSERVED = dict.fromkeys(OBSERVABILITY_OPTIONS, True)
STACKS = [
    {**dict(zip(STACK_OPTIONS, values, strict=True)), **OBSERVED}
    for values in itertools.product(*map(option_values, STACK_OPTIONS))
]
# The baked project itself is in its environment too.
PROJECT = {"distributions": {"my-service"}, "modules": {"my_service"}, "commands": {"my-service"}}


def normalized(name: str) -> str:
    """A distribution name as installers compare them (PEP 503)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def top_level(path: str) -> str | None:
    """The import name a file installed at `path` (relative to site-packages) provides."""
    first = path.split("/")[0]
    if first == ".." or first.endswith((".dist-info", ".pth")) or first == "__pycache__":
        return None
    name = first.split(".")[0] if "/" not in path else first
    return name if name.isidentifier() else None


def installed_names(site_packages: Path) -> dict[str, set[str]]:
    names: dict[str, set[str]] = {"distributions": set(), "modules": set(), "commands": set()}
    for dist in distributions(path=[str(site_packages)]):
        names["distributions"].add(normalized(dist.metadata["Name"]))
        for file in dist.files or ():
            if file.parts[:1] == ("..",) and "bin" in file.parts:
                names["commands"].add(file.name)
            elif (module := top_level(file.as_posix())) is not None:
                names["modules"].add(module)
    return names


def stack_name(stack: dict[str, Any]) -> str:
    return "-".join(stack[option] for option in STACK_OPTIONS)


@pytest.fixture(scope="module")
def projects(cookies_session: Any) -> dict[str, Path]:
    """Each stack's bake, by its name."""
    baked = {}
    for stack in STACKS:
        result = cookies_session.bake(extra_context=stack)
        assert result.exit_code == 0, result.exception
        baked[stack_name(stack)] = result.project_path
    return baked


@pytest.fixture(scope="module")
def environment_names(
    projects: dict[str, Path], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, set[str]]:
    """The union over every stack of what its locked environment installs, and its build backend."""
    environment = tmp_path_factory.mktemp("refused-names") / "env"
    env = project_env(UV_PROJECT_ENVIRONMENT=str(environment))
    union: dict[str, set[str]] = {"distributions": set(), "modules": set(), "commands": set()}
    for project in projects.values():
        run([UV, "lock", "--quiet"], project, env)
        run([UV, "sync", "--frozen", "--quiet", "--python", sys.executable], project, env)
        [site_packages] = environment.glob("lib/python*/site-packages")
        for kind, names in installed_names(site_packages).items():
            union[kind] |= names - PROJECT[kind]
        build = tomllib.loads((project / "pyproject.toml").read_text())["build-system"]
        union["distributions"] |= {
            normalized(re.split(r"[<>=!~; \[]", r)[0]) for r in build["requires"]
        }
    return union


REFUSED = {
    "distributions": pre_gen.DEPENDENCY_DISTRIBUTIONS,
    "modules": pre_gen.DEPENDENCY_MODULES,
    "commands": pre_gen.DEPENDENCY_COMMANDS,
}


def test_stacks_are_every_accepted_framework_database_and_worker() -> None:
    assert {stack["worker"] for stack in STACKS} == set(option_values("worker"))
    assert len(STACKS) > 1


def requirements(project: Path) -> set[str]:
    """What a baked project requires: its dependencies, dependency groups and build backend."""
    pyproject = tomllib.loads((project / "pyproject.toml").read_text())
    groups = pyproject.get("dependency-groups", {}).values()
    return {
        *pyproject["project"]["dependencies"],
        *(str(requirement) for group in groups for requirement in group),
        *pyproject["build-system"]["requires"],
    }


def test_observability_options_only_add_requirements(
    cookies_session: Any, projects: dict[str, Path]
) -> None:
    """Why the environments with the options on hold the names of those without them.

    (Given the same requirements and more, uv resolves the same packages and more;
    a release that drops a dependency only under a newer bound could break that.)
    """
    dropped = {}
    for stack in STACKS:
        off = cookies_session.bake(
            extra_context={**stack, **dict.fromkeys(OBSERVABILITY_OPTIONS, False)}
        )
        assert off.exit_code == 0, off.exception
        on = projects[stack_name(stack)]
        if missing := requirements(off.project_path) - requirements(on):
            dropped[stack_name(stack)] = sorted(missing)
    assert dropped == {}


@pytest.mark.parametrize("kind", sorted(REFUSED))
def test_hook_refuses_every_name_the_environments_install(
    environment_names: dict[str, set[str]], kind: str
) -> None:
    missing = sorted(environment_names[kind] - REFUSED[kind])
    assert not missing, f"the pre-gen hook does not refuse these {kind}: {' '.join(missing)}"


def test_hook_refuses_every_folder_the_projects_gitignore_leaves_out(cookies: Any) -> None:
    """hatchling honours .gitignore: a package named after an ignored folder is never built."""
    result = cookies.bake()
    ignored = [
        line.removesuffix("/")
        for line in (result.project_path / ".gitignore").read_text().splitlines()
        if line.endswith("/") and line.removesuffix("/").isidentifier()
    ]
    assert ignored
    assert [name for name in ignored if pre_gen.check_package(name) is None] == []
