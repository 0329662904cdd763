"""CI for the generated project: valid for its service, and every check it runs is a make target.

CI files are baked for every combination of the options they must serve and
read as data: the targets they call, the backing services, the environment.
tests/test_matrix.py runs the schema validators on every distinct CI file.
The make targets CI calls run here in a baked project, passing and failing.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import re
import shlex
import subprocess
import tomllib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from .conftest import (
    COOKIECUTTER_JSON,
    TEMPLATE,
    UV,
    dev_tool,
    project_env,
    require_backing_service,
    run,
    stack_key,
)

BakedProject = Callable[..., Path]
PRE_COMMIT = dev_tool("pre-commit")
CI_FILES = {"github": ".github/workflows/ci.yml", "gitlab": ".gitlab-ci.yml"}
TEMPLATE_UPDATE_WORKFLOW = ".github/workflows/template-update.yml"
# Targets whose tool runs with uvx, outside the project's environment: no `uv sync` first.
UVX_TARGETS = {"audit", "check-template"}
# Targets that run a container engine, not the project's environment.
IMAGE_TARGETS = {"smoke-image"}
DEPENDABOT = ".github/dependabot.yml"
BACKING_SERVICE_ENV = {"TEST_DATABASE_URL", "TEST_REDIS_URL", "REQUIRE_BACKING_SERVICES"}
# Hooks of pre-commit-hooks by id, and the console script the package installs for each.
HYGIENE_HOOKS = {
    "check-yaml": "check-yaml",
    "check-toml": "check-toml",
    "end-of-file-fixer": "end-of-file-fixer",
    "trailing-whitespace": "trailing-whitespace-fixer",
    "check-added-large-files": "check-added-large-files",
    "check-merge-conflict": "check-merge-conflict",
    "detect-private-key": "detect-private-key",
}


def combinations() -> Iterator[dict[str, str]]:
    """Every ci x web_framework x database x worker."""
    for ci, web, database, worker in itertools.product(
        ("github", "gitlab"),
        COOKIECUTTER_JSON["web_framework"],
        COOKIECUTTER_JSON["database"],
        COOKIECUTTER_JSON["worker"],
    ):
        yield {"ci": ci, "web_framework": web, "database": database, "worker": worker}


COMBINATIONS = [pytest.param(answers, id="-".join(answers.values())) for answers in combinations()]


@pytest.fixture(scope="module")
def bake(cookies_session: Any) -> Callable[..., Path]:
    """Bake once per set of answers in this module (no environment: these tests read files)."""
    projects: dict[tuple[tuple[str, str], ...], Path] = {}

    def bake_once(**answers: str) -> Path:
        key = tuple(sorted(answers.items()))
        if key not in projects:
            result = cookies_session.bake(extra_context=answers)
            assert result.exit_code == 0, result.exception
            projects[key] = result.project_path
        return projects[key]

    return bake_once


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def make_targets(project: Path) -> set[str]:
    return set(re.findall(r"^([a-z][a-z-]*):", (project / "Makefile").read_text(), re.MULTILINE))


def made_targets(commands: list[str]) -> list[str]:
    """The make targets in shell commands, past any VAR=value assignments around them."""
    targets = []
    for command in commands:
        words = shlex.split(command)
        while words and "=" in words[0]:
            words.pop(0)
        if words[:1] == ["make"]:
            targets.extend(word for word in words[1:] if "=" not in word)  # not VAR=value
    return targets


def github_jobs(project: Path, workflow: str = CI_FILES["github"]) -> dict[str, dict[str, Any]]:
    jobs: dict[str, dict[str, Any]] = load_yaml(project / workflow)["jobs"]
    return jobs


def job_commands(ci: str, job: dict[str, Any], gitlab_default: dict[str, Any]) -> list[str]:
    """A job's shell commands in order (GitLab: its before_script, or the default one, first)."""
    if ci == "github":
        return [step["run"] for step in job["steps"] if "run" in step]
    before = job.get("before_script", gitlab_default.get("before_script", []))
    return [*before, *job["script"]]


