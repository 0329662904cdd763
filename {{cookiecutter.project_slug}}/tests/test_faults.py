"""Faults: the service rides out its backing services going away and coming back.

The real processes run against private servers of these tests, in a temp
directory on ports of their own, so that stopping them disturbs nothing else:
a PostgreSQL (initdb, pg_ctl){% if cookiecutter.worker != "none" %} and a Redis (redis-server){% endif %}, one of each per module.
Faults at an exact point of a request (the connection lost right after a
commit) are made in-process, by a proxy between the app and PostgreSQL.
{%- if cookiecutter.database == "sqlite" %}
The service's code is the same on SQLite; only PostgreSQL can be stopped and
started under it.
{%- endif %}
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
{%- if cookiecutter.worker != "none" %}
from functools import partial
{%- endif %}
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest
from pydantic import SecretStr
from sqlalchemy import create_engine, func, select, text

{%- if cookiecutter.worker != "none" %}
from sqlalchemy.orm import Session
{%- endif %}

{% if cookiecutter.worker != "none" -%}
from {{ cookiecutter.package_name }} import reports
{% endif -%}
from {{ cookiecutter.package_name }}.db import {% if cookiecutter.worker != "none" %}create_database_engine, {% endif %}engine_url
from {{ cookiecutter.package_name }}.items import (
    IDEMPOTENCY_KEY_HEADER,
    REPLAYED_HEADER,
)
from {{ cookiecutter.package_name }}.settings import Settings
from {{ cookiecutter.package_name }}.tables import Item

{% if cookiecutter.worker != "none" -%}
from .conftest import (
    PrivateRedis,
    app_client,
    free_port,
    process_env,
    retry_delays,
    skip_without_backing_service,
)
{%- else -%}
from .conftest import app_client, free_port, process_env, skip_without_backing_service
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
# PostgreSQL's wire protocol: the query psycopg sends to commit, and the server's answer.
COMMIT_SENT = b"Q\x00\x00\x00\x0bCOMMIT\x00"
COMMIT_DONE = b"C\x00\x00\x00\x0bCOMMIT\x00"


class CuttingProxy:
    """A TCP proxy to PostgreSQL that, once armed, cuts every connection after a message.

    The chunk holding the message is passed on, and nothing after it; then every
    connection is closed, and new ones are closed as they come, until `restore`:
    the database has gone away at that exact point of a request.
    """

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self.listener.getsockname()[1]
        self.cut_after: bytes | None = None
        self.sealed = threading.Event()  # set as the armed message passes: nothing more does
        self.cut = threading.Event()  # set once every connection is closed
        self.sockets: list[socket.socket] = []
        # A cut, a restore and a new connection each happen whole: a cut still closing
        # sockets when the test restores would close the connections made after it.
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:  # closed
                return
            with self.lock:
                if self.cut.is_set():
                    client.close()
                    continue
                server = socket.create_connection(self.upstream)
                self.sockets += [client, server]
            for source, sink in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while chunk := source.recv(65536):
                if self.sealed.is_set():
                    return
                armed = self.cut_after
                if armed is not None and armed in chunk:
                    # Sealed first: on a busy machine, the answer to a COMMIT passed on came
                    # back through the other pump before the cut, and the client saw a 201.
                    self.sealed.set()
                    sink.sendall(chunk)
                    self._cut_all(armed)
                    return
                sink.sendall(chunk)
        except OSError:  # the other side, or the cut, closed a socket
            pass

    def _cut_all(self, armed: bytes | None = None) -> None:
        with self.lock:
            if armed is not None and self.cut_after != armed:  # restored meanwhile
                return
            for sock in self.sockets:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)  # what was sent still arrives, then EOF
                sock.close()
            self.sockets.clear()
            self.cut.set()

    def restore(self) -> None:
        with self.lock:
            self.cut_after = None
            self.sealed.clear()
            self.cut.clear()

    def close(self) -> None:
        self.listener.close()
        self._cut_all()


class LateCuttingProxy(CuttingProxy):
    """A CuttingProxy whose cut comes late, as on a busy machine."""

    def _cut_all(self, armed: bytes | None = None) -> None:
        time.sleep(0.5)
        super()._cut_all(armed)


def test_the_proxy_passes_nothing_after_the_armed_message() -> None:
    """The server's answer to the armed message never reaches the client, however late the
    cut: when the cut came late, a COMMIT's answer got through and the client saw a 201."""
    upstream = socket.create_server(("127.0.0.1", 0))

    def answer_every_message() -> None:
        connection, _ = upstream.accept()
        with connection:
            while message := connection.recv(65536):
                connection.sendall(b"answer to " + message)

    threading.Thread(target=answer_every_message, daemon=True).start()
    proxy = LateCuttingProxy(upstream.getsockname())
    proxy.cut_after = COMMIT_SENT
    received = b""
    try:
        with socket.create_connection(("127.0.0.1", proxy.port), timeout=5) as client:
            client.sendall(COMMIT_SENT)
            assert proxy.cut.wait(5), "the connection was not cut"
            with contextlib.suppress(ConnectionResetError):
                while chunk := client.recv(65536):
                    received += chunk
    finally:
        proxy.close()
        upstream.close()
    assert received == b""


