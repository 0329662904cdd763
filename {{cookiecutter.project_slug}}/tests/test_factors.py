"""The twelve factors, each proven on the real processes: the README's factor table names these.

Tests are named after their factor. The scenarios that start a whole set of
processes run once per module (`finished_run`, `scaled_run`); their tests
then check different promises of the same run.
"""

from __future__ import annotations

import ast
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tomllib
from collections.abc import Callable, Iterator
from dataclasses import dataclass{% if cookiecutter.database != "none" or cookiecutter.worker != "none" %}, field{% endif %}
from functools import partial
from importlib.metadata import packages_distributions
from importlib.util import find_spec
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

{% if cookiecutter.database != "none" -%}
from {{ cookiecutter.package_name }}.db import engine_url
{% endif -%}
from {{ cookiecutter.package_name }}.settings import (
    Settings,
{%- if cookiecutter.database != "none" %}
    display_value,
{%- endif %}
    load_settings,
)

from .conftest import (
    PROJECT_ROOT,
    SETTING_NAMES,
{%- if cookiecutter.worker != "none" %}
    broker_settings,
    clean_queue,
{%- endif %}
{%- if cookiecutter.database != "none" %}
    create_throwaway_database,
{%- endif %}
    free_port,
{%- if cookiecutter.database != "none" %}
    fresh_database,
{%- endif %}
    read_procfile,
{%- if cookiecutter.database == "postgresql" or cookiecutter.worker != "none" %}
    require_backing_service,
{%- endif %}
    service_environment,
)
from .processes import ServiceProcess, {% if cookiecutter.database != "none" %}StartService, {% endif %}descendants, wait_for

PACKAGE = "{{ cookiecutter.package_name }}"
COMMAND = "{{ cookiecutter.project_slug }}"
SOURCE = PROJECT_ROOT / "src" / PACKAGE
RELEASE = "factors-7f3a"
# What each web worker process logs as it stops, after closing what the app opened.
APP_STOPPED = "{% if cookiecutter.database != 'none' %}database pool closed{% else %}application stopped{% endif %}"
# The process types `honcho start` runs, two of each.
SCALED = {{ '["web", "worker"]' if cookiecutter.worker != "none" else '["web"]' }}
# Seconds a scenario waits for processes it starts together (a bound, not a speed check).
SCENARIO_TIMEOUT = 90
# honcho's line for a process that ended, with its exit status (a signal's as -N).
STOPPED = re.compile(r"(\S+) stopped \(rc=(-?\d+)\)")
# honcho's own exit status once SIGTERM stopped it: 128 + 15, as a shell's.
HONCHO_STOPPED_BY_SIGTERM = 143
# Where the server names the address it bound, once it listens.
LISTENING = re.compile(r"0\.0\.0\.0:(\d+)")
{%- if cookiecutter.database != "none" %}
ITEMS = [
    {"name": "hex bolt", "description": "M6, zinc plated"},
    {"name": "washer"},
    {"name": "spring lock washer", "description": "M6"},
    {"name": "nut", "description": "M6 nylon insert"},
]
# Words in the names and descriptions of ITEMS.
WORDS = 2 + 3 + 1 + 3 + 1 + 1 + 3
{%- elif cookiecutter.worker != "none" %}
# What a report is queued with: a text, whose lines and words it counts.
REPORT_TEXT = "hex bolt\nspring lock washer\nnut"
LINES, WORDS = 3, 2 + 3 + 1
{%- endif %}


def run(*command: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command, env=env, cwd=cwd, capture_output=True, text=True, timeout=120, check=False
    )


def config_of(env: dict[str, str], cwd: Path) -> dict[str, str]:
    """What `check-config` prints in `cwd` with `env`: variable -> shown value."""
    result = run(COMMAND, "check-config", env=env, cwd=cwd)
    assert result.returncode == 0, result.stderr
    return dict(line.split("=", 1) for line in result.stdout.splitlines())


def tree(root: Path) -> list[str]:
    """Every path below `root`, relative to it."""
    return sorted(path.relative_to(root).as_posix() for path in root.rglob("*"))


def log_files(root: Path) -> set[Path]:
    return {path for path in root.rglob("*.log") if ".venv" not in path.parts}


def uv_executable() -> str:
    """uv: the one running these tests (`uv run` sets $UV), else the one on PATH."""
    uv = os.environ.get("UV") or shutil.which("uv")
    if not uv:
        pytest.skip("uv is not installed: it builds the clean environment")
    return uv