def ci_jobs(project: Path, ci: str) -> dict[str, list[str]]:
    """Each job's commands, whichever service runs them."""
    if ci == "github":
        return {
            name: job_commands(ci, job, {})
            for workflow in (CI_FILES["github"], TEMPLATE_UPDATE_WORKFLOW)
            for name, job in github_jobs(project, workflow).items()
        }
    config = load_yaml(project / CI_FILES["gitlab"])
    default = config.get("default", {})
    return {
        name: job_commands(ci, job, default)
        for name, job in config.items()
        if isinstance(job, dict) and "script" in job
    }


def backing_services(project: Path, ci: str) -> tuple[dict[str, str], set[str]]:
    """The test job's environment and the images of its service containers."""
    if ci == "github":
        job = github_jobs(project)["test"]
        images = {service["image"] for service in job["services"].values()}
        return job["env"], images
    job = load_yaml(project / CI_FILES["gitlab"])["test"]
    return job["variables"], {service["name"] for service in job["services"]}


@pytest.mark.parametrize("answers", COMBINATIONS)
def test_ci_runs_every_check_as_a_make_target(bake: Callable[..., Path], answers: dict) -> None:
    project = bake(**answers)
    jobs = ci_jobs(project, answers["ci"])
    called = {target for commands in jobs.values() for target in made_targets(commands)}
    assert called <= make_targets(project)
    expected = {"lint", "check-env-example", "test", "audit", "check-template", "smoke-image"}
    if answers["database"] != "none":
        expected.add("check-migrations")
    assert called == expected
    for commands in jobs.values():
        # Jobs that run the project's tools install exactly the locked dependencies first.
        if set(made_targets(commands)) - UVX_TARGETS - IMAGE_TARGETS:
            assert commands[0] == "uv sync --locked", commands


@pytest.mark.parametrize("answers", COMBINATIONS)
def test_tests_run_against_postgresql_and_redis(bake: Callable[..., Path], answers: dict) -> None:
    env, images = backing_services(bake(**answers), answers["ci"])
    assert {image.split(":")[0] for image in images} == {"postgres", "redis"}
    assert set(env) >= BACKING_SERVICE_ENV
    assert env["REQUIRE_BACKING_SERVICES"] == "1"
    assert env["TEST_DATABASE_URL"].startswith("postgresql://")
    assert env["TEST_REDIS_URL"].startswith("redis://")


# The programs tests/test_faults.py starts its private servers with: GitHub's
# runner has PostgreSQL's already, GitLab's uv image has neither.
FAULT_SERVER_PACKAGES = {"github": {"redis-server"}, "gitlab": {"postgresql", "redis-server"}}


def apt_installed(commands: list[str]) -> set[str]:
    """The packages `apt-get install` commands name."""
    return {
        word
        for command in commands
        if "apt-get install" in command
        for word in shlex.split(command.split("apt-get install", 1)[1])
        if not word.startswith("-")
    }


@pytest.mark.parametrize("answers", COMBINATIONS)
def test_fault_tests_get_the_programs_of_their_private_servers(
    bake: Callable[..., Path], answers: dict
) -> None:
    project = bake(**answers)
    commands = ci_jobs(project, answers["ci"])["test"]
    if (project / "tests" / "test_faults.py").exists():
        assert apt_installed(commands) == FAULT_SERVER_PACKAGES[answers["ci"]]
    else:
        assert apt_installed(commands) == set()


@pytest.mark.parametrize("python_version", COOKIECUTTER_JSON["python_version"])
@pytest.mark.parametrize("ci", ["github", "gitlab"])
def test_ci_runs_on_the_python_floor(
    bake: Callable[..., Path], ci: str, python_version: str
) -> None:
    config = load_yaml(bake(ci=ci, python_version=python_version) / CI_FILES[ci])
    if ci == "github":
        assert config["env"]["UV_PYTHON"] == python_version
    else:
        variables = config["variables"]
        assert variables["PYTHON_VERSION"] == python_version
        assert variables["UV_PYTHON"] == "$PYTHON_VERSION"
        assert "python$PYTHON_VERSION" in config["default"]["image"]


