"""Faults: the service rides out its backing services going away and coming back.

The real processes run against private servers of these tests, in a temp
directory on ports of their own, so that stopping them disturbs nothing else:
a PostgreSQL (initdb, pg_ctl){% if cookiecutter.worker != "none" %} and a Redis (redis-server){% endif %}, one of each per module.
{%- if cookiecutter.database == "sqlite" %}
The service's code is the same on SQLite; only PostgreSQL can be stopped and
started under it.
{%- endif %}
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
{%- if cookiecutter.worker != "none" %}
from functools import partial
{%- endif %}
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest
from sqlalchemy import create_engine, text

{%- if cookiecutter.worker != "none" %}
from sqlalchemy.orm import Session
{%- endif %}

{% if cookiecutter.worker != "none" -%}
from {{ cookiecutter.package_name }} import reports
{% endif -%}
from {{ cookiecutter.package_name }}.db import {% if cookiecutter.worker != "none" %}create_database_engine, {% endif %}engine_url
{%- if cookiecutter.worker != "none" %}
from {{ cookiecutter.package_name }}.settings import Settings
{%- endif %}

{% if cookiecutter.worker != "none" -%}
from .conftest import (
    PrivateRedis,
    free_port,
    process_env,
    retry_delays,
    skip_without_backing_service,
)
{%- else -%}
from .conftest import free_port, process_env, skip_without_backing_service
{%- endif %}
from .processes import ServiceProcess, StartService, wait_for
{%- if cookiecutter.worker != "none" %}
from .test_worker import (
    EXPECTED_COUNTS,
    ITEMS,
    job_waiting_on_lock,
    report_done,
    report_row_locked,
    report_status,
)
{%- endif %}

# Long enough for a fresh server; a hung request fails the test instead of hanging it.
REQUEST_TIMEOUT_SECONDS = 10


def postgresql_programs() -> Path | None:
    """The directory of initdb and pg_ctl: on PATH, else the newest of Debian's and Ubuntu's."""
    if pg_ctl := shutil.which("pg_ctl"):
        return Path(pg_ctl).parent
    installed = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"), key=lambda path: int(path.parts[-3])
    )
    return installed[-1].parent if installed else None


class PrivatePostgreSQL:
    """A PostgreSQL server of the tests' own: trust authentication, 127.0.0.1 only."""

    def __init__(self, programs: Path, directory: Path, os_user: str | None) -> None:
        self.programs = programs
        self.directory = directory
        self.data = directory / "data"
        self.port = free_port()
        # PostgreSQL refuses to run as root: root runs it as the `postgres` user.
        self.os_user = os_user
        self.run("initdb", "-D", str(self.data), "--auth=trust", "--username=postgres", "--no-sync")

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def run(self, program: str, *args: str) -> None:
        command = [str(self.programs / program), *args]
        if self.os_user:
            command = ["runuser", "-u", self.os_user, "--", *command]
        result = subprocess.run(command, capture_output=True, text=True, check=False, timeout=60)
        assert result.returncode == 0, f"{program}: {result.stdout}{result.stderr}"

    def start(self) -> None:
        options = f"-p {self.port} -k {self.directory} -c listen_addresses=127.0.0.1 -c fsync=off"
        log = str(self.directory / "postgresql.log")
        self.run("pg_ctl", "-D", str(self.data), "-l", log, "-o", options, "-w", "start")

    def stop(self) -> None:
        """Stop at once, as a crash would: connections drop, nothing is shut down cleanly."""
        self.run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")

    def is_running(self) -> bool:
        return (self.data / "postmaster.pid").exists()


@pytest.fixture(scope="module")
def private_postgresql() -> Iterator[PrivatePostgreSQL]:
    """One private PostgreSQL for the module, removed afterwards."""
    programs = postgresql_programs()
    if programs is None:
        skip_without_backing_service("initdb and pg_ctl are not installed: no private PostgreSQL")
    os_user = "postgres" if os.geteuid() == 0 else None
    if os_user and shutil.which("runuser") is None:
        skip_without_backing_service("running as root without runuser: no private PostgreSQL")
    directory = Path(tempfile.mkdtemp(prefix="faults-postgresql-"))
    try:
        if os_user:
            shutil.chown(directory, user=os_user)
        server = PrivatePostgreSQL(programs, directory, os_user)
        server.start()
        yield server
        server.stop()
    finally:
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
def private_database_url(private_postgresql: PrivatePostgreSQL) -> Iterator[str]:
    """A fresh database of this test on the private server, which runs again afterwards."""
    name = f"test_{uuid.uuid4().hex[:16]}"
    server = create_engine(engine_url(private_postgresql.url()), isolation_level="AUTOCOMMIT")
    with server.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    server.dispose()
    try:
        yield private_postgresql.url(name)
    finally:
        if not private_postgresql.is_running():
            private_postgresql.start()


@pytest.fixture
def env(private_database_url: str{% if cookiecutter.worker != "none" %}, private_redis_url: str{% endif %}) -> dict[str, str]:
    """A service process's environment with the private servers as its backing services."""
    return {
        **process_env(),
        "DATABASE_URL": private_database_url,
{%- if cookiecutter.worker != "none" %}
        "REDIS_URL": private_redis_url,
{%- endif %}
    }


def released_and_serving(
    procfile: dict[str, str], start_service: StartService, env: dict[str, str]
) -> ServiceProcess:
    """Run the release process to the end, then start the web process."""
    release = start_service(procfile["release"], env)
    assert release.wait() == 0, release.output()
    web = start_service(procfile["web"], env)
    web.wait_until_serving()
    return web


