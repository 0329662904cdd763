"""Fixtures shared by the test suite.

Tests never read the developer's `.env` or environment: each runs in a temp
directory with the service's variables removed.
{%- if cookiecutter.database != "none" %} Database tests use a fresh
database: a throwaway one on the PostgreSQL server named by TEST_DATABASE_URL
when it is set{% if cookiecutter.database == "sqlite" %}, otherwise a temp SQLite file{% endif %}.
{%- endif %}
{%- if cookiecutter.worker != "none" %} Worker tests use the Redis named by TEST_REDIS_URL,
each test with a queue of its own, so test runs sharing one Redis never meet.
{%- endif %}
"""

from __future__ import annotations

import os
{%- if cookiecutter.worker == "celery" %}
import re
{%- endif %}
{%- if cookiecutter.worker != "none" %}
import shutil
{%- endif %}
import socket
import statistics
{%- if cookiecutter.worker != "none" %}
import subprocess
{%- endif %}
import sys
{%- if cookiecutter.worker != "none" %}
import tempfile
{%- endif %}
{%- if cookiecutter.database != "none" or cookiecutter.worker != "none" %}
import uuid
{%- endif %}
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import NoReturn

import httpx2 as httpx
import pytest
{%- if cookiecutter.web_framework == "fastapi" %}
from fastapi.testclient import TestClient
{%- else %}
from flask import Flask
{%- endif %}
{%- if cookiecutter.worker != "none" %}
from redis import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
{%- endif %}
{%- if cookiecutter.worker == "rq" %}
from rq import Queue
{%- endif %}
{%- if cookiecutter.database != "none" %}
from sqlalchemy import create_engine, text
{%- endif %}

{% if cookiecutter.database != "none" -%}
from {{ cookiecutter.package_name }} import db
{% endif -%}
from {{ cookiecutter.package_name }}.app import {% if cookiecutter.web_framework == "flask" %}close_app, {% endif %}create_app
from {{ cookiecutter.package_name }}.settings import (
    RELEASE_FALLBACKS,
    Settings,
    load_settings,
)

from .processes import (
    COLD_START,
    PROCESSES,
    ProcessGuard,
    ServiceProcess,
    StartService,
{%- if cookiecutter.worker != "none" %}
    wait_for,
{%- endif %}
)

PROJECT_ROOT = Path(__file__).resolve().parents[1]
# The service's variables, and the platforms' ones it reads for its release.
SETTING_NAMES = [
    *(name.upper() for name in Settings.model_fields),
    *RELEASE_FALLBACKS,
    "SECRETS_DIR",
]
# Python cannot remove an audit hook: one guard for the whole run, told which test runs.
PROCESS_GUARD = ProcessGuard()


def pytest_configure() -> None:
    sys.addaudithook(PROCESS_GUARD)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """From its fixtures' setup on, a test not marked `processes` may start none."""
    marked = item.get_closest_marker(PROCESSES) is not None
    PROCESS_GUARD.unmarked_test = None if marked else item.nodeid


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_teardown(item: pytest.Item) -> None:
    # Wider fixtures end in some test's teardown: stopping a private server is no new process.
    PROCESS_GUARD.unmarked_test = None


def require_backing_service(variable: str) -> str:
    """The URL in `variable`; without it, skip (or fail under REQUIRE_BACKING_SERVICES=1)."""
    url = os.environ.get(variable)
    if not url:
        skip_without_backing_service(f"{variable} is not set: these tests need a real server")
    return url


def skip_without_backing_service(reason: str) -> NoReturn:
    """Skip for `reason`; under REQUIRE_BACKING_SERVICES=1 (as in CI), fail instead."""
    if os.environ.get("REQUIRE_BACKING_SERVICES") == "1":
        pytest.fail(f"{reason} (REQUIRE_BACKING_SERVICES=1)")
    pytest.skip(reason)


@pytest.fixture(autouse=True)
def isolated_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Run in an empty temp directory with none of the service's variables set."""
    for name in SETTING_NAMES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
def unused_port() -> int:
    """A local port nothing listens on."""
    return free_port()


def read_procfile() -> dict[str, str]:
    """Process types of the Procfile: name -> command.

    Without the `exec` that makes the shell a Procfile runner starts become the command.
    """
    lines = (PROJECT_ROOT / "Procfile").read_text().splitlines()
    pairs = (line.split(":", 1) for line in lines if line.strip() and not line.startswith("#"))
    return {name.strip(): command.strip().removeprefix("exec ") for name, command in pairs}


@pytest.fixture
def procfile() -> dict[str, str]:
    """Process types of the Procfile: name -> command."""
    return read_procfile()
{%- if cookiecutter.database != "none" %}