def test_github_workflow_is_least_privilege_pinned_and_cancels_stale_runs(
    bake: Callable[..., Path],
) -> None:
    config = load_yaml(bake(ci="github") / CI_FILES["github"])
    assert config["permissions"] == {"contents": "read"}
    assert config["concurrency"]["cancel-in-progress"] is True
    steps = [step for job in config["jobs"].values() for step in job["steps"]]
    actions = [step["uses"] for step in steps if "uses" in step]
    assert actions
    for action in actions:
        assert re.fullmatch(r"[\w-]+/[\w-]+@[0-9a-f]{40}", action), f"{action}: pin a commit"
    checkouts = [step for step in steps if step.get("uses", "").startswith("actions/checkout@")]
    assert all(step["with"]["persist-credentials"] is False for step in checkouts)
    for step in steps:
        if step.get("uses", "").startswith("astral-sh/setup-uv@"):
            assert step["with"]["enable-cache"] is True


def test_gitlab_pipeline_cancels_stale_runs_and_caches_uv(bake: Callable[..., Path]) -> None:
    config = load_yaml(bake(ci="gitlab") / CI_FILES["gitlab"])
    assert config["workflow"]["auto_cancel"]["on_new_commit"] == "interruptible"
    assert config["default"]["interruptible"] is True
    assert config["default"]["cache"]["paths"] == ["$UV_CACHE_DIR"]
    assert config["default"]["cache"]["key"]["files"] == ["uv.lock"]


def test_github_checks_the_template_weekly_and_skips_unlinked_projects(
    bake: Callable[..., Path],
) -> None:
    project = bake(ci="github")
    config = load_yaml(project / TEMPLATE_UPDATE_WORKFLOW)
    triggers = config[True]  # YAML 1.1 reads the key `on` as true
    assert set(triggers) == {"schedule", "workflow_dispatch"}
    [cron] = [entry["cron"] for entry in triggers["schedule"]]
    minute, hour, day, month, weekday = cron.split()
    assert (day, month) == ("*", "*")
    assert all(field.isdigit() for field in (minute, hour, weekday)), cron
    assert config["permissions"] == {"contents": "read"}
    [job] = config["jobs"].values()
    checkout, *guarded = job["steps"]
    assert checkout["with"]["persist-credentials"] is False
    # Every step after the checkout depends on whether cruft linked the project.
    assert {step["if"] for step in guarded} == {
        "hashFiles('.cruft.json') == ''",
        "hashFiles('.cruft.json') != ''",
    }
    linked = [step for step in guarded if step["if"].endswith("!= ''")]
    assert made_targets([step["run"] for step in linked if "run" in step]) == ["check-template"]
    ci_actions = {
        step["uses"]
        for ci_job in github_jobs(project).values()
        for step in ci_job["steps"]
        if "uses" in step
    }
    assert {step["uses"] for step in job["steps"] if "uses" in step} <= ci_actions


def test_gitlab_checks_the_template_in_scheduled_pipelines_only(
    bake: Callable[..., Path],
) -> None:
    job = load_yaml(bake(ci="gitlab") / CI_FILES["gitlab"])["check-template"]
    assert job["rules"] == [{"if": '$CI_PIPELINE_SOURCE == "schedule"', "exists": [".cruft.json"]}]
    assert job["before_script"] == []
    assert made_targets(job["script"]) == ["check-template"]


def test_dependabot_updates_the_lock_and_the_actions(bake: Callable[..., Path]) -> None:
    config = load_yaml(bake(ci="github") / DEPENDABOT)
    assert {update["package-ecosystem"] for update in config["updates"]} == {
        "uv",
        "github-actions",
    }


