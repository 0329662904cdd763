"""The image that ships, built with Podman and run the way a platform runs it.

A covering set of stacks (every web framework, database and worker at least
once) is built from the generated Dockerfile against cached base images
(tests/podman.py), and each image runs as it would in production: as a
non-root user from a read-only root filesystem with a tmpfs /tmp, configured
by the environment alone, against this machine's PostgreSQL and Redis (a
database and a queue of its own), on the host's loopback (`--network=host`,
with a PORT the test picks). All tests of a stack share one xdist group, so
under `--dist loadgroup` (`make test`) one worker builds its image once; builds
take turns, so a second worker's build of the same stack reuses its layers.
"""

from __future__ import annotations

import contextlib
import functools
import http.client
import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import tarfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from .conftest import (
    DEFAULT_ANSWERS,
    UV,
    dev_tool,
    missing,
    project_env,
    require_backing_service,
    stack_key,
)
from .deployment import env_file
from .podman import (
    build_image,
    building,
    engine_command,
    ensure_base_images,
    inspect,
    podman,
    remove_images,
    require_podman,
)

# Every web framework, database and worker at least once: SQLite's stack is built and run
# by Compose (COMPOSE_STACK). Both workers have PostgreSQL, whose row lock holds a job in hand.
STACKS = [
    {"web_framework": "flask", "database": "none", "worker": "none"},
    {"web_framework": "flask", "database": "postgresql", "worker": "celery"},
    {"web_framework": "fastapi", "database": "postgresql", "worker": "rq"},
]
# What CI passes as the commit: `--build-arg RELEASE_ID=$GITHUB_SHA`.
RELEASE = "3f2c1e0"
# A secret in the files a developer keeps beside the Dockerfile: no layer may hold it.
CANARY = "canary-" + "9d41f7c2"
LOCAL_SECRET_FILES = {
    ".env": f"SECRET_KEY={CANARY}\nDATABASE_URL=postgresql://app:{CANARY}@db.internal/app\n",
    ".env.production": f"SECRET_KEY={CANARY}\n",
    "id_ed25519": f"-----BEGIN OPENSSH PRIVATE KEY-----\n{CANARY}\n",
}
# The drain the containers are given, and the engine's grace period, longer: a stop
# drains, then exits, and is never SIGKILLed. Shorter than the defaults (20 s, 30 s),
# so a known failure costs the suite less.
GRACEFUL_TIMEOUT = 10
STOP_GRACE_SECONDS = 15
# What the engine itself changes: /etc, where it mounts hosts and resolv.conf.
ENGINE_CHANGES = {"C /etc"}
# A container's states while its process runs: `podman stop` makes it "stopping".
LIVE = {"running", "stopping"}
# How Celery's ("shutting down") and RQ's ("warm shut down requested") workers log a stop.
SHUTDOWN = re.compile(r"shut(ting)? down")
LOAD_CLIENTS = 8
LOAD_SECONDS = 1.0
WAIT_SECONDS = 60
PODMAN_COMPOSE = dev_tool("podman-compose")


def stack_params(
    keep: Callable[[dict[str, str]], bool] = lambda stack: True,
    known_bug: Callable[[dict[str, str]], list[pytest.MarkDecorator]] = lambda stack: [],
) -> list[Any]:
    """The stacks as parameters, each in its xdist group, with the bug marks that apply."""
    return [
        pytest.param(
            stack,
            id=stack_key(stack),
            marks=[pytest.mark.xdist_group(stack_key(stack)), *known_bug(stack)],
        )
        for stack in STACKS
        if keep(stack)
    ]


def with_database(stack: dict[str, str]) -> bool:
    return stack["database"] != "none"


def with_worker(stack: dict[str, str]) -> bool:
    return stack["worker"] != "none"


@dataclass
class Image:
    tag: str
    project: Path  # the baked project, its dependencies installed (its Python has SQLAlchemy)
    stack: dict[str, str]

    slug: str = DEFAULT_ANSWERS["project_slug"]  # the command every process runs