# I. Codebase


@pytest.mark.processes
def test_i_git_tracks_no_secret_and_no_generated_file(tmp_path: Path) -> None:
    if not shutil.which("git"):
        pytest.skip("git is not installed")
    project = tmp_path / "project"
    shutil.copytree(PROJECT_ROOT, project, ignore=shutil.ignore_patterns(".venv", ".git"))
    secret = secrets.token_hex(16)
    (project / ".env").write_text(f"LOG_LEVEL=DEBUG\nRELEASE_ID={secret}\n")
    env = {key: value for key, value in os.environ.items() if key not in SETTING_NAMES}
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env["PATH"]])
    # What working on the project leaves behind: bytecode, tool caches, build output, data.
    generators = [
        [sys.executable, "-m", "compileall", "-q", "src", "tests"],
        [str(Path(sys.executable).with_name("ruff")), "check", "--quiet", "src"],
        [uv_executable(), "build", "--offline", "--quiet", "--wheel"],
{%- if cookiecutter.database != "none" %}
        [COMMAND, "migrate"],
{%- endif %}
    ]
{%- if cookiecutter.database == "postgresql" %}
    # The default database is PostgreSQL; a local SQLite file is the data to keep out.
    env["DATABASE_URL"] = "sqlite:///.data/local.sqlite3"
{%- endif %}
    for command in generators:
        result = run(*command, env=env, cwd=project)
        assert result.returncode == 0, result.stdout + result.stderr
    generated = [
        ".env",
        "src/**/__pycache__/*.pyc",
        ".ruff_cache/**",
        "dist/*.whl",
{%- if cookiecutter.database != "none" %}
        ".data/*.sqlite3",
{%- endif %}
    ]
    for pattern in generated:
        assert list(project.glob(pattern)), f"nothing made {pattern}: the test proves nothing"
    made = {
        path.relative_to(project).as_posix()
        for pattern in generated
        for path in project.glob(pattern)
        if path.is_file()
    }

    assert run("git", "init", "-q", env=env, cwd=project).returncode == 0
    assert run("git", "add", "-A", env=env, cwd=project).returncode == 0
    tracked = set(run("git", "ls-files", env=env, cwd=project).stdout.splitlines())
    assert {".env.example", "pyproject.toml", "Procfile"} <= tracked
    assert made & tracked == set()
    assert {path for path in tracked if secret.encode() in (project / path).read_bytes()} == set()
    assert {path for path in tracked if "cache" in path or path.endswith(".pyc")} == set()


# II. Dependencies


class ImportCollector(ast.NodeVisitor):
    """The top-level modules a module imports at run time (not under `if TYPE_CHECKING:`)."""

    def __init__(self) -> None:
        self.modules: set[str] = set()

    def visit_If(self, node: ast.If) -> None:
        if not (isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING"):
            self.generic_visit(node)

    def visit_Import(self, node: ast.Import) -> None:
        self.modules |= {alias.name.partition(".")[0] for alias in node.names}

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.module and node.level == 0:
            self.modules.add(node.module.partition(".")[0])


def imported_modules(root: Path) -> set[str]:
    """What the code under `root` imports, its own package and the stdlib excepted."""
    collector = ImportCollector()
    for path in root.rglob("*.py"):
        collector.visit(ast.parse(path.read_text()))
    return collector.modules - set(sys.stdlib_module_names) - {PACKAGE, "__future__"}


def declared_distributions() -> set[str]:
    project = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["project"]
    return {canonicalize_name(Requirement(line).name) for line in project["dependencies"]}


def test_ii_every_import_of_the_code_is_a_declared_dependency() -> None:
    imported = imported_modules(SOURCE)
    assert {"pydantic_settings"} <= imported, "the scan finds the imports"
    providers = packages_distributions()
    undeclared = {
        module: providers.get(module, ["(not installed)"])
        for module in imported
        if not {canonicalize_name(dist) for dist in providers.get(module, [])}
        & declared_distributions()
    }
    assert undeclared == {}, "imported but not in [project.dependencies]"


@pytest.mark.processes
def test_ii_service_installs_and_serves_from_a_clean_environment(tmp_path: Path) -> None:
    uv = uv_executable()
    venv = tmp_path / "venv"
    # The locked runtime dependencies only, from the uv cache: no index, no dev tools.
    env = {key: value for key, value in os.environ.items() if key not in SETTING_NAMES}
    env |= {"UV_OFFLINE": "1", "UV_NO_PROGRESS": "1", "UV_PROJECT_ENVIRONMENT": str(venv)}
    env.pop("VIRTUAL_ENV", None)
    install = ["sync", "--frozen", "--no-dev", "--no-editable", "--python", sys.executable]
    result = run(uv, *install, env=env, cwd=PROJECT_ROOT)
    assert result.returncode == 0, result.stderr
    python = venv / "bin" / "python"
    assert run(str(python), "-c", "import pytest", env=env, cwd=tmp_path).returncode != 0

    env["PATH"] = os.pathsep.join([str(venv / "bin"), "/usr/bin", "/bin"])
    env["PORT"] = str(free_port())
{%- if cookiecutter.database != "none" %}
    env["DATABASE_URL"] = f"sqlite:///{tmp_path / 'clean.sqlite3'}"
{%- endif %}
    web = ServiceProcess(f"{venv / 'bin' / COMMAND} serve", env=env, cwd=tmp_path)
    try:
        web.wait_until_serving()
        assert httpx.get(f"{web.url}/healthz").json()["status"] == "ok"
        assert web.stop() == 0, web.output()
    finally:
        web.kill()


# III. Config


def string_constants(tree_: ast.AST) -> Iterator[ast.Constant]:
    """Every string literal that is not a docstring."""
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree_)
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
        and node.body
        and isinstance(node.body[0], ast.Expr)
    }
    for node in ast.walk(tree_):
        if (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and id(node) not in docstrings
        ):
            yield node