@pytest.mark.parametrize("ci", COOKIECUTTER_JSON["ci"])
def test_only_the_chosen_ci_is_generated(bake: Callable[..., Path], ci: str) -> None:
    project = bake(ci=ci)
    assert (project / ".github").exists() is (ci == "github")
    assert (project / ".gitlab-ci.yml").exists() is (ci == "gitlab")


# pre-commit


PRE_COMMIT_CONFIG = TEMPLATE / "{{cookiecutter.project_slug}}" / ".pre-commit-config.yaml"


def pre_commit_hooks() -> dict[str, dict[str, Any]]:
    """The config's repos by URL (or "local")."""
    return {repo["repo"]: repo for repo in load_yaml(PRE_COMMIT_CONFIG)["repos"]}


def test_pre_commit_config_is_plain_and_valid(bake: Callable[..., Path]) -> None:
    project = bake(ci="none", database="none")
    baked = project / ".pre-commit-config.yaml"
    assert baked.read_bytes() == PRE_COMMIT_CONFIG.read_bytes(), "keep it free of Jinja"
    run([PRE_COMMIT, "validate-config", str(baked)], project)


def test_pre_commit_runs_ruff_and_the_hygiene_hooks_at_pinned_tags() -> None:
    repos = pre_commit_hooks()
    hygiene = repos["https://github.com/pre-commit/pre-commit-hooks"]
    assert {hook["id"] for hook in hygiene["hooks"]} == set(HYGIENE_HOOKS)
    ruff = repos["https://github.com/astral-sh/ruff-pre-commit"]
    assert [hook["id"] for hook in ruff["hooks"]] == ["ruff-check", "ruff-format"]
    for url, repo in repos.items():
        if url != "local":
            assert re.fullmatch(r"v?\d+\.\d+\.\d+", repo["rev"]), f"{url}: pin a release tag"


def test_pre_commit_ruff_is_the_projects_ruff(bake: Callable[..., Path]) -> None:
    """The hook's ruff satisfies the dev group's floor, so commits and `make lint` agree."""
    pyproject = tomllib.loads((bake() / "pyproject.toml").read_text())
    floor = next(d for d in pyproject["dependency-groups"]["dev"] if d.startswith("ruff>="))
    rev = pre_commit_hooks()["https://github.com/astral-sh/ruff-pre-commit"]["rev"]

    def version(text: str) -> tuple[int, ...]:
        return tuple(int(part) for part in text.lstrip("v").split("."))

    assert version(rev) >= version(floor.removeprefix("ruff>="))


def test_pre_commit_local_hooks_call_make_targets(bake: Callable[..., Path]) -> None:
    project = bake(database="none")
    entries = [hook["entry"] for hook in pre_commit_hooks()["local"]["hooks"]]
    assert made_targets(entries) == ["check-env-example"]
    assert set(made_targets(entries)) <= make_targets(project)


@pytest.mark.parametrize(
    "answers",
    [
        pytest.param({"ci": "github", "database": "postgresql", "worker": "celery"}, id="github"),
        pytest.param({"ci": "gitlab", "database": "sqlite", "worker": "rq"}, id="gitlab"),
        pytest.param({"ci": "none", "database": "none"}, id="none"),
    ],
)
def test_fresh_bake_passes_the_hygiene_hooks(
    cookies: Any, answers: dict[str, str], tmp_path: Path
) -> None:
    """A new project's first `pre-commit run --all-files` changes nothing and finds nothing."""
    result = cookies.bake(extra_context=answers)
    assert result.exit_code == 0, result.exception
    project: Path = result.project_path
    run(["git", "init", "--quiet"], project)
    run(["git", "add", "--all"], project)
    listing = subprocess.run(
        ["git", "ls-files"], cwd=project, capture_output=True, text=True, check=True, timeout=30
    )
    files = listing.stdout.splitlines()
    by_suffix = {
        "check-yaml": [f for f in files if f.endswith((".yml", ".yaml"))],
        "check-toml": [f for f in files if f.endswith(".toml")],
    }
    for hook_id, script in HYGIENE_HOOKS.items():
        arguments = by_suffix.get(hook_id, files)
        if hook_id == "check-merge-conflict":
            arguments = ["--assume-in-merge", *arguments]
        run([dev_tool(script), *arguments], project)


