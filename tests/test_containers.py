"""use_docker: the image and the compose stack run the Procfile's processes, and nothing else.

No Docker engine is needed: hadolint lints every Dockerfile, the Compose
Specification's schema validates every compose.yaml, and the parsed files are
checked against the Procfile and the settings' defaults.
"""

from __future__ import annotations

import fnmatch
import json
import os
import posixpath
import re
import shlex
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from .conftest import COOKIECUTTER_JSON, DEFAULT_ANSWERS, UV, project_env, run, stack_key
from .deployment import (
    COMBINATIONS,
    combination_id,
    env_file,
    git_ignored,
    procfile_commands,
)

CONTAINER_FILES = ("Dockerfile", ".dockerignore", "compose.yaml")
BACKING_SERVICES = {"postgres", "redis"}
SECRET_NAME = re.compile(r"PASSWORD|SECRET|TOKEN|KEY", re.IGNORECASE)

Instruction = tuple[str, str]


@pytest.fixture(scope="module")
def python_projects(cookies_session: Any) -> dict[str, Path]:
    """The default service baked for each python_version."""
    projects = {}
    for version in COOKIECUTTER_JSON["python_version"]:
        result = cookies_session.bake(extra_context={"python_version": version})
        assert result.exit_code == 0, result.exception
        projects[version] = result.project_path
    return projects


def dockerfile_stages(project: Path) -> list[list[Instruction]]:
    """Each build stage's instructions as (INSTRUCTION, arguments), continuations joined."""
    text = re.sub(r"\\\n\s*", " ", (project / "Dockerfile").read_text())
    stages: list[list[Instruction]] = []
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        instruction, _, arguments = line.strip().partition(" ")
        if instruction.upper() == "FROM":
            stages.append([])
        stages[-1].append((instruction.upper(), arguments.strip()))
    return stages


def arguments_of(stage: list[Instruction], instruction: str) -> list[str]:
    return [arguments for name, arguments in stage if name == instruction]


def env_names(stage: list[Instruction]) -> set[str]:
    return {m for a in arguments_of(stage, "ENV") for m in re.findall(r"(\w+)=", a)}


