"""Shared fixtures: the template's answers, isolated bakes, the baked projects' environments."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
import tomllib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NoReturn

import pytest
import yaml
from cookiecutter.environment import StrictEnvironment
from jinja2.bccache import Bucket, BytecodeCache

# The container and Kubernetes tests' combinations and bakes.
pytest_plugins = ["tests.deployment"]

TEMPLATE = Path(__file__).resolve().parents[1]
COOKIECUTTER_JSON: dict[str, Any] = json.loads((TEMPLATE / "cookiecutter.json").read_text())
DATABASES: list[str] = COOKIECUTTER_JSON["database"]
FRAMEWORKS: list[str] = COOKIECUTTER_JSON["web_framework"]


# Jinja that survived rendering: a variable, a block, a comment, or a context lookup.
# `${{ ... }}` is a GitHub Actions expression, not Jinja.
UNRENDERED = re.compile(rb"(?<!\$)\{\{|\{%|%\}|\{#|cookiecutter\.")


def option_values(option: str) -> list[Any]:
    """The answers an option accepts: its choices, or False and True for a yes/no question."""
    default = COOKIECUTTER_JSON[option]
    return [False, True] if isinstance(default, bool) else list(default)


# Every question's default answer, as the hooks receive it after rendering.
DEFAULT_ANSWERS: dict[str, Any] = {
    **{
        key: value[0] if isinstance(value, list) else value
        for key, value in COOKIECUTTER_JSON.items()
        if not key.startswith("_")
    },
    "project_slug": "my-service",
    "package_name": "my_service",
}


def dev_tool(name: str) -> str:
    """A tool installed beside this interpreter (the template's dev tools), else from PATH."""
    path = Path(sys.executable).with_name(name)
    return str(path) if path.exists() else name


UV = dev_tool("uv")
RUFF = dev_tool("ruff")


def pytest_configure(config: pytest.Config) -> None:
    # pytest-cookies bakes the template named by --template, "." by default: make it this one.
    config.option.template = str(TEMPLATE)


# Optional: `pytest -p no:xdist` runs the suite without xdist, which defines this hook.
@pytest.hookimpl(optionalhook=True)
def pytest_xdist_auto_num_workers() -> int:
    """A worker per CPU, and one more: a quarter of the suite's time, its real processes
    are waiting (on a signal, a timeout, a container), and one worker per CPU left the
    CPUs idle that long."""
    return (os.cpu_count() or 1) + 1


# The tests that take minutes, in the order their groups start: longest first. xdist hands
# out groups in collection order (the Makefile turns off its reordering by size, which
# started the long groups last), so the short ones fill in at the end.
LONGEST_FIRST = (
    "test_an_owner_grows_the_service",
    "test_generated_test_suite_passes",
    "test_every_row_is_measured_or_says_why_not",
    "test_every_accepted_combination_bakes",
    "test_updated_project_passes_its_own_tests",
)


def work_unit(item: pytest.Item) -> str:
    """What xdist runs on one worker: the test's xdist_group, or the test alone."""
    group = item.get_closest_marker("xdist_group")
    if group is None:
        return item.nodeid
    return str(group.kwargs["name"] if "name" in group.kwargs else group.args[0])


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The groups holding the longest tests first, longest first; the rest as collected."""
    start = {}
    for item in items:
        name = getattr(item, "originalname", item.name)
        if name in LONGEST_FIRST:
            unit = work_unit(item)
            start[unit] = min(start.get(unit, len(LONGEST_FIRST)), LONGEST_FIRST.index(name))
    items.sort(key=lambda item: start.get(work_unit(item), len(LONGEST_FIRST)))


@pytest.fixture(scope="session", autouse=True)
def hook_scripts_in_pytest_tmp(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Cookiecutter leaves each rendered hook in the temp dir; keep them in pytest's."""
    tempfile.tempdir = str(tmp_path_factory.mktemp("hook-scripts"))


class CompiledTemplates(BytecodeCache):
    """Jinja's compiled templates, kept in memory for the session.

    Cookiecutter makes a new Jinja environment for each bake, so each bake
    compiled every template again: two thirds of an in-process bake's time.
    Jinja checks each kept template against its source's checksum.
    """

    def __init__(self) -> None:
        self.compiled: dict[str, bytes] = {}

    def load_bytecode(self, bucket: Bucket) -> None:
        if bucket.key in self.compiled:
            bucket.bytecode_from_string(self.compiled[bucket.key])

    def dump_bytecode(self, bucket: Bucket) -> None:
        self.compiled[bucket.key] = bucket.bytecode_to_string()


@pytest.fixture(scope="session", autouse=True)
def compile_templates_once() -> Iterator[None]:
    """Every in-process bake of the session (pytest-cookies) shares one CompiledTemplates."""
    compiled = CompiledTemplates()
    create = StrictEnvironment.__init__

    def create_with_cache(environment: StrictEnvironment, **options: Any) -> None:
        create(environment, **options)
        environment.bytecode_cache = compiled

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(StrictEnvironment, "__init__", create_with_cache)
        yield


@pytest.fixture(scope="session", autouse=True)
def shared_mypy_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """One mypy cache for the projects a worker type-checks (MYPY_CACHE_DIR reaches them all).

    A cold run spends nearly all its time on the libraries the projects share
    (16 s of 18; 3 s with their cache). mypy checks each cached module against
    its source's hash, so a project's own modules are checked afresh. The
    directory is per xdist worker, so two mypy runs never write one cache.
    """
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MYPY_CACHE_DIR", str(tmp_path_factory.mktemp("mypy-cache")))
        yield


def require_backing_service(variable: str) -> str:
    """The URL in `variable`; without it, skip (or fail under REQUIRE_BACKING_SERVICES=1)."""
    url = os.environ.get(variable)
    if url:
        return url
    missing(f"{variable} is not set: these tests need a real server")


def missing(reason: str) -> NoReturn:
    """Skip for want of a server or tool; under REQUIRE_BACKING_SERVICES=1 (CI), fail."""
    if os.environ.get("REQUIRE_BACKING_SERVICES") == "1":
        pytest.fail(f"{reason} (REQUIRE_BACKING_SERVICES=1)")
    pytest.skip(reason)


def project_files(root: Path) -> dict[str, bytes]:
    """Every file under `root` by relative path, with its bytes."""
    return {
        path.relative_to(root).as_posix(): path.read_bytes()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


def run(
    command: list[str], cwd: Path, env: dict[str, str] | None = None, timeout: float = 600
) -> str:
    """Run a command (in a baked project, or the template); fail the test unless it exits 0."""
    result = subprocess.run(
        command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    output = f"$ {' '.join(command)}\n{result.stdout}\n{result.stderr}"
    assert result.returncode == 0, output
    return output


def bake_on_command_line(
    sandbox: Path, answers: dict[str, Any]
) -> subprocess.CompletedProcess[str]:
    """`cookiecutter --no-input key=value ...` as a person runs it, into `sandbox`/out.

    The bake has a sandbox of its own: HOME, TMPDIR, working directory and
    cookiecutter config (its replay folder), so a test can see all it wrote.
    """
    for folder in ("home", "tmp", "cwd", "out"):
        (sandbox / folder).mkdir(parents=True, exist_ok=True)
    config = sandbox / "config.yaml"
    config.write_text(
        json.dumps(
            {"replay_dir": str(sandbox / "replay"), "cookiecutters_dir": str(sandbox / "cc")}
        )
    )
    env = project_env(HOME=str(sandbox / "home"), TMPDIR=str(sandbox / "tmp"))
    env["PYTHONDONTWRITEBYTECODE"] = "1"  # nor in the template: its Jinja extension is imported
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "cookiecutter",
            "--no-input",
            "--config-file",
            str(config),
            "--output-dir",
            str(sandbox / "out"),
            str(TEMPLATE),
            *(f"{key}={value}" for key, value in answers.items()),
        ],
        cwd=sandbox / "cwd",
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def parse_structured(path: Path) -> object:
    """A TOML, JSON or YAML file's content (every YAML document); raises on a syntax error."""
    text = path.read_text()
    if path.suffix == ".toml":
        return tomllib.loads(text)
    if path.suffix == ".json":
        return json.loads(text)
    return list(yaml.safe_load_all(text))


def project_env(**overrides: str | None) -> dict[str, str]:
    """The environment a baked project's commands run in: this one, minus this venv.

    Bytecode writing stays on: every test there starts Python processes, and
    without cached bytecode each one recompiles FastAPI and SQLAlchemy.
    """
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("VIRTUAL_ENV", "PYTHONDONTWRITEBYTECODE", "PYTHONPATH")
    }
    env["UV_NO_PROGRESS"] = "1"
    for key, value in overrides.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return env


# The options that make a project's code and dependencies.
STACK_OPTIONS = ("web_framework", "database", "worker")
# Yes/no options that add code and dependencies to any stack.
OBSERVABILITY_OPTIONS = ("use_opentelemetry", "use_sentry")
# The questions with a fixed set of answers (choices, yes/no).
CHOICE_OPTIONS = tuple(
    key
    for key, value in COOKIECUTTER_JSON.items()
    if not key.startswith("_") and isinstance(value, list | bool)
)


def stack_key(answers: dict[str, Any]) -> str:
    """`flask-postgresql-celery`: a bake's framework, database and worker, defaults filled in.

    With observability on, `-otel` or `-sentry` for one option, `-observed`
    for both. Tests that share a bake share this as their xdist group, so
    one worker bakes and installs it once.
    """
    stack = [answers.get(option, DEFAULT_ANSWERS[option]) for option in STACK_OPTIONS]
    observed = [
        name
        for option, name in zip(OBSERVABILITY_OPTIONS, ("otel", "sentry"), strict=True)
        if answers.get(option, DEFAULT_ANSWERS[option])
    ]
    if len(observed) == len(OBSERVABILITY_OPTIONS):
        observed = ["observed"]
    return "-".join([*stack, *observed])


@pytest.fixture(scope="session")
def baked_project(cookies_session: Any) -> Callable[..., Path]:
    """Bake once per set of answers, with its dependencies installed by uv."""
    projects: dict[str, Path] = {}

    def bake(**answers: Any) -> Path:
        defaults = {option: DEFAULT_ANSWERS[option] for option in CHOICE_OPTIONS}
        key = json.dumps({**defaults, **answers}, sort_keys=True)
        if key not in projects:
            result = cookies_session.bake(extra_context=answers)
            assert result.exit_code == 0, result.exception
            run(
                [UV, "sync", "--quiet", "--python", sys.executable],
                result.project_path,
                project_env(),
            )
            projects[key] = result.project_path
        return projects[key]

    return bake