def test_gitignore_keeps_the_lock_and_the_ci_files(bake: Callable[..., Path]) -> None:
    project = bake(ci="github")
    run(["git", "init", "--quiet"], project)
    for path in ("uv.lock", ".pre-commit-config.yaml", CI_FILES["github"], DEPENDABOT):
        ignored = subprocess.run(
            ["git", "check-ignore", "--quiet", path], cwd=project, check=False, timeout=30
        )
        assert ignored.returncode == 1, f"{path} is ignored"


# The make targets CI calls, run in a baked project.


def make(project: Path, target: str, **env: str | None) -> subprocess.CompletedProcess[str]:
    path = os.pathsep.join([str(Path(UV).parent), os.environ.get("PATH", "")])
    return subprocess.run(
        ["make", "--no-print-directory", target],
        cwd=project,
        env=project_env(PATH=path, **env),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


@pytest.fixture
def restore() -> Iterator[Callable[[Path], None]]:
    """Files a test edits in a shared baked project get their bytes back afterwards."""
    saved: dict[Path, bytes] = {}

    def keep(path: Path) -> None:
        saved.setdefault(path, path.read_bytes())

    yield keep
    for path, data in saved.items():
        path.write_bytes(data)


@pytest.mark.xdist_group(stack_key({"database": "sqlite"}))
def test_check_env_example_fails_on_drift(
    baked_project: BakedProject, restore: Callable[[Path], None]
) -> None:
    project = baked_project(database="sqlite")
    passed = make(project, "check-env-example")
    assert passed.returncode == 0, passed.stdout + passed.stderr
    example = project / ".env.example"
    restore(example)
    example.write_text(example.read_text().replace("PORT=8000", "PORT=8080"))
    drifted = make(project, "check-env-example")
    assert drifted.returncode != 0
    assert "-PORT=8080" in drifted.stdout
    assert "run 'make env-example'" in drifted.stderr


@contextlib.contextmanager
def migration_database(project: Path, server: str | None) -> Iterator[str | None]:
    """DATABASE_URL for `make check-migrations`: a throwaway PostgreSQL database, or the default."""
    if server is None:
        yield None
        return
    server_url = require_backing_service(server)
    name = f"ci_check_{os.getpid()}"
    script = (
        "import sys; from sqlalchemy import create_engine, text; "
        "e = create_engine(sys.argv[1].replace('postgresql://', 'postgresql+psycopg://', 1), "
        "isolation_level='AUTOCOMMIT'); c = e.connect(); "
        "c.execute(text(sys.argv[2]))"
    )

    def admin(sql: str) -> None:
        run(
            [UV, "run", "--no-sync", "python", "-c", script, server_url, sql],
            project,
            project_env(),
        )

    admin(f'CREATE DATABASE "{name}"')
    try:
        yield server_url.rsplit("/", 1)[0] + f"/{name}"
    finally:
        admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.mark.parametrize(
    ("database", "server"),
    [
        pytest.param(
            "sqlite",
            None,
            id="sqlite",
            marks=pytest.mark.xdist_group(stack_key({"database": "sqlite"})),
        ),
        pytest.param(
            "postgresql",
            "TEST_DATABASE_URL",
            id="postgresql",
            marks=pytest.mark.xdist_group(stack_key({"database": "postgresql"})),
        ),
    ],
)
def test_check_migrations_fails_when_a_model_has_no_migration(
    baked_project: BakedProject,
    restore: Callable[[Path], None],
    tmp_path: Path,
    database: str,
    server: str | None,
) -> None:
    project = baked_project(database=database)
    with migration_database(project, server) as url:
        # The SQLite default lives under .data/ in the working directory: keep it out of the bake.
        env = {"DATABASE_URL": url or f"sqlite:///{tmp_path / 'check.sqlite3'}"}
        passed = make(project, "check-migrations", **env)
        assert passed.returncode == 0, passed.stdout + passed.stderr
        models = next((project / "src").glob("*/tables.py"))
        restore(models)
        source = models.read_text()
        column = "    description: Mapped[str | None] = mapped_column(Text)\n"
        assert column in source
        models.write_text(source.replace(column, column + column.replace("description", "note")))
        unmigrated = make(project, "check-migrations", **env)
        assert unmigrated.returncode != 0
        assert "add_column" in unmigrated.stdout + unmigrated.stderr


@pytest.mark.xdist_group(stack_key({"database": "none"}))
def test_audit_fails_on_a_stale_lock(
    baked_project: BakedProject, restore: Callable[[Path], None]
) -> None:
    """The export's failure fails the target even though pip-audit, last in the pipe, runs."""
    project = baked_project(database="none")
    pyproject = project / "pyproject.toml"
    restore(pyproject)
    pyproject.write_text(
        pyproject.read_text().replace("dependencies = [", 'dependencies = ["six",')
    )
    stale = make(project, "audit")
    assert stale.returncode != 0
    assert "lockfile" in stale.stderr.lower()


@pytest.mark.xdist_group(stack_key({"database": "none"}))
def test_audit_reads_the_locked_dependencies(baked_project: BakedProject) -> None:
    """Passes where the advisory service answers; elsewhere it must fail, naming a locked package.

    pip-audit runs with --strict: a dependency it could not look up fails the audit.
    """
    project = baked_project(database="none")
    locked = {
        package["name"] for package in tomllib.loads((project / "uv.lock").read_text())["package"]
    }
    result = make(project, "audit")
    output = result.stdout + result.stderr
    if result.returncode == 0:
        assert "No known vulnerabilities found" in output
    else:
        assert any(re.search(rf"\b{re.escape(name)}\b", output) for name in locked), output


def make_variables(command: str) -> dict[str, str]:
    """The VAR=value arguments of a make command."""
    words = shlex.split(command)
    return dict(word.split("=", 1) for word in words[1:] if "=" in word)


IMAGE_JOBS = {"github": "image", "gitlab": "container-image"}


@pytest.mark.parametrize("ci", ["github", "gitlab"])
@pytest.mark.parametrize("use_docker", [True, False], ids=["docker", "no-docker"])
def test_ci_smoke_tests_the_image_of_the_commit_and_publishes_it_from_the_default_branch(
    bake: BakedProject, ci: str, use_docker: bool
) -> None:
    project = bake(ci=ci, use_docker=use_docker)
    jobs = ci_jobs(project, ci)
    if not use_docker:
        assert IMAGE_JOBS[ci] not in jobs
        return
    commands = jobs[IMAGE_JOBS[ci]]
    [smoke] = [command for command in commands if made_targets([command]) == ["smoke-image"]]
    commit = {"github": "$GITHUB_SHA", "gitlab": "$CI_COMMIT_SHA"}[ci]
    assert make_variables(smoke)["RELEASE_ID"] == commit
    if ci == "github":
        job = github_jobs(project)["image"]
        assert job["permissions"] == {"contents": "read", "packages": "write"}
        [publish] = [step for step in job["steps"] if "docker push" in step.get("run", "")]
        assert publish["if"] == "github.event_name == 'push' && github.ref == 'refs/heads/main'"
        assert job["env"]["IMAGE"].startswith("ghcr.io/")
    else:
        job = load_yaml(project / CI_FILES["gitlab"])["container-image"]
        [publish] = [command for command in job["script"] if "docker push" in command]
        assert publish.startswith('if [ "$CI_COMMIT_BRANCH" = "$CI_DEFAULT_BRANCH" ]; then')
        assert job["variables"]["IMAGE"] == "$CI_REGISTRY_IMAGE:$CI_COMMIT_SHA"
    # The image is smoke-tested before anything is pushed.
    assert commands.index(smoke) < commands.index(next(c for c in commands if "docker push" in c))