@pytest.fixture
def proxy(database_url: str) -> Iterator[CuttingProxy]:
    """A proxy to the tests' PostgreSQL server."""
    url = engine_url(database_url)
    if url.get_backend_name() != "postgresql" or not url.host:
        pytest.skip("cutting a connection needs PostgreSQL over TCP: set TEST_DATABASE_URL")
    server = CuttingProxy((url.host, url.port or 5432))
    yield server
    server.close()


@pytest.fixture
def client_through_proxy(
    settings: Settings, database_url: str, proxy: CuttingProxy
) -> Iterator[httpx.Client]:
    """The app in-process, its database reached through the proxy."""
    url = engine_url(database_url).set(host="127.0.0.1", port=proxy.port)
    through = SecretStr(url.render_as_string(hide_password=False))
    with app_client(settings.model_copy(update={"database_url": through})) as client:
        yield client


def items_named(database_url: str, name: str) -> int:
    engine = create_engine(engine_url(database_url))
    with engine.connect() as connection:
        count = connection.scalar(select(func.count()).where(Item.name == name))
    engine.dispose()
    return count or 0


def test_a_committed_item_is_answered_201_though_the_database_goes_away_after_the_commit(
    proxy: CuttingProxy, client_through_proxy: httpx.Client, database_url: str
) -> None:
    body = {"name": f"committed {uuid.uuid4().hex}", "description": "then the connection died"}
    headers = {IDEMPOTENCY_KEY_HEADER: uuid.uuid4().hex}
    proxy.cut_after = COMMIT_DONE
    created = client_through_proxy.post("/items", json=body, headers=headers)
    assert proxy.cut.wait(REQUEST_TIMEOUT_SECONDS), "the connection was not cut"
    assert created.status_code == 201, created.text
    assert created.json() == {"id": created.json()["id"], **body}

    proxy.restore()
    retried = client_through_proxy.post("/items", json=body, headers=headers)
    assert (retried.status_code, retried.json()) == (201, created.json())
    assert retried.headers[REPLAYED_HEADER] == "true"
    assert items_named(database_url, body["name"]) == 1


def test_a_retry_after_a_commit_in_doubt_creates_no_duplicate(
    proxy: CuttingProxy, client_through_proxy: httpx.Client, database_url: str
) -> None:
    """The commit was sent, its answer lost: the client cannot know; its retry settles it."""
    body = {"name": f"in doubt {uuid.uuid4().hex}"}
    headers = {IDEMPOTENCY_KEY_HEADER: uuid.uuid4().hex}
    proxy.cut_after = COMMIT_SENT
    first = client_through_proxy.post("/items", json=body, headers=headers)
    assert proxy.cut.wait(REQUEST_TIMEOUT_SECONDS), "the connection was not cut"
    assert first.status_code == 503, first.text
    assert first.json() == {"detail": "database unavailable"}

    proxy.restore()
    retried = client_through_proxy.post("/items", json=body, headers=headers)
    assert retried.status_code == 201, retried.text
    assert retried.json()["name"] == body["name"]
    assert items_named(database_url, body["name"]) == 1


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