# A URL, a host name or address, or a secret-looking assignment.
CONFIG_LIKE = re.compile(
    r"[a-z][a-z0-9+]*://(?!sys\.)|localhost|\b\d{1,3}(\.\d{1,3}){3}\b", re.IGNORECASE
)
SECRET_NAME = re.compile(r"password|secret|token|api_?key", re.IGNORECASE)
# Binding every interface is how a web process takes its port; the port is $PORT.
ALLOWED = {"0.0.0.0", "0.0.0.0:"}


def test_iii_code_holds_no_config_outside_the_settings() -> None:
    found: list[str] = []
    for path in sorted(SOURCE.rglob("*.py")):
        if path.name == "settings.py":
            continue  # the one place for defaults, all overridable
        module = ast.parse(path.read_text())
        where = path.relative_to(PROJECT_ROOT)
        for constant in string_constants(module):
            if constant.value not in ALLOWED and CONFIG_LIKE.search(str(constant.value)):
                found.append(f"{where}:{constant.lineno}: {constant.value!r}")
        for node in ast.walk(module):
            if (
                isinstance(node, ast.keyword)
                and node.arg in {"port", "host"}
                and isinstance(node.value, ast.Constant)
                and node.value.value not in ALLOWED
            ):
                found.append(f"{where}:{node.value.lineno}: {node.arg}={node.value.value!r}")
            if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant):
                names = [t.id for t in node.targets if isinstance(t, ast.Name)]
                if any(SECRET_NAME.search(name) for name in names):
                    found.append(f"{where}:{node.lineno}: {names} = a literal")
    assert found == []


@pytest.mark.processes
def test_iii_environment_beats_dotenv_in_the_real_process(tmp_path: Path) -> None:
    env = service_environment(load_settings({ {%- if cookiecutter.database == "postgresql" %}"DATABASE_URL": "sqlite:///x.sqlite3"{% endif %}}))
    del env["PORT"]
    dotenv = {"PORT": "9123", "LOG_LEVEL": "DEBUG", "RELEASE_ID": "from-dotenv"}
    (tmp_path / ".env").write_text("".join(f"{name}={value}\n" for name, value in dotenv.items()))
    config = config_of({**env, "LOG_LEVEL": "ERROR", "RELEASE_ID": RELEASE}, tmp_path)
    assert (config["PORT"], config["LOG_LEVEL"], config["RELEASE_ID"]) == ("9123", "ERROR", RELEASE)


# IV. Backing services
{%- if cookiecutter.database != "none" %}


@pytest.fixture(params=["sqlite", "postgresql"])
def attached_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database of either engine: the service is told only its URL."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'attached.sqlite3'}"
        return
{%- if cookiecutter.database == "sqlite" %}
    server_url = os.environ.get("TEST_DATABASE_URL")
    if not server_url:
        pytest.skip("PostgreSQL is optional for this project; set TEST_DATABASE_URL")
{%- else %}
    server_url = require_backing_service("TEST_DATABASE_URL")
{%- endif %}
    yield from create_throwaway_database(server_url)