@pytest.fixture(scope="session")
def images(
    baked_project: Callable[..., Path], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Callable[[dict[str, str]], Image]]:
    """Build each stack's image once per session, from a copy with local secrets beside it."""
    built: dict[str, Image] = {}

    def image(stack: dict[str, str]) -> Image:
        key = stack_key(stack)
        if key not in built:
            require_podman()
            project = baked_project(**stack)  # its `uv sync` wrote uv.lock
            context = tmp_path_factory.mktemp(f"image-{key}") / "project"
            shutil.copytree(project, context, ignore=shutil.ignore_patterns(".venv", ".data"))
            for name, text in LOCAL_SECRET_FILES.items():
                (context / name).write_text(text)
            tag = f"localhost/twelve-factor-test-{key}-{os.getpid()}"
            built[key] = Image(tag, project, stack)
            build_image(context, tag, RELEASE)
        return built[key]

    yield image
    remove_images(*(image_.tag for image_ in built.values()))


@pytest.fixture
def image(images: Callable[[dict[str, str]], Image], stack: dict[str, str]) -> Image:
    return images(stack)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def project_python(project: Path, script: str, *args: str) -> str:
    """Run Python in the baked project's environment (SQLAlchemy, psycopg); its stdout."""
    command = [UV, "run", "--no-sync", "python", "-c", script, *args]
    result = subprocess.run(
        command, cwd=project, env=project_env(), capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, f"$ {' '.join(command)}\n{result.stdout}\n{result.stderr}"
    return result.stdout


ADMIN_SQL = """
import sys
from sqlalchemy import create_engine, text
url = sys.argv[1].replace("postgresql://", "postgresql+psycopg://", 1)
with create_engine(url, isolation_level="AUTOCOMMIT").connect() as connection:
    result = connection.execute(text(sys.argv[2]))
    print(result.all() if sys.argv[3] == "rows" else "")
"""


def sql(project: Path, url: str, statement: str, rows: bool = False) -> str:
    return project_python(project, ADMIN_SQL, url, statement, "rows" if rows else "none")


@pytest.fixture
def service_env(image: Image) -> Iterator[dict[str, str]]:
    """The environment a platform would give the processes: a port, a database, a queue."""
    env = {
        "PORT": str(free_port()),
        "LOG_FORMAT": "json",
        "GRACEFUL_TIMEOUT": str(GRACEFUL_TIMEOUT),
    }
    name = f"image_{secrets.token_hex(4)}"
    server = None
    if image.stack["database"] == "postgresql":
        server = require_backing_service("TEST_DATABASE_URL")
        sql(image.project, server, f'CREATE DATABASE "{name}"')
        env["DATABASE_URL"] = server.rsplit("/", 1)[0] + f"/{name}"
    if with_worker(image.stack):
        env["REDIS_URL"] = require_backing_service("TEST_REDIS_URL")
        env["WORKER_QUEUE"] = name
    try:
        yield env
    finally:
        if server is not None:
            sql(image.project, server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@dataclass
class Container:
    name: str
    port: int

    def state(self) -> dict[str, Any]:
        state: dict[str, Any] = inspect("container", self.name)["State"]
        return state

    def logs(self) -> tuple[list[str], list[str]]:
        """Its stdout and stderr lines, each stream apart."""
        result = podman("logs", self.name)
        return result.stdout.splitlines(), result.stderr.splitlines()

    def stop(self) -> int:
        """`podman stop`: SIGTERM (the image's STOPSIGNAL), SIGKILL after the grace period."""
        podman(
            "stop", "--time", str(STOP_GRACE_SECONDS), self.name, timeout=STOP_GRACE_SECONDS + 30
        )
        code: int = self.state()["ExitCode"]
        return code

    def request(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        return request(self.port, method, path, body)


def request(port: int, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        payload = json.dumps(body) if body is not None else None
        headers = {"Content-Type": "application/json"} if body is not None else {}
        connection.request(method, path, body=payload, headers=headers)
        response = connection.getresponse()
        return response.status, json.loads(response.read() or b"null")
    finally:
        connection.close()


def wait_for(check: Callable[[], Any], what: str, timeout: float = WAIT_SECONDS) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError):
            if result := check():
                return result
        time.sleep(0.1)
    pytest.fail(f"timed out after {timeout} s waiting for {what}")


@dataclass
class Runner:
    """Starts the image's containers the way a platform does; removes them after the test."""

    image: Image
    env: dict[str, str]
    volume: str | None = None
    names: list[str] = field(default_factory=list)
    capabilities: list[str] = field(default_factory=list)  # added to the engine's default set

    def options(self, **env: str) -> list[str]:
        options = ["--network=host", "--read-only", "--tmpfs=/tmp:rw,size=64m,mode=1777"]
        options += [f"--cap-add={capability}" for capability in self.capabilities]
        if self.volume is not None:  # SQLite's file: the one writable path, shared by processes
            options.append(f"--volume={self.volume}:/app/.data")
        for key, value in {**self.env, **env}.items():
            options.append(f"--env={key}={value}")
        return options

    def one_off(self, *command: str, **env: str) -> subprocess.CompletedProcess[str]:
        """An admin process: `podman run --rm IMAGE <slug> COMMAND`, same image and env.

        `env` overrides variables of the service's environment.
        """
        options = self.options(**env)
        return podman(
            "run", "--rm", *options, self.image.tag, self.image.slug, *command, check=False
        )

    def start(self, *command: str) -> Container:
        name = f"twelve-factor-test-{secrets.token_hex(4)}"
        self.names.append(name)
        podman("run", "--detach", f"--name={name}", *self.options(), self.image.tag, *command)
        return Container(name, int(self.env["PORT"]))

    def web(self) -> Container:
        """The release step if any, then the image's default command, serving."""
        if with_database(self.image.stack):
            released = self.one_off("migrate")
            assert released.returncode == 0, released.stderr
        web = self.start()
        wait_for(lambda: web.request("GET", "/healthz")[0] == 200, "the web container")
        return web

    def worker(self) -> Container:
        return self.start(self.image.slug, "worker")

    def remove(self) -> None:
        if self.names:
            podman("rm", "--force", "--time=0", *self.names, check=False)
        if self.volume is not None:
            podman("volume", "rm", "--force", self.volume, check=False)


@pytest.fixture
def runner(image: Image, service_env: dict[str, str]) -> Iterator[Runner]:
    volume = None
    if image.stack["database"] == "sqlite":
        volume = f"twelve-factor-test-{secrets.token_hex(4)}"
        podman("volume", "create", volume)  # filled from the image's /app/.data, owned by app
    runner = Runner(image, service_env, volume)
    try:
        yield runner
    finally:
        runner.remove()


def assert_json_logs_only(container: Container) -> list[dict[str, Any]]:
    """Every stdout line is a JSON object stamped with the release; stderr is empty."""
    stdout, stderr = container.logs()
    assert stderr == []
    records = [json.loads(line) for line in stdout]
    assert all(isinstance(r, dict) and r["release"] == RELEASE for r in records), stdout
    return records


def create_report(web: Container) -> int:
    status, report = web.request("POST", "/reports")
    assert status == 202, report
    report_id: int = report["id"]
    return report_id


def report_done(web: Container, report_id: int) -> dict[str, Any] | None:
    status, report = web.request("GET", f"/reports/{report_id}")
    assert status == 200, report
    assert report["status"] != "failed", report
    return report if report["status"] == "done" else None


@pytest.mark.parametrize("stack", stack_params())
def test_image_serves_on_the_port_given_at_run_as_non_root_from_a_read_only_root(
    runner: Runner, image: Image
) -> None:
    web = runner.web()
    assert web.request("GET", "/healthz") == (200, {"status": "ok", "release": RELEASE})
    status, readiness = web.request("GET", "/readyz")
    assert status == 200, readiness
    if with_database(image.stack):
        status, created = web.request("POST", "/items", {"name": "in a container"})
        assert status == 201, created
        assert web.request("GET", f"/items/{created['id']}") == (200, created)
    if with_worker(image.stack):
        worker = runner.worker()
        report_id = create_report(web)
        done = wait_for(lambda: report_done(web, report_id), "the worker's report")
        assert done["item_count"] == 1
        assert_json_logs_only(worker)  # its stop: test_stopped_worker_container_finishes...

    config = inspect("container", web.name)
    assert config["Config"]["User"] == "10001:10001"
    assert config["HostConfig"]["ReadonlyRootfs"] is True
    uid = podman("exec", web.name, "id", "-u").stdout.strip()
    assert uid == "10001"
    refused = podman("exec", web.name, "touch", "/app/written", check=False)
    assert refused.returncode != 0
    assert "Read-only file system" in refused.stderr
    # Nothing was written outside the tmpfs (and SQLite's volume).
    assert set(podman("diff", web.name).stdout.split("\n")) - ENGINE_CHANGES == {""}
    if with_database(image.stack):
        # A SQLite file on the read-only root filesystem: refused at start, in one line.
        release = runner.one_off("migrate", DATABASE_URL="sqlite:////app/app.sqlite3")
        assert release.returncode == 78, release.stderr
        assert release.stderr.splitlines() == [
            "config error: DATABASE_URL: directory /app is not writable (a read-only filesystem?)"
        ]

    assert web.stop() == 0, web.logs()
    records = assert_json_logs_only(web)
    assert any(r.get("path") == "/healthz" and r.get("status") == 200 for r in records)


@dataclass
class Load:
    """Clients on loopback, each sending requests on new connections until refused."""

    port: int
    accepted: int = 0
    answered: int = 0
    lost: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def client(self, deadline: float) -> None:
        while time.monotonic() < deadline:
            try:
                connection = socket.create_connection(("127.0.0.1", self.port), timeout=5)
            except OSError:  # refused: the listener is closed, no request was accepted
                return
            with self.lock:
                self.accepted += 1
            try:
                with connection:
                    connection.sendall(
                        b"GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
                    )
                    response = http.client.HTTPResponse(connection)
                    response.begin()
                    response.read()
                    ok = response.status == 200
            except (OSError, http.client.HTTPException) as exc:
                ok, error = False, repr(exc)
            else:
                error = f"status {response.status}"
            with self.lock:
                if ok:
                    self.answered += 1
                else:
                    self.lost.append(error)


ATTACH_SOCKET_FILTER = f"""
import socket, sys
from {DEFAULT_ANSWERS["package_name"]}.listeners import refuse_new_connections
sys.exit(0 if refuse_new_connections(socket.create_server(("127.0.0.1", 0))) else 3)
"""


@functools.cache
def socket_filter_needs_net_admin(tag: str) -> bool:
    """Whether this kernel refuses a TCP socket filter to an unprivileged container.

    Mainline Linux lets any process filter its own sockets; some kernel builds,
    this CI machine's among them, want CAP_NET_ADMIN for TCP sockets.
    """
    probe = podman(
        "run", "--rm", "--network=none", tag, "python", "-c", ATTACH_SOCKET_FILTER, check=False
    )
    assert probe.returncode in (0, 3), probe.stderr
    return probe.returncode == 3


@pytest.mark.parametrize("stack", stack_params())
def test_stop_under_load_loses_no_accepted_request_and_exits_0(
    runner: Runner, image: Image
) -> None:
    """Clients that keep connecting through the stop: each one is answered or refused.

    With one web process, and with two under each framework's supervisor (the stacks
    with a worker), whose own copy of the listening socket must not outlive the drain.
    The handover needs the socket filter that drops new connection requests: where the
    kernel wants CAP_NET_ADMIN for it, the container gets that capability, as any
    container has the filter on mainline Linux. The fallback without it is not airtight
    under a storm of new connections (docs/deploy-compose.md).
    """
    if socket_filter_needs_net_admin(image.tag):
        runner.capabilities.append("NET_ADMIN")
    runner.env["WEB_CONCURRENCY"] = "2" if with_worker(image.stack) else "1"
    web = runner.web()
    load = Load(web.port)
    deadline = time.monotonic() + STOP_GRACE_SECONDS + 30  # bounds the loop if the stop hangs
    clients = [threading.Thread(target=load.client, args=(deadline,)) for _ in range(LOAD_CLIENTS)]
    for client in clients:
        client.start()
    time.sleep(LOAD_SECONDS)
    code = web.stop()
    for client in clients:
        client.join()
    assert load.lost == [], f"{len(load.lost)} of {load.accepted} accepted requests lost"
    assert load.answered > LOAD_CLIENTS
    assert code == 0
    assert_json_logs_only(web)


HOLD_ROW_LOCK = """
import sys
from sqlalchemy import create_engine, text
url = sys.argv[1].replace("postgresql://", "postgresql+psycopg://", 1)
with create_engine(url).connect() as connection:
    lock = text("SELECT id FROM reports WHERE id = :id FOR UPDATE")
    connection.execute(lock, {"id": int(sys.argv[2])})
    print("locked", flush=True)
    sys.stdin.read()
    connection.rollback()
"""
LOCK_WAITERS = (
    "SELECT count(*) FROM pg_stat_activity"
    " WHERE datname = current_database() AND wait_event_type = 'Lock'"
)


@contextlib.contextmanager
def report_row_locked(project: Path, url: str, report_id: int) -> Iterator[None]:
    """Hold the report's row lock: its job blocks on its first write until this ends."""
    holder = subprocess.Popen(
        [UV, "run", "--no-sync", "python", "-c", HOLD_ROW_LOCK, url, str(report_id)],
        cwd=project,
        env=project_env(),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline() == "locked\n"
        yield
    finally:
        assert holder.stdin is not None
        holder.stdin.close()
        holder.wait(timeout=30)


@pytest.mark.parametrize("stack", stack_params(with_worker))
def test_stopped_worker_container_finishes_the_job_in_hand(runner: Runner, image: Image) -> None:
    web = runner.web()
    report_id = create_report(web)
    url = runner.env["DATABASE_URL"]
    with report_row_locked(image.project, url, report_id):
        worker = runner.worker()
        wait_for(lambda: sql(image.project, url, LOCK_WAITERS, rows=True) != "[(0,)]\n", "the job")
        stopping = threading.Thread(target=worker.stop)
        stopping.start()
        wait_for(lambda: SHUTDOWN.search("".join(worker.logs()[0])), "the stop signal")
        assert worker.state()["Status"] in LIVE, f"exited with a job in hand: {worker.logs()}"
    stopping.join()
    assert worker.state()["ExitCode"] == 0, worker.logs()
    assert report_done(web, report_id) is not None
    assert_json_logs_only(worker)
    assert web.stop() == 0


@pytest.mark.parametrize("stack", stack_params())
def test_admin_processes_run_from_the_same_image_and_environment(
    runner: Runner, image: Image
) -> None:
    if with_database(image.stack):
        migrated = runner.one_off("migrate")
        assert migrated.returncode == 0, migrated.stderr
        assert migrated.stderr == ""
        assert all(json.loads(line)["release"] == RELEASE for line in migrated.stdout.splitlines())
    checked = runner.one_off("check-config")
    assert checked.returncode == 0, checked.stderr
    config = dict(line.split("=", 1) for line in checked.stdout.splitlines())
    assert config["PORT"] == runner.env["PORT"]
    assert config["RELEASE_ID"] == RELEASE
    if "REDIS_URL" in runner.env:
        assert config["WORKER_QUEUE"] == runner.env["WORKER_QUEUE"]

    runner.env["PORT"] = "http"  # a bad setting: one line naming it, exit 78 (EX_CONFIG)
    refused = runner.one_off("check-config")
    assert refused.returncode == 78
    [line] = refused.stderr.splitlines()
    assert "PORT" in line
    assert "'http'" in line or "http" in line


@pytest.mark.parametrize("stack", stack_params())
def test_no_secret_reaches_the_image_history_or_config(image: Image) -> None:
    history = podman("history", "--no-trunc", "--format=json", image.tag).stdout
    config = podman("image", "inspect", image.tag).stdout
    assert CANARY not in history
    assert CANARY not in config
    [inspected] = json.loads(config)
    assert inspected["Config"]["Labels"]["org.opencontainers.image.revision"] == RELEASE


# The build context (.dockerignore) is the same for every stack: one image, the smallest,
# is saved whole and every file of every layer read.
SECRET_SCAN_STACK = STACKS[0]


@pytest.mark.parametrize("stack", stack_params(lambda s: s == SECRET_SCAN_STACK))
def test_no_secret_reaches_any_layer(image: Image, tmp_path: Path) -> None:
    archive = tmp_path / "image.tar"
    podman("save", "--format=docker-archive", f"--output={archive}", image.tag, timeout=300)
    with tarfile.open(archive) as saved:
        for member in saved.getmembers():
            layer = saved.extractfile(member)
            if layer is None:
                continue
            if member.name.endswith(".tar"):
                with tarfile.open(fileobj=layer) as files:
                    names = files.getnames()
                    assert not [n for n in names if n.rsplit("/", 1)[-1] in LOCAL_SECRET_FILES]
                    for entry in files:
                        content = files.extractfile(entry) if entry.isfile() else None
                        if content is not None:
                            assert CANARY.encode() not in content.read(), entry.name
            else:
                assert CANARY.encode() not in layer.read(), member.name


# The same target for every stack: PostgreSQL's required URL, unreachable, is the hard case.
SMOKE_STACKS = (STACKS[1],)
SMOKE_IMAGE = ["make", "--no-print-directory", "smoke-image", "CONTAINER=podman"]


@pytest.mark.parametrize("stack", stack_params(lambda s: s in SMOKE_STACKS))
def test_make_smoke_image_what_ci_runs_passes_on_podman(image: Image, tmp_path: Path) -> None:
    """CI's image job: build, wait for /healthz inside the container, stop, exit 0."""
    project = tmp_path / "project"
    shutil.copytree(image.project, project, ignore=shutil.ignore_patterns(".venv", ".data"))
    tag = f"{image.tag}-smoke"
    try:
        with building():  # the target builds the image
            smoke = engine_command(
                # Under the template's own `make test`, make would also print the directories.
                [*SMOKE_IMAGE, f"IMAGE={tag}", f"RELEASE_ID={RELEASE}"],
                timeout=600,
                cwd=project,
            )
    finally:
        remove_images(tag)
    *_, healthz = smoke.stdout.split()
    assert json.loads(healthz) == {"status": "ok", "release": RELEASE}


COMPOSE_STACK = {"web_framework": "fastapi", "database": "sqlite", "worker": "none"}


@dataclass
class ComposeStack:
    project: Path
    name: str
    port: int
    started: dict[str, dict[str, Any]]  # each service's container state once web answered

    def compose(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        command = [PODMAN_COMPOSE, "--project-name", self.name, *args]
        return engine_command(command, 600, check, cwd=self.project, env={"RELEASE_ID": RELEASE})

    def states(self) -> dict[str, dict[str, Any]]:
        """Each service's container state, by service name."""
        label = f"--filter=label=io.podman.compose.project={self.name}"
        listed = json.loads(podman("ps", "--all", "--format=json", label).stdout)
        found = {}
        for entry in listed:
            details = inspect("container", entry["Id"])
            service = details["Config"]["Labels"].get("com.docker.compose.service")
            if service:  # not the pod's infra container
                found[service] = details["State"]
        return found


@pytest.fixture
def compose_stack(
    baked_project: Callable[..., Path], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ComposeStack]:
    """`podman-compose up --build` of the SQLite stack, its web on a free port; `down` after."""
    require_podman()
    ensure_base_images()
    project = tmp_path_factory.mktemp("compose") / "project"
    shutil.copytree(
        baked_project(**COMPOSE_STACK), project, ignore=shutil.ignore_patterns(".venv", ".data")
    )
    port = free_port()
    spec = yaml.safe_load((project / "compose.yaml").read_text())
    [mapping] = spec["services"]["web"]["ports"]
    spec["services"]["web"]["ports"] = [f"{port}:{mapping.split(':')[1]}"]  # 8000 may be taken
    (project / "compose.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    stack = ComposeStack(project, f"twelve-factor-test-{secrets.token_hex(4)}", port, {})
    try:
        with building():
            stack.compose("up", "--detach", "--build")
        wait_for(lambda: request(port, "GET", "/healthz")[0] == 200, "the compose web service")
        wait_for(lambda: stack.states()["release"]["Status"] == "exited", "the release to exit")
        stack.started = stack.states()
        yield stack
    finally:
        stack.compose("down", "--volumes", check=False)
        built = podman("images", "--format={{.Repository}}", f"--filter=reference=*{stack.name}*")
        remove_images(*built.stdout.split())


def events_in_order(stack: ComposeStack) -> list[str]:
    """Podman's events of the stack's containers, oldest first: "<status> <container>"."""
    return podman(
        "events",
        "--stream=false",
        f"--filter=label=io.podman.compose.project={stack.name}",
        "--format={{.Status}} {{.Name}}",
    ).stdout.splitlines()


@pytest.mark.xdist_group(stack_key(COMPOSE_STACK))
def test_compose_up_runs_the_release_first_serves_and_down_stops_everything_cleanly(
    compose_stack: ComposeStack,
) -> None:
    port = compose_stack.port
    assert request(port, "GET", "/healthz") == (200, {"status": "ok", "release": RELEASE})
    status, created = request(port, "POST", "/items", {"name": "composed"})
    assert status == 201, created
    assert request(port, "GET", f"/items/{created['id']}") == (200, created)
    release = compose_stack.started["release"]
    assert (release["Status"], release["ExitCode"]) == ("exited", 0)
    # The release's first run ended before web started. Not its last: podman-compose 1.6
    # creates web with `--requires` on release, and Podman starts a required container that
    # has exited again as it starts web: migrate runs a second time alongside web
    # (idempotent; Docker Compose runs it once).
    events = events_in_order(compose_stack)
    release_name, web_name = (f"{compose_stack.name}_{s}_1" for s in ("release", "web"))
    assert events.index(f"died {release_name}") < events.index(f"start {web_name}"), events

    compose_stack.compose("stop")
    stopped = compose_stack.states()
    assert {service: state["ExitCode"] for service, state in stopped.items()} == {
        "release": 0,
        "web": 0,
    }
    compose_stack.compose("down", "--volumes")
    assert compose_stack.states() == {}


KUBE_STACK = {"web_framework": "flask", "database": "postgresql", "worker": "celery"}
# What `podman kube play` (4.3) runs; the rest is validated only (tests/test_kubernetes.py).
PLAYABLE = {"ConfigMap", "Deployment"}
# slirp4netns shows the host's loopback to the pods at this address.
HOST_LOOPBACK = "10.0.2.2"


def kind(documents: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    return [document for document in documents if document["kind"] == name]


def write_env_file(path: Path, values: dict[str, str]) -> None:
    path.write_text("".join(f"{key}={value}\n" for key, value in values.items()))


def kustomize(directory: Path) -> list[dict[str, Any]]:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        missing("kubectl is not installed: the manifests are not rendered")
    built = subprocess.run(
        [kubectl, "kustomize", str(directory)], capture_output=True, text=True, check=True
    )
    return list(yaml.safe_load_all(built.stdout))


@pytest.fixture
def kube_manifests(
    images: Callable[[dict[str, str]], Image], cookies_session: Any, tmp_path: Path
) -> Iterator[tuple[Image, dict[str, str], Path]]:
    """The rendered manifests' playable part, the image pointed at the built one."""
    image = images(KUBE_STACK)
    server = require_backing_service("TEST_DATABASE_URL")
    redis = urlsplit(require_backing_service("TEST_REDIS_URL"))
    name = f"image_{secrets.token_hex(4)}"
    sql(image.project, server, f'CREATE DATABASE "{name}"')
    documents: list[dict[str, Any]] = []
    played = tmp_path / "played.yaml"
    try:
        directory = tmp_path / "kubernetes"
        baked = cookies_session.bake(extra_context={**KUBE_STACK, "use_kubernetes": True})
        assert baked.exit_code == 0, baked.exception
        shutil.copytree(baked.project_path / "deploy/kubernetes", directory)
        secret_env = {
            "DATABASE_URL": f"postgresql://postgres@{HOST_LOOPBACK}:5432/{name}",
            "REDIS_URL": f"redis://{HOST_LOOPBACK}:{redis.port or 6379}{redis.path}",
        }
        write_env_file(directory / "secret.env", secret_env)
        config = env_file(directory / "config.env") | {
            "WORKER_QUEUE": name,
            "GRACEFUL_TIMEOUT": str(GRACEFUL_TIMEOUT),
        }
        write_env_file(directory / "config.env", config)
        kustomization = yaml.safe_load((directory / "kustomization.yaml").read_text())
        [entry] = kustomization["images"]
        entry.update(newName=image.tag, newTag="latest")
        (directory / "kustomization.yaml").write_text(yaml.safe_dump(kustomization))
        documents.extend(kustomize(directory))
        for secret in kind(documents, "Secret"):
            # Podman 4.3 plays no Secret: it looks the name up in its own store, where it
            # wants the Secret's data as JSON (base64 values, unwrapped).
            data = {key: "".join(value.split()) for key, value in secret["data"].items()}
            podman("secret", "create", secret["metadata"]["name"], "-", input_text=json.dumps(data))
        played.write_text(yaml.safe_dump_all([d for d in documents if d["kind"] in PLAYABLE]))
        yield image, {**secret_env, "WORKER_QUEUE": name}, played
    finally:
        if played.exists():
            podman("kube", "down", str(played), check=False)
        for deployment in kind(documents, "Deployment"):
            # Left behind by a play that failed half-way, which `kube down` skips.
            pods = podman(
                "pod", "ps", "--quiet", f"--filter=name={deployment['metadata']['name']}-pod"
            )
            for pod in pods.stdout.split():
                podman("pod", "rm", "--force", pod, check=False)
        for secret in kind(documents, "Secret"):
            podman("secret", "rm", secret["metadata"]["name"], check=False)
        sql(image.project, server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


HTTP = """
import json, sys, urllib.request
request = urllib.request.Request("http://127.0.0.1:8000" + sys.argv[2], method=sys.argv[1])
with urllib.request.urlopen(request, timeout=10) as response:
    print(json.dumps([response.status, json.loads(response.read())]))
"""


def pod_containers() -> dict[str, str]:
    """The played pods' containers (not their infra containers) by process type."""
    listed = json.loads(podman("ps", "--all", "--pod", "--format=json").stdout)
    return {
        entry["PodName"].split("-pod")[0].rsplit("-", 1)[1]: entry["Names"][0]
        for entry in listed
        if entry.get("PodName") and not entry["IsInfra"] and "twelve" not in entry["Names"][0]
    }


def exec_http(container: str, method: str, path: str) -> tuple[int, Any]:
    """A request from inside the pod: the pod's port is not published on the host."""
    status, body = json.loads(podman("exec", container, "python", "-c", HTTP, method, path).stdout)
    return status, body


@pytest.mark.xdist_group(stack_key(KUBE_STACK))
def test_kube_play_runs_web_and_worker_with_their_config_and_secret(
    kube_manifests: tuple[Image, dict[str, str], Path],
) -> None:
    image, secret_env, played = kube_manifests
    # The release Job, as the one-off process it runs: kube play has no Jobs.
    local = secret_env["DATABASE_URL"].replace(HOST_LOOPBACK, "127.0.0.1")
    podman(
        "run",
        "--rm",
        "--network=host",
        f"--env=DATABASE_URL={local}",
        image.tag,
        image.slug,
        "migrate",
    )
    podman("kube", "play", "--network=slirp4netns:allow_host_loopback=true", str(played))
    containers = pod_containers()
    assert set(containers) == {"web", "worker"}
    web, worker = containers["web"], containers["worker"]
    wait_for(
        lambda: (
            podman("exec", web, "python", "-c", HTTP, "GET", "/healthz", check=False).returncode
            == 0
        ),
        "the web pod",
    )

    assert exec_http(web, "GET", "/healthz") == (200, {"status": "ok", "release": RELEASE})
    # The Secret's DATABASE_URL and REDIS_URL reach the machine's servers.
    assert exec_http(web, "GET", "/readyz")[0] == 200
    status, report = exec_http(web, "POST", "/reports")
    assert status == 202, report
    wait_for(
        lambda: exec_http(web, "GET", f"/reports/{report['id']}")[1]["status"] == "done",
        "the worker pod",
    )
    # Every process reads the ConfigMap (WORKER_QUEUE) and the Secret (DATABASE_URL).
    for name in (web, worker):
        config = podman("exec", name, image.slug, "check-config").stdout.splitlines()
        assert f"WORKER_QUEUE={secret_env['WORKER_QUEUE']}" in config
        assert "DATABASE_URL=postgresql://postgres@10.0.2.2:5432/" in "\n".join(config)
    for name in (web, worker):
        details = inspect("container", name)
        assert details["Config"]["User"].split(":")[0] == "10001"
        assert details["HostConfig"]["ReadonlyRootfs"] is True

    # As the kubelet does: the containers stop, each in its grace period, then the pod's
    # sandbox. Podman 4.3's `pod stop` stops the infra container, and with it the pod's
    # network, alongside the others (containers/podman#25169): the Celery worker's warm
    # shutdown then waits on Redis, unreachable, until it is killed.
    podman("stop", "--time", str(STOP_GRACE_SECONDS), web, worker, timeout=STOP_GRACE_SECONDS + 60)
    for name in (web, worker):
        assert inspect("container", name)["State"]["ExitCode"] == 0, podman("logs", name).stdout
    pods = {inspect("container", name)["Pod"] for name in (web, worker)}
    podman("pod", "stop", *pods)