def create_throwaway_database(server_url: str) -> Iterator[str]:
    """A new, empty database on the server, dropped afterwards."""
    admin_url = db.engine_url(server_url)
    if admin_url.get_backend_name() == "sqlite":
        yield server_url
        return
    name = f"test_{uuid.uuid4().hex[:16]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield admin_url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def fresh_database(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A fresh database with no tables, on the production engine where one is given."""
    server_url = os.environ.get("TEST_DATABASE_URL")
{%- if cookiecutter.database == "sqlite" %}
    if not server_url:
        yield f"sqlite:///{tmp_path_factory.mktemp('db') / 'test.sqlite3'}"
        return
{%- else %}
    if not server_url:
        server_url = require_backing_service("TEST_DATABASE_URL")
{%- endif %}
    yield from create_throwaway_database(server_url)


@pytest.fixture
def empty_database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A fresh database with no tables, on the production engine where one is given."""
    yield from fresh_database(tmp_path_factory)


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A database migrated to the newest schema, shared by the whole session."""
    server_url = os.environ.get("TEST_DATABASE_URL")
{%- if cookiecutter.database == "sqlite" %}
    if not server_url:
        server_url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'test.sqlite3'}"
{%- else %}
    if not server_url:
        server_url = require_backing_service("TEST_DATABASE_URL")
{%- endif %}
    for url in create_throwaway_database(server_url):
        engine = db.create_database_engine(load_settings({"DATABASE_URL": url}))
        db.migrate(engine)
        engine.dispose()
        yield url
{%- endif %}


{%- if cookiecutter.worker != "none" %}


@pytest.fixture
def redis_url(settings: Settings) -> Iterator[str]:
    """The Redis named by TEST_REDIS_URL, for tests that need the broker; cleaned up after."""
    url = require_backing_service("TEST_REDIS_URL")
    yield url
    clean_queue(url, settings.worker_queue)


def clean_queue(url: str, queue: str) -> None:
    """Delete what a test's queue left in Redis."""
    with Redis.from_url(url) as redis:
{%- if cookiecutter.worker == "rq" %}
        Queue(queue, connection=redis).delete(delete_jobs=True)
        # The test's workers are gone, SIGKILLed ones too: unregister them.
        if workers := redis.smembers(f"rq:workers:{queue}"):
            redis.srem("rq:workers", *workers)
{%- endif %}
        # Every other key the test's queue left has the queue's name in it.
        keys = list(redis.scan_iter(match=f"*{queue}*"))
        if keys:
            redis.delete(*keys)


def broker_settings() -> dict[str, str]:
    """TEST_REDIS_URL when set, and a queue no other test (or test run) uses."""
    broker = {"WORKER_QUEUE": f"test-{uuid.uuid4().hex[:12]}"}
    if os.environ.get("TEST_REDIS_URL"):
        broker["REDIS_URL"] = os.environ["TEST_REDIS_URL"]
    return broker


class PrivateRedis:
    """A redis-server of the tests' own that writes every command to disk before answering.

    So a queue survives the server's SIGKILL and restart, as with a managed Redis.
    """

    def __init__(self, program: str, directory: Path) -> None:
        self.program = program
        self.directory = directory
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                self.program,
                *("--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.directory)),
                *("--appendonly", "yes", "--appendfsync", "always", "--save", ""),
            ],
            stdout=subprocess.DEVNULL,
        )
        wait_for(self.answers, "answering PING", timeout=10)

    def answers(self) -> bool:
        assert self.process is not None
        assert self.process.poll() is None, "redis-server exited"
        try:
            with Redis.from_url(self.url, socket_timeout=1) as redis:
                return bool(redis.ping())
        except RedisConnectionError:
            return False

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self.process = None

    def is_running(self) -> bool:
        return self.process is not None


@pytest.fixture(scope="module")
def private_redis() -> Iterator[PrivateRedis]:
    """One private Redis for the module, removed afterwards."""
    program = shutil.which("redis-server")
    if program is None:
        skip_without_backing_service("redis-server is not installed: no private Redis")
    with tempfile.TemporaryDirectory(prefix="faults-redis-") as directory:
        server = PrivateRedis(program, Path(directory))
        server.start()
        try:
            yield server
        finally:
            server.kill()


@pytest.fixture
def private_redis_url(private_redis: PrivateRedis) -> Iterator[str]:
    """The private Redis, emptied for this test, which runs again afterwards."""
    with Redis.from_url(private_redis.url) as redis:
        redis.flushall()
    try:
        yield private_redis.url
    finally:
        if not private_redis.is_running():
            private_redis.start()