@pytest.mark.processes
def test_iv_same_code_serves_either_database_named_by_database_url(
    procfile: dict[str, str],
    start_service: StartService,
    service_env: dict[str, str],
    attached_database: str,
) -> None:
    """A new database is attached by its URL; a one-off `migrate` (XII) readies it for web."""
    env = {**service_env, "DATABASE_URL": attached_database}
    web = start_service(procfile["web"], env)
    web.wait_until_serving()
    assert httpx.post(f"{web.url}/items", json=ITEMS[0]).status_code >= 500, "no tables yet"
    migrate = start_service(f"{COMMAND} migrate", env)
    assert migrate.wait() == 0, migrate.output()
    created = httpx.post(f"{web.url}/items", json=ITEMS[0])
    assert created.status_code == 201, created.text
    assert httpx.get(f"{web.url}/items/{created.json()['id']}").json() == created.json()
    assert httpx.get(f"{web.url}/readyz").json()["checks"]["database"] == "ok"
    assert web.stop() == 0, web.output()
{%- elif cookiecutter.worker != "none" %}


@pytest.mark.processes
@pytest.mark.usefixtures("redis_url")
def test_iv_service_attaches_only_the_redis_named_by_redis_url(web: ServiceProcess) -> None:
    assert httpx.get(f"{web.url}/readyz").json() == {"status": "ok", "checks": {"broker": "ok"}}
    assert web.stop() == 0
{%- else %}


@pytest.mark.processes
def test_iv_service_attaches_no_backing_service(web: ServiceProcess) -> None:
    assert httpx.get(f"{web.url}/readyz").json() == {"status": "ok", "checks": {}}
    assert web.stop() == 0
{%- endif %}


# V to VII, IX and XI: one run of every process type, in a working directory it may not write.


@dataclass
class FinishedRun:
    """Release, web{% if cookiecutter.worker != "none" %} and worker{% endif %} run and stopped; what they answered and left behind."""

    env: dict[str, str]
    workdir: Path
    home: Path
    health: dict[str, Any]
    processes: dict[str, ServiceProcess]
    new_log_files: set[Path]


