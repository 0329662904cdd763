"""What is measured: the baked service, the bare baselines and the bake floor.

Each framework is one entry of `FRAMEWORKS`: the answer that bakes it and the
command that serves its bare baseline. The bare app runs in the baked
project's environment, so both sides use the same library versions.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from .servers import BenchError, Server, free_port

BENCHMARKS = Path(__file__).resolve().parent
TEMPLATE = BENCHMARKS.parent
APPS = BENCHMARKS / "apps"
FLOOR_TEMPLATE = BENCHMARKS / "floor"
# The settings a service reads; the harness sets them, the caller's shell must not leak in.
SERVICE_VARIABLES = ("PORT", "WEB_CONCURRENCY", "DATABASE_URL", "LOG_LEVEL", "LOG_FORMAT")
# The observability options' settings (OpenTelemetry's SDK reads OTEL_* itself): none leak in.
SERVICE_PREFIXES = ("OTEL_", "SENTRY_")
# What a caller's shell may set that a deployed service does not have: another environment,
# and no bytecode. A deployed service imports from .pyc files (the Dockerfile compiles them);
# without them every start compiles the sources, SQLAlchemy's above all.
NOT_DEPLOYED = ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONDONTWRITEBYTECODE")


def dev_tool(name: str) -> str:
    """A tool installed beside this interpreter (the template's dev tools), else from PATH."""
    path = Path(sys.executable).with_name(name)
    return str(path) if path.exists() else name


# (app module in benchmarks/apps, bin directory of the environment, port, worker count) -> argv
BareCommand = Callable[[str, Path, int, int], list[str]]


def uvicorn_bare(module: str, bin_dir: Path, port: int, workers: int) -> list[str]:
    # uvicorn's defaults otherwise: its access log on, loop and http "auto" (uvloop, httptools).
    return [
        str(bin_dir / "uvicorn"),
        "--app-dir",
        str(APPS),
        f"{module}:app",
        *("--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)),
    ]


# The service's gunicorn worker class and its threads per worker (see its server.py).
GUNICORN_WORKER_CLASS = "gthread"
GUNICORN_THREADS = 4


def gunicorn_bare(module: str, bin_dir: Path, port: int, workers: int) -> list[str]:
    # The service's worker class; gunicorn's access log is off by default: on, to stdout,
    # as the service writes its own.
    return [
        str(bin_dir / "gunicorn"),
        *("--chdir", str(APPS)),
        *("--bind", f"127.0.0.1:{port}", "--workers", str(workers)),
        *("--worker-class", GUNICORN_WORKER_CLASS, "--threads", str(GUNICORN_THREADS)),
        *("--access-logfile", "-"),
        f"{module}:app",
    ]


@dataclass(frozen=True)
class Framework:
    """A web framework the template offers and its bare hello-world baseline."""

    name: str
    server: str
    bare_command: BareCommand

    @property
    def bare_name(self) -> str:
        return f"bare {self.name} ({self.server})"

    def with_database_name(self, label: str) -> str:
        return f"bare {self.name} + SQLAlchemy ({self.server}), {label}"


FRAMEWORKS = {
    framework.name: framework
    for framework in [
        Framework("fastapi", "uvicorn", uvicorn_bare),
        Framework("flask", "gunicorn", gunicorn_bare),
    ]
}


@dataclass(frozen=True)
class Workspace:
    """A scratch directory for one harness run, with cookiecutter kept inside it."""

    root: Path

    def cookiecutter_env(self) -> dict[str, str]:
        """Replay files and rendered hook scripts stay here, not in $HOME or the system temp dir."""
        config = self.root / "cookiecutter.yaml"
        if not config.exists():
            config.write_text(
                f'replay_dir: "{self.root / "replay"}"\n'
                f'cookiecutters_dir: "{self.root / "cookiecutters"}"\n'
            )
        (self.root / "hook-scripts").mkdir(exist_ok=True)
        # As for the services: the warm-up bake writes cookiecutter's bytecode. Without it
        # every timed bake compiles cookiecutter, Jinja and rich, and so does the floor.
        return {
            **{key: value for key, value in os.environ.items() if key != "PYTHONDONTWRITEBYTECODE"},
            "COOKIECUTTER_CONFIG": str(config),
            "TMPDIR": str(self.root / "hook-scripts"),
        }

    def fresh_dir(self, name: str) -> Path:
        """A new, empty directory whose name starts with `name`."""
        index = sum(1 for _ in self.root.glob(f"{name}-*"))
        path = self.root / f"{name}-{index}"
        path.mkdir()
        return path


@dataclass(frozen=True)
class Project:
    """A baked, installed service."""

    root: Path
    slug: str
    package: str

    @property
    def bin_dir(self) -> Path:
        return self.root / ".venv" / "bin"

    def serve_command(self) -> list[str]:
        """The Procfile's web process."""
        return [str(self.bin_dir / self.slug), "serve"]

    def env(self, **settings: str) -> dict[str, str]:
        """The environment its commands run in: the caller's, minus other envs and settings."""
        env = {
            key: value
            for key, value in os.environ.items()
            if key not in (*NOT_DEPLOYED, *SERVICE_VARIABLES)
            and not key.startswith(SERVICE_PREFIXES)
        }
        env["UV_NO_PROGRESS"] = "1"
        return {**env, **settings}


def run_checked(command: list[str], *, cwd: Path, env: dict[str, str], timeout: float) -> None:
    """Run a setup step; a failure stops the harness with the step's output."""
    result = subprocess.run(
        command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    if result.returncode != 0:
        raise BenchError(
            f"`{' '.join(command)}` failed ({result.returncode}):\n{result.stdout}{result.stderr}"
        )


def bake_service(workspace: Workspace, framework: Framework, *answers: str) -> Project:
    """Bake the default answers for `framework` and `answers` ("option=value"), install them."""
    output = workspace.fresh_dir(f"service-{framework.name}")
    run_checked(
        [
            dev_tool("cookiecutter"),
            "--no-input",
            "--output-dir",
            str(output),
            str(TEMPLATE),
            f"web_framework={framework.name}",
            *answers,
        ],
        cwd=workspace.root,
        env=workspace.cookiecutter_env(),
        timeout=120,
    )
    project = Project(output / "my-service", slug="my-service", package="my_service")
    run_checked(
        [dev_tool("uv"), "sync", "--quiet", "--compile-bytecode", "--python", sys.executable],
        cwd=project.root,
        env=project.env(),
        timeout=600,
    )
    return project


def sqlite_url(project: Project) -> str:
    return f"sqlite:///{project.root / '.data' / 'bench.sqlite3'}"


def migrate(project: Project, database_url: str) -> None:
    run_checked(
        [str(project.bin_dir / project.slug), "migrate"],
        cwd=project.root,
        env=project.env(DATABASE_URL=database_url),
        timeout=120,
    )


@dataclass(frozen=True)
class Subject:
    """A web server to measure, the service or a baseline, started fresh on a free port."""

    name: str
    command: Callable[[int, int], list[str]]  # (port, workers) -> argv
    env: dict[str, str]
    workdir: Path

    def start(self, workers: int = 1) -> Server:
        port = free_port()
        env = {**self.env, "PORT": str(port), "WEB_CONCURRENCY": str(workers)}
        return Server(self.command(port, workers), env=env, cwd=self.workdir, port=port)


def service(project: Project, framework: Framework, database_url: str, label: str) -> Subject:
    """The service as its Procfile runs it, logging JSON to stdout at INFO."""
    return Subject(
        name=f"{framework.name} service, {label}",
        command=lambda _port, _workers: project.serve_command(),
        env=project.env(DATABASE_URL=database_url, LOG_LEVEL="INFO", LOG_FORMAT="json"),
        workdir=project.root,
    )


def bare(project: Project, framework: Framework) -> Subject:
    """The framework's hello-world under the same server, in the service's environment."""
    return bare_app(project, framework, "hello", framework.bare_name, project.env())


def bare_with_database(
    project: Project, framework: Framework, database_url: str, label: str
) -> Subject:
    """The hello-world plus the service's read of one item and its readiness query.

    Written plainly with SQLAlchemy's ORM, against the same table: against the plain
    hello-world, that library's share of the service's start and memory; against the
    service, the template's own share.
    """
    env = project.env(DATABASE_URL=sqlalchemy_url(database_url))
    return bare_app(project, framework, "sqlalchemy", framework.with_database_name(label), env)


def bare_app(
    project: Project, framework: Framework, app: str, name: str, env: dict[str, str]
) -> Subject:
    return Subject(
        name=name,
        command=lambda port, workers: framework.bare_command(
            f"{framework.name}_{app}", project.bin_dir, port, workers
        ),
        env=env,
        workdir=project.root,
    )


def sqlalchemy_url(database_url: str) -> str:
    """The URL as SQLAlchemy takes it: PostgreSQL through psycopg 3, the driver installed."""
    scheme, separator, rest = database_url.partition("://")
    if scheme in ("postgres", "postgresql"):
        return f"postgresql+psycopg{separator}{rest}"
    return database_url


# Run by the project's interpreter, which has SQLAlchemy and psycopg: the template's has not.
ADMIN_SCRIPT = """\
import sys
from sqlalchemy import create_engine, text
engine = create_engine(sys.argv[1], isolation_level="AUTOCOMMIT")
with engine.connect() as connection:
    connection.execute(text(sys.argv[2]))
"""


@contextmanager
def throwaway_database(project: Project, server_url: str) -> Iterator[str]:
    """A new database on the PostgreSQL server of `server_url`, dropped afterwards.

    The harness migrates it and writes its row there, never in the database the URL names,
    which tests and other users share.
    """
    name = f"bench_{uuid.uuid4().hex[:12]}"

    def admin(sql: str) -> None:
        command = [str(project.bin_dir / "python"), "-c", ADMIN_SCRIPT]
        run_checked(
            [*command, sqlalchemy_url(server_url), sql],
            cwd=project.root,
            env=project.env(),
            timeout=60,
        )

    admin(f'CREATE DATABASE "{name}"')
    try:
        yield f"{server_url.rsplit('/', 1)[0]}/{name}"
    finally:
        admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