def get(web: ServiceProcess, path: str) -> httpx.Response:
    return httpx.get(f"{web.url}{path}", timeout=REQUEST_TIMEOUT_SECONDS)


def post(web: ServiceProcess, path: str, body: Any = None) -> httpx.Response:
    return httpx.post(f"{web.url}{path}", json=body, timeout=REQUEST_TIMEOUT_SECONDS)


@pytest.mark.processes
def test_database_outage_is_503_and_the_service_recovers_without_a_restart(
    procfile: dict[str, str],
    start_service: StartService,
    env: dict[str, str],
    private_postgresql: PrivatePostgreSQL,
) -> None:
    web = released_and_serving(procfile, start_service, env)
    processes = web.children()
    created = post(web, "/items", {"name": "before the outage"})
    assert created.status_code == 201
    item_path = f"/items/{created.json()['id']}"
    assert get(web, item_path).json() == created.json()

    private_postgresql.stop()
    not_ready = wait_for(lambda: (r := get(web, "/readyz")).status_code == 503 and r, "503")
    assert not_ready.json()["checks"]["database"] != "ok"
    assert get(web, "/healthz").status_code == 200
    for response in (get(web, item_path), post(web, "/items", {"name": "during the outage"})):
        assert response.status_code == 503
        assert response.json() == {"detail": "database unavailable"}

    private_postgresql.start()
    wait_for(lambda: get(web, "/readyz").status_code == 200, "ready again")
    assert get(web, item_path).json() == created.json()
    assert post(web, "/items", {"name": "after the outage"}).status_code == 201
    assert web.process.poll() is None, web.output()
    assert web.children() == processes, "a server process was restarted"
    assert web.stop() == 0, web.output()
{%- if cookiecutter.worker != "none" %}


@pytest.mark.processes
def test_queued_jobs_survive_a_redis_outage_and_the_worker_rides_it_out(
    procfile: dict[str, str],
    start_service: StartService,
    env: dict[str, str],
    private_database_url: str,
    private_redis: PrivateRedis,
) -> None:
    web = released_and_serving(procfile, start_service, env)
    for item in ITEMS:
        assert post(web, "/items", item).status_code == 201
    # Queued before any worker runs: the first is then held in hand, the others wait in Redis.
    queued = [post(web, "/reports").json()["id"] for _ in range(3)]
    with report_row_locked(private_database_url, queued[0]):
        worker = start_service(procfile["worker"], env)
        wait_for(lambda: job_waiting_on_lock(private_database_url), "holding the first job")
        private_redis.kill()
        assert post(web, "/reports").status_code == 503
    # The job in hand finishes; then the worker waits for Redis, trying again and again.
    delays = wait_for(lambda: (found := retry_delays(worker))[1:] and found, "retrying", 60)
    assert delays[1] > delays[0], "no backoff"
    assert worker.process.poll() is None, worker.output()

    private_redis.start()
    for report_id in queued:
        done = wait_for(partial(report_done, web.url, report_id), f"report {report_id} done", 60)
        assert {key: done[key] for key in EXPECTED_COUNTS} == EXPECTED_COUNTS
    assert worker.stop() == 0, worker.output()


def test_a_done_report_is_not_marked_failed_afterwards(settings: Settings) -> None:
    engine = create_database_engine(settings)
    with Session(engine) as session:
        report = reports.request_report(session, lambda _report_id: None)
        reports.build_report(session, report.id)
        reports.fail_report(session, report.id, "a late duplicate failed")
        after = reports.get_report(session, report.id)
    engine.dispose()
    assert after is not None
    assert (after.status, after.error) == ("done", None)


def role_without_items(database_url: str) -> str:
    """The URL of a new role that may write reports but not read items: a grant was missed."""
    role = f"reporter_{uuid.uuid4().hex[:12]}"
    engine = create_engine(engine_url(database_url))
    with engine.begin() as connection:
        connection.execute(text(f"CREATE ROLE {role} LOGIN"))
        connection.execute(text(f"GRANT SELECT, UPDATE ON reports TO {role}"))
    engine.dispose()
    return database_url.replace("postgres@", f"{role}@", 1)


def report_failed(base_url: str, report_id: int) -> dict[str, Any] | None:
    body = report_status(base_url, report_id)
    return body if body["status"] == "failed" else None


@pytest.mark.processes
def test_a_job_that_fails_for_good_marks_its_report_failed(
    procfile: dict[str, str],
    start_service: StartService,
    env: dict[str, str],
    private_database_url: str,
) -> None:
    web = released_and_serving(procfile, start_service, env)
    assert post(web, "/items", ITEMS[0]).status_code == 201
    role_url = role_without_items(private_database_url)
    worker = start_service(procfile["worker"], {**env, "DATABASE_URL": role_url})
    report_id = post(web, "/reports").json()["id"]

    failed = wait_for(partial(report_failed, web.url, report_id), "failed")
    assert failed["error"] == "InsufficientPrivilege: permission denied for table items"
    assert failed["item_count"] is None
    assert failed["finished_at"] >= failed["created_at"]
    assert worker.process.poll() is None, worker.output()
    assert worker.stop() == 0, worker.output()
    [event] = [event for event in worker.json_lines() if event["event"] == "report failed"]
    assert event["report_id"] == report_id
{%- endif %}