def own_settings(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """The tests' settings{% if cookiecutter.database != "none" %}, with a fresh database{% endif %}{% if cookiecutter.worker != "none" %} and a queue of their own{% endif %}{% if cookiecutter.database != "none" %}, removed afterwards{% endif %}."""
{%- if cookiecutter.worker != "none" %}
    require_backing_service("TEST_REDIS_URL")
{%- endif %}
{%- if cookiecutter.database != "none" %}
    for database_url in fresh_database(tmp_path_factory):
        settings = load_settings({"DATABASE_URL": database_url{% if cookiecutter.worker != "none" %}, **broker_settings(){% endif %}})
        yield settings
{%- if cookiecutter.worker != "none" %}
        clean_queue(settings.redis_url.get_secret_value(), settings.worker_queue)
{%- endif %}
{%- elif cookiecutter.worker != "none" %}
    settings = load_settings(broker_settings())
    yield settings
    clean_queue(settings.redis_url.get_secret_value(), settings.worker_queue)
{%- else %}
    yield load_settings({})
{%- endif %}


@pytest.fixture(scope="module")
def run_settings(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    yield from own_settings(tmp_path_factory)


@pytest.fixture(scope="module")
def finished_run(
    tmp_path_factory: pytest.TempPathFactory, run_settings: Settings
) -> Iterator[FinishedRun]:
    workdir, home = tmp_path_factory.mktemp("workdir"), tmp_path_factory.mktemp("home")
    env = {**service_environment(run_settings), "RELEASE_ID": RELEASE, "HOME": str(home)}
    procfile = read_procfile()
    logs_before = log_files(PROJECT_ROOT)
    workdir.chmod(0o555)  # read-only (unless root: then the empty tree is the check)
    processes: dict[str, ServiceProcess] = {}

    def start(name: str) -> ServiceProcess:
        processes[name] = ServiceProcess(procfile[name], env=env, cwd=workdir)
        return processes[name]

    try:
{%- if cookiecutter.database != "none" %}
        release = start("release")
        assert release.wait() == 0, release.output()
{%- endif %}
        web = start("web")
{%- if cookiecutter.worker != "none" %}
        worker = start("worker")
{%- endif %}
        web.wait_until_serving()
        health = httpx.get(f"{web.url}/healthz", headers={"X-Request-ID": "factors"}).json()
{%- if cookiecutter.database != "none" %}
        for item in ITEMS:
            created = httpx.post(f"{web.url}/items", json=item)
            assert created.status_code == 201, created.text
            assert httpx.get(f"{web.url}/items/{created.json()['id']}").status_code == 200
{%- endif %}
{%- if cookiecutter.worker != "none" %}
        report = queue_report(web.url)
        wait_for(partial(report_is_done, web.url, report["id"]), "done", SCENARIO_TIMEOUT)
        worker.stop()
{%- endif %}
        web.stop()
        yield FinishedRun(
            env=env,
            workdir=workdir,
            home=home,
            health=health,
            processes=processes,
            new_log_files=log_files(PROJECT_ROOT) - logs_before,
        )
    finally:
        workdir.chmod(0o755)
        for process in processes.values():
            process.kill()
{%- if cookiecutter.worker != "none" %}


def queue_report(base_url: str) -> dict[str, Any]:
    response = httpx.post(f"{base_url}/reports"{% if cookiecutter.database == "none" %}, json={"text": REPORT_TEXT}{% endif %})
    assert response.status_code == 202, response.text
    report: dict[str, Any] = response.json()
    return report


def report_is_done(base_url: str, report_id: int) -> dict[str, Any] | None:
    report: dict[str, Any] = httpx.get(f"{base_url}/reports/{report_id}").json()
    return report if report["status"] == "done" else None
{%- endif %}


@pytest.mark.processes
def test_v_release_id_is_in_healthz_and_on_every_log_line(finished_run: FinishedRun) -> None:
    assert finished_run.health == {"status": "ok", "release": RELEASE}
    for name, process in finished_run.processes.items():
        releases = {event.get("release") for event in process.json_lines()}
        assert releases == {RELEASE}, name
        loggers = {event["logger"] for event in process.json_lines()}
        assert any(not logger.startswith(PACKAGE) for logger in loggers), f"{name}: libraries too"


@pytest.mark.processes
@pytest.mark.parametrize(
    ("platform", "expected"),
    [
        ({"SOURCE_VERSION": "2f9c1e7"}, "2f9c1e7"),
        ({"K_REVISION": "svc-00042-xoz", "GIT_COMMIT": "later"}, "svc-00042-xoz"),
        ({"SOURCE_VERSION": "2f9c1e7", "RELEASE_ID": "v7"}, "v7"),
    ],
    ids=["heroku-build", "first-platform-wins", "release-id-wins"],
)
def test_v_release_id_falls_back_to_the_platform(
    service_env: dict[str, str], tmp_path: Path, platform: dict[str, str], expected: str
) -> None:
    assert config_of({**service_env, **platform}, tmp_path)["RELEASE_ID"] == expected


@pytest.mark.processes
def test_vi_processes_write_nothing_outside_the_temp_dir(finished_run: FinishedRun) -> None:
    exit_codes = {name: p.process.returncode for name, p in finished_run.processes.items()}
    assert set(exit_codes.values()) == {0}, exit_codes
    assert tree(finished_run.workdir) == [], "the working directory"
    assert tree(finished_run.home) == [], "the home directory"


@pytest.mark.processes
def test_vii_web_binds_the_port_in_port(finished_run: FinishedRun) -> None:
    web = finished_run.processes["web"]
    assert web.port == int(finished_run.env["PORT"])
    assert finished_run.health["status"] == "ok"  # answered on that port
    bound = {
        int(match[1]) for event in web.json_lines() for match in LISTENING.finditer(event["event"])
    }
    assert bound == {web.port}


@pytest.mark.processes
def test_xi_every_line_is_one_json_event_on_stdout(finished_run: FinishedRun) -> None:
    for name, process in finished_run.processes.items():
        events = process.json_lines()
        assert events, name
        assert all({"timestamp", "level", "logger", "event", "release"} <= set(e) for e in events)
        assert process.stderr == [], name
    web_events = finished_run.processes["web"].json_lines()
    assert any(event.get("request_id") == "factors" for event in web_events)
    assert finished_run.new_log_files == set()


# VI and VIII: the process types scaled out under a Procfile runner.


@dataclass
class ScaledRun:
    """`honcho start` with two of each process type, stopped with SIGTERM."""

    ports: list[int]
    lines: dict[str, list[str]]
    children: list[int]
    exit_code: int
{%- if cookiecutter.database != "none" %}
    read_across: list[tuple[int, dict[str, Any], dict[str, Any]]] = field(default_factory=list)
{%- endif %}
{%- if cookiecutter.worker != "none" %}
    reports: list[dict[str, Any]] = field(default_factory=list)
{%- endif %}


def two_free_ports() -> int:
    """A port whose next one is free too: honcho gives web.1 and web.2 base and base + 1.

    Taken below the ephemeral range, from which the kernel hands ports to other tests'
    servers and clients: one could take base + 1 between this check and honcho's start.
    """
    ephemeral = Path("/proc/sys/net/ipv4/ip_local_port_range")
    first_ephemeral = int(ephemeral.read_text().split()[0]) if ephemeral.exists() else 32768
    while True:
        base = secrets.choice(range(first_ephemeral // 2, first_ephemeral - 1))
        try:
            with (
                socket.create_server(("127.0.0.1", base)),
                socket.create_server(("127.0.0.1", base + 1)),
            ):
                return base
        except OSError:
            continue


@pytest.fixture(scope="module")
def scaled_settings(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    yield from own_settings(tmp_path_factory)


@pytest.fixture(scope="module")
def scaled_run(
    tmp_path_factory: pytest.TempPathFactory, scaled_settings: Settings
) -> Iterator[ScaledRun]:
    honcho = Path(sys.executable).with_name("honcho")
    # An empty app root: honcho would load a .env there over the environment.
    root = tmp_path_factory.mktemp("honcho")
    env = {**service_environment(scaled_settings), "RELEASE_ID": RELEASE}
    base = two_free_ports()
    env["PORT"] = str(base)
{%- if cookiecutter.database != "none" %}
    release = ServiceProcess(read_procfile()["release"], env=env, cwd=root)
    assert release.wait() == 0, release.output()
{%- endif %}
    command = [
        f"{honcho} start --no-colour -f {PROJECT_ROOT / 'Procfile'} -d {root} -p {base}",
        "-c " + ",".join(f"{name}=2" for name in SCALED),
        *SCALED,
    ]
    runner = ServiceProcess(" ".join(command), env=env, cwd=root)
    run = ScaledRun(ports=[base, base + 1], lines={}, children=[], exit_code=-1)
    ports = run.ports
    try:
        for port in ports:
            awaiting(runner, partial(serving, port, runner), f"serving on {port}")
{%- if cookiecutter.database != "none" %}
        for index, item in enumerate(ITEMS):
            writer, reader = ports[index % 2], ports[(index + 1) % 2]
            created = httpx.post(f"http://127.0.0.1:{writer}/items", json=item).json()
            read = httpx.get(f"http://127.0.0.1:{reader}/items/{created['id']}").json()
            run.read_across.append((reader, created, read))
{%- endif %}
{%- if cookiecutter.worker != "none" %}
        queued = [queue_report(f"http://127.0.0.1:{port}") for port in ports]
        for port, report in zip(reversed(ports), queued, strict=True):
            url = f"http://127.0.0.1:{port}"
            run.reports.append(awaiting(runner, partial(report_is_done, url, report["id"]), "done"))
{%- endif %}
        run.children = descendants(runner.process.pid)
        run.exit_code = runner.stop(timeout=SCENARIO_TIMEOUT)
        for line in runner.stdout:
            if not line.strip():
                continue  # seen once under load: a blank line, which carries no event
            name, _, text = line.partition(" | ")
            # A line without honcho's prefix is kept under its own name, for the asserts to show.
            run.lines.setdefault((name.split() or ["(no prefix)"])[-1], []).append(text)
        yield run
    finally:
        run.children += descendants(runner.process.pid)
        runner.kill()
        for pid in filter(running, run.children):
            os.kill(pid, signal.SIGKILL)


def awaiting(runner: ServiceProcess, condition: Callable[[], Any], what: str) -> Any:
    """`wait_for`, with the runner's output when it times out."""
    try:
        return wait_for(condition, what, timeout=SCENARIO_TIMEOUT)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{runner.output()}") from None


def serving(port: int, runner: ServiceProcess) -> bool:
    if runner.process.poll() is not None:
        raise AssertionError(f"honcho exited: {runner.output()}")
    try:
        return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200
    except httpx.TransportError:
        return False
{%- if cookiecutter.database != "none" %}


@pytest.mark.processes
def test_vi_web_processes_share_nothing_but_the_database(scaled_run: ScaledRun) -> None:
    assert len(scaled_run.read_across) == len(ITEMS)
    for _reader, created, read in scaled_run.read_across:
        assert read == created
    assert {reader for reader, _, _ in scaled_run.read_across} == set(scaled_run.ports)
{%- endif %}


@pytest.mark.processes
def test_viii_process_types_scale_independently(scaled_run: ScaledRun) -> None:
    """Two of each type, each on its own port; SIGTERM to honcho stops them all cleanly.

    honcho runs each command under `sh -c` and signals the whole group: the
    Procfile's `exec` makes the shell the process, so each `stopped (rc=N)`
    line is the process's own status. honcho's own is 143 after SIGTERM,
    whatever its processes did: a shell's way of saying it was terminated.
    """
    processes = [f"{name}.{index}" for name in SCALED for index in (1, 2)]
    assert sorted(name for name in scaled_run.lines if name != "system") == processes
    matches = (STOPPED.fullmatch(line) for line in scaled_run.lines["system"])
    stopped = {match[1]: match[2] for match in matches if match}
    assert stopped == dict.fromkeys(processes, "0"), scaled_run.lines["system"]
    assert scaled_run.exit_code == HONCHO_STOPPED_BY_SIGTERM
    for name in processes:
        events = [json.loads(line) for line in scaled_run.lines[name]]
        assert {event["release"] for event in events} == {RELEASE}, name
        assert [event for event in events if event["level"] in {"error", "critical"}] == []
        if name.startswith("web"):
            assert APP_STOPPED in {event["event"] for event in events}, f"{name} drained"
    assert [pid for pid in scaled_run.children if running(pid)] == [], "honcho's children exited"
{%- if cookiecutter.worker != "none" %}
{%- if cookiecutter.database != "none" %}
    counts = [(report["item_count"], report["word_count"]) for report in scaled_run.reports]
    assert counts == [(len(ITEMS), WORDS)] * 2
{%- else %}
    counts = [(report["line_count"], report["word_count"]) for report in scaled_run.reports]
    assert counts == [(LINES, WORDS)] * 2
{%- endif %}
{%- endif %}


def running(pid: int) -> bool:
    """Whether the process exists and is not a zombie waiting to be reaped."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0] != "Z"
    except OSError:
        return False


# X. Dev/prod parity


def test_x_tests_start_the_code_and_environment_under_test(service_env: dict[str, str]) -> None:
    script = shutil.which(COMMAND, path=service_env["PATH"])
    assert script is not None
    assert Path(script).parent == Path(sys.executable).parent
    spec = find_spec(PACKAGE)
    assert spec is not None
    assert spec.origin is not None
    assert Path(spec.origin).is_relative_to(SOURCE)
{%- if cookiecutter.database != "none" %}


@pytest.mark.processes
def test_x_tests_run_on_the_engine_of_test_database_url(
    settings: Settings, service_env: dict[str, str], tmp_path: Path
) -> None:
    """The engine the tests' processes use is the one TEST_DATABASE_URL names{% if cookiecutter.database == "sqlite" %}, else SQLite{% endif %}."""
{%- if cookiecutter.database == "sqlite" %}
    given = os.environ.get("TEST_DATABASE_URL", "sqlite://")
{%- else %}
    given = os.environ["TEST_DATABASE_URL"]  # the settings fixture skips without it
{%- endif %}
    engine = engine_url(given).get_backend_name()
    assert engine_url(settings.database_url.get_secret_value()).get_backend_name() == engine
    shown = config_of(service_env, tmp_path)["DATABASE_URL"]
    assert engine_url(shown).get_backend_name() == engine
{%- endif %}


# XII. Admin processes


@pytest.mark.processes
def test_xii_admin_commands_run_the_web_process_code_and_config(
    finished_run: FinishedRun,
) -> None:
    commands = read_procfile().values()
    assert {command.split()[0] for command in commands} == {COMMAND}
    config = config_of(finished_run.env, finished_run.workdir)
    assert config["RELEASE_ID"] == finished_run.health["release"]
{%- if cookiecutter.database != "none" %}
    served = load_settings({"DATABASE_URL": finished_run.env["DATABASE_URL"]})
    assert config["DATABASE_URL"] == display_value(served.database_url)
{%- endif %}