def compose(project: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((project / "compose.yaml").read_text())
    return loaded


def app_services(project: Path) -> dict[str, dict[str, Any]]:
    """The services that run the image (the Procfile's processes), by name."""
    services = compose(project)["services"]
    return {name: s for name, s in services.items() if name not in BACKING_SERVICES}


def default_settings(project: Path) -> dict[str, str]:
    return env_file(project / ".env.example")


def worker_settings(answers: dict[str, str]) -> set[str]:
    """Settings a worker adds (its helper's .env.example may not exist on this branch yet)."""
    return {"REDIS_URL"} if answers["worker"] != "none" else set()


def expected_backing_services(answers: dict[str, str]) -> set[str]:
    services = {"redis"} if answers["worker"] != "none" else set()
    return services | ({"postgres"} if answers["database"] == "postgresql" else set())


def build_context(project: Path) -> set[str]:
    """The files `docker build` sends, by .dockerignore's rules: the last matching pattern wins."""
    patterns = [
        line.strip()
        for line in (project / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]

    def matches(path: str, pattern: str) -> bool:
        pattern = pattern.rstrip("/")
        # A pattern matches a path or any of its parent directories; ** spans directories.
        parents = [posixpath.join(*path.split("/")[: i + 1]) for i in range(path.count("/") + 1)]
        globs = {pattern, pattern.removeprefix("**/")}
        return any(fnmatch.fnmatchcase(p, g) for p in parents for g in globs)

    sent = set()
    for file in project.rglob("*"):
        if not file.is_file():
            continue
        path = file.relative_to(project).as_posix()
        included = True
        for pattern in patterns:
            if matches(path, pattern.removeprefix("!")):
                included = pattern.startswith("!")
        if included:
            sent.add(path)
    return sent


@pytest.mark.parametrize("python_version", COOKIECUTTER_JSON["python_version"])
def test_both_stages_run_the_chosen_python(
    python_projects: dict[str, Path], python_version: str
) -> None:
    stages = dockerfile_stages(python_projects[python_version])
    images = [stage[0][1].split()[0] for stage in stages]
    assert images[1:] == [f"python:{python_version}-slim"] * 2


def test_dependencies_come_from_the_lock_file_without_dev_tools(project: Path) -> None:
    _uv, builder, runtime = dockerfile_stages(project)
    syncs = [run.split("uv sync", 1)[1].split() for run in arguments_of(builder, "RUN")]
    assert syncs
    assert all({"--locked", "--no-dev"} <= set(flags) for flags in syncs)
    assert "UV_COMPILE_BYTECODE" in env_names(builder)  # compiled at build, not at first start
    # The runtime stage takes the environment from the builder and nothing else.
    assert arguments_of(runtime, "COPY") == ["--from=builder /app/.venv /app/.venv"]


def test_image_runs_the_web_process_as_pid_1_and_not_as_root(project: Path) -> None:
    runtime = dockerfile_stages(project)[-1]
    [cmd] = arguments_of(runtime, "CMD")
    assert json.loads(cmd) == procfile_commands(project)["web"]  # exec form: no shell as PID 1
    [user] = arguments_of(runtime, "USER")
    uid, _, gid = user.partition(":")
    assert int(uid) > 0
    assert int(gid) > 0
    assert arguments_of(runtime, "STOPSIGNAL") == ["SIGTERM"]
    assert arguments_of(runtime, "EXPOSE") == [default_settings(project)["PORT"]]


def test_no_secret_is_built_into_the_image(project: Path, tmp_path: Path) -> None:
    project = shutil.copytree(project, tmp_path / "project")  # a copy to add local files to
    stages = dockerfile_stages(project)
    build_args = [a.split("=")[0] for stage in stages for a in arguments_of(stage, "ARG")]
    assert build_args == ["RELEASE_ID"]  # the commit, the one build argument
    assert not {name for stage in stages for name in env_names(stage) if SECRET_NAME.search(name)}
    for local_only in (".env", ".env.production", "uv.lock", ".data/x.sqlite3", "id_ed25519"):
        (project / local_only).parent.mkdir(exist_ok=True)
        (project / local_only).write_text("local\n")
    sent = {path.split("/")[0] for path in build_context(project)}
    assert sent == {"LICENSE", "README.md", "pyproject.toml", "src", "uv.lock"}


@pytest.mark.xdist_group(stack_key({"database": "sqlite"}))
def test_builder_commands_make_a_working_environment_from_the_context(
    baked_project: Callable[..., Path], tmp_path: Path
) -> None:
    """The builder stage's uv commands, run without Docker on exactly the build context."""
    project = baked_project(database="sqlite")  # its `uv sync` wrote uv.lock
    _uv, builder, runtime = dockerfile_stages(project)
    context, lock_only, environment = tmp_path / "context", tmp_path / "lock", tmp_path / "venv"
    for path in build_context(project):
        (context / path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(project / path, context / path)
    lock_only.mkdir()
    for name in ("pyproject.toml", "uv.lock"):  # what the first RUN mounts
        shutil.copy(context / name, lock_only / name)
    build_env = project_env()
    for assignment in arguments_of(builder, "ENV"):
        build_env.update(pair.split("=", 1) for pair in shlex.split(assignment))
    build_env["UV_PROJECT_ENVIRONMENT"] = str(environment)  # not /app/.venv on this machine
    commands = [
        [UV, *[a for a in shlex.split(line) if not a.startswith("--mount=")][1:]]
        for line in arguments_of(builder, "RUN")
    ]
    assert len(commands) == 2
    run(commands[0], lock_only, build_env)
    run(commands[1], context, build_env)

    # The runtime stage's command works from the environment alone, in an empty directory.
    [workdir] = arguments_of(runtime, "WORKDIR")
    home = tmp_path / workdir.strip("/")
    home.mkdir()
    runtime_env = project_env(PATH=f"{environment}/bin:{os.environ['PATH']}")
    slug = procfile_commands(project)["release"][0]
    run([slug, "migrate"], home, runtime_env)
    assert (home / ".data").is_dir()
    site_packages = next((environment / "lib").glob("python*/site-packages"))
    package = site_packages / DEFAULT_ANSWERS["package_name"]
    assert list(package.glob("__pycache__/*.pyc"))  # compiled at build
    assert not [name for name in ("pytest", "mypy", "ruff") if (site_packages / name).exists()]


def test_release_id_is_the_build_argument_in_the_image_and_in_compose(project: Path) -> None:
    runtime = dockerfile_stages(project)[-1]
    assert arguments_of(runtime, "ARG") == ['RELEASE_ID=""']
    assert "RELEASE_ID=$RELEASE_ID" in arguments_of(runtime, "ENV")
    for name, service in app_services(project).items():
        assert service["build"]["args"] == {"RELEASE_ID": "${RELEASE_ID:-}"}, name


def test_uv_lock_is_committed_and_local_secrets_are_not(project: Path) -> None:
    ignored = git_ignored(project, ["uv.lock", ".env", "Dockerfile"])
    assert ignored == {".env"}


def test_compose_runs_each_procfile_process_with_its_command(project: Path) -> None:
    commands = {name: service["command"] for name, service in app_services(project).items()}
    assert commands == procfile_commands(project)


def test_compose_publishes_the_port_the_web_process_binds(project: Path) -> None:
    web = app_services(project)["web"]
    port = web["environment"]["PORT"]
    assert web["ports"] == [f"{port}:{port}"]
    [expose] = arguments_of(dockerfile_stages(project)[-1], "EXPOSE")
    assert port == expose


def test_compose_starts_processes_after_the_release_and_healthy_services(
    project: Path, answers: dict[str, str]
) -> None:
    services = compose(project)["services"]
    backing = expected_backing_services(answers)
    assert set(services) - set(app_services(project)) == backing
    assert all("healthcheck" in services[name] for name in backing)
    for name, service in app_services(project).items():
        depends_on = service.get("depends_on", {})
        conditions = {dependency: rule["condition"] for dependency, rule in depends_on.items()}
        needs = backing if name != "release" else backing - {"redis"}
        expected = dict.fromkeys(needs, "service_healthy")
        if name != "release" and answers["database"] != "none":
            expected["release"] = "service_completed_successfully"
        assert conditions == expected, name


def test_compose_configures_by_environment_with_an_optional_env_file(
    project: Path, answers: dict[str, str]
) -> None:
    defaults = default_settings(project)
    for service in app_services(project).values():
        assert service["env_file"] == [{"path": ".env", "required": False}]
        urls = {key for key in service["environment"] if key.endswith("_URL")}
        assert urls == {"DATABASE_URL", "REDIS_URL"} & {*defaults, *worker_settings(answers)}
        # A stop drains in-flight work (GRACEFUL_TIMEOUT) before Docker's SIGKILL.
        grace = int(service["stop_grace_period"].removesuffix("s"))
        assert grace > int(defaults["GRACEFUL_TIMEOUT"])


def test_compose_holds_no_secret(project: Path) -> None:
    services = compose(project)["services"]
    for name, service in services.items():
        environment = service.get("environment", {})
        assert not [key for key in environment if SECRET_NAME.search(key)], name
        assert not [v for v in environment.values() if urlsplit(str(v)).password], name
    if "postgres" in services:
        # The local database has no password: trust auth, reachable from this stack only.
        assert services["postgres"]["environment"]["POSTGRES_HOST_AUTH_METHOD"] == "trust"
        assert "ports" not in services["postgres"]
        url = urlsplit(services["web"]["environment"]["DATABASE_URL"])
        assert (url.hostname, url.path) == (
            "postgres",
            "/" + services["postgres"]["environment"]["POSTGRES_DB"],
        )


@pytest.mark.parametrize(
    "answers", [a for a in COMBINATIONS if a["database"] == "sqlite"], ids=combination_id
)
def test_compose_processes_share_one_sqlite_file(project: Path) -> None:
    [workdir] = arguments_of(dockerfile_stages(project)[-1], "WORKDIR")
    mounts = set()
    for service in app_services(project).values():
        database = urlsplit(service["environment"]["DATABASE_URL"]).path.removeprefix("/")
        [volume] = service["volumes"]
        name, _, target = volume.partition(":")
        assert target == posixpath.dirname(posixpath.join(workdir, database))
        mounts.add(name)
    assert len(mounts) == 1
    assert mounts <= set(compose(project)["volumes"])


def test_use_docker_no_leaves_no_container_files(cookies: Any) -> None:
    result = cookies.bake(extra_context={"use_docker": False, "database": "postgresql"})
    assert result.exit_code == 0, result.exception
    assert not [name for name in CONTAINER_FILES if (result.project_path / name).exists()]
    assert "## Containers" not in (result.project_path / "README.md").read_text()


def test_readme_says_to_commit_the_lock_file(deploy_projects: dict[str, Path]) -> None:
    default = combination_id({key: DEFAULT_ANSWERS[key] for key in COMBINATIONS[0]})
    readme = (deploy_projects[default] / "README.md").read_text()
    section = readme.split("## Containers", 1)[1].split("\n## ", 1)[0]
    assert "commit `uv.lock`" in " ".join(section.split())