def retry_delays(worker: ServiceProcess) -> list[float]:
    """The waits the worker has logged before each new attempt to reach Redis."""
{%- if cookiecutter.worker == "celery" %}
    events = worker.json_lines()
    announced = (re.search(r"Trying again in ([\d.]+) seconds", e["event"]) for e in events)
    return [float(found[1]) for found in announced if found]
{%- else %}
    events = worker.json_lines()
    return [e["retry_in_seconds"] for e in events if e["event"] == "Redis unavailable: retrying"]
{%- endif %}
{%- endif %}


@pytest.fixture
def settings({% if cookiecutter.database != "none" %}database_url: str{% endif %}) -> Settings:
    """Settings as the service would read them, independent of the developer's machine."""
{%- if cookiecutter.worker != "none" %}
    return load_settings({ {%- if cookiecutter.database != "none" %}"DATABASE_URL": database_url, {% endif %}**broker_settings()})
{%- else %}
    return load_settings({ {%- if cookiecutter.database != "none" %}"DATABASE_URL": database_url{% endif %}})
{%- endif %}


@contextmanager
def app_client(settings: Settings) -> Iterator[httpx.Client]:
    """An HTTP client of the app in-process, started and stopped as a worker process does it.

    A server error is answered as 500, as a real server would.
    """
{%- if cookiecutter.web_framework == "fastapi" %}
    with TestClient(create_app(settings), raise_server_exceptions=False) as test_client:
        yield test_client
{%- else %}
    app = create_app(settings)
    try:
        with wsgi_client(app) as test_client:
            yield test_client
    finally:
        close_app(app)


def wsgi_client(app: Flask) -> httpx.Client:
    """An HTTP client calling the WSGI `app` in-process; a server error is answered as 500."""
    transport = httpx.WSGITransport(app=app, raise_app_exceptions=False)
    return httpx.Client(transport=transport, base_url="http://testserver")
{%- endif %}


@pytest.fixture
def client(settings: Settings) -> Iterator[httpx.Client]:
    """The app in-process, with these tests' settings."""
    with app_client(settings) as test_client:
        yield test_client


def process_env() -> dict[str, str]:
    """The environment of a service process: none of the service's settings, a free PORT."""
    env = {key: value for key, value in os.environ.items() if key not in SETTING_NAMES}
    # The console script lives beside the interpreter running the tests.
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env["PORT"] = str(free_port())
    return env


@pytest.fixture
def service_env(settings: Settings) -> dict[str, str]:
    """The environment of a service process: these tests' settings on a free port."""
    return service_environment(settings)


def service_environment(settings: Settings) -> dict[str, str]:
    """The environment of a service process: `settings` on a free port."""
{%- if cookiecutter.database == "none" and cookiecutter.worker == "none" %}
    return process_env()
{%- else %}
    env = process_env()
{%- if cookiecutter.database != "none" %}
    env["DATABASE_URL"] = settings.database_url.get_secret_value()
{%- endif %}
{%- if cookiecutter.worker != "none" %}
    env["REDIS_URL"] = settings.redis_url.get_secret_value()
    env["WORKER_QUEUE"] = settings.worker_queue
{%- endif %}
    return env
{%- endif %}


@pytest.fixture
def start_service(tmp_path: Path) -> Iterator[StartService]:
    """Start a command as its own process; anything still running is killed afterwards."""
    started: list[ServiceProcess] = []

    def start(command: str, env: dict[str, str]) -> ServiceProcess:
        process = ServiceProcess(command, env=env, cwd=tmp_path)
        started.append(process)
        return process

    yield start
    for process in started:
        process.kill()


@pytest.fixture
def web(
    procfile: dict[str, str],
    start_service: StartService,
    service_env: dict[str, str],
    record_property: Callable[[str, object], None],
) -> ServiceProcess:
    """The Procfile's `web` process, serving."""
    process = start_service(procfile["web"], service_env)
    process.wait_until_serving()
    record_property(COLD_START, process.cold_start)
    return process


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Report how long web processes took from their start to the first 200 on /healthz."""
    seconds = [
        value
        for reports in terminalreporter.stats.values()
        for report in reports
        if getattr(report, "when", None) == "call"
        for name, value in report.user_properties
        if name == COLD_START
    ]
    if seconds:
        terminalreporter.write_sep("-", "cold start: process start to first 200 on /healthz")
        terminalreporter.write_line(
            f"{len(seconds)} starts: median {statistics.median(seconds):.3f} s, "
            f"min {min(seconds):.3f} s, max {max(seconds):.3f} s"
        )
