"""The real processes, started from the Procfile.

Port binding (VII), logs (XI) and disposability (IX), as a platform runs them.
"""

from __future__ import annotations

{%- if cookiecutter.web_framework == "flask" %}

import fcntl
import json
import os
import shlex
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import BinaryIO
{%- else %}

import contextlib
import os
import signal
import time
from pathlib import Path
{%- endif %}

import httpx2 as httpx
import pytest

from .processes import ServiceProcess, StartService

# Every test here starts real processes: `make test-fast` leaves the module out.
pytestmark = pytest.mark.processes

PACKAGE = "{{ cookiecutter.package_name }}"
# What each worker process logs as it stops, after closing what the app opened.
APP_STOPPED = "{% if cookiecutter.database != 'none' %}database pool closed{% else %}application stopped{% endif %}"
# What each worker process logs as it starts: {% if cookiecutter.web_framework == "flask" %}gunicorn's, as it boots{% else %}uvicorn's, once the app has started{% endif %}.
WORKER_STARTED = "{% if cookiecutter.web_framework == 'flask' %}Booting worker with pid{% else %}Application startup complete.{% endif %}"
# Workers started for a test to catch one in its first moments; it may start too fast once.
BOOT_ATTEMPTS = 5
{%- if cookiecutter.web_framework == "flask" %}
# The smallest pipe Linux makes: a few writes fill it.
PIPE_PAGE = 4096
# gunicorn's master logs this, then signals its workers to stop, within microseconds.
MASTER_STOPPING = b"Handling signal: term"
KILLED_AFTER_GRACE = "graceful shutdown exceeded"
{%- else %}
# How multiprocessing starts uvicorn's worker processes: in a new interpreter, with this argument.
SPAWNED_WORKER = b"--multiprocessing-fork"
# The most a stop may take here: GRACEFUL_TIMEOUT, and a margin for a busy machine.
STOP_TIMEOUT = 20
{%- endif %}


def test_web_serves_on_port_and_logs_json_lines(web: ServiceProcess) -> None:
    response = httpx.get(f"{web.url}/healthz", headers={"X-Request-ID": "probe-1"})
    assert response.status_code == 200
    assert response.headers["x-request-id"] == "probe-1"
    assert web.stop() == 0, web.output()

    events = web.json_lines()
    assert all({"timestamp", "level", "logger", "event"} <= set(event) for event in events)
    server_events = [event for event in events if not event["logger"].startswith(PACKAGE)]
    assert server_events, "the server's own lines are JSON too"
    access = [event for event in events if event.get("request_id") == "probe-1"]
    assert access == [
        {
            **access[0],
            "event": "request",
            "method": "GET",
            "path": "/healthz",
            "status": 200,
        }
    ]
    assert access[0]["duration_ms"] >= 0
    assert web.stderr == []
{%- if cookiecutter.database != "none" %}


def test_release_then_web_stores_and_reads_an_item(
    procfile: dict[str, str], start_service: StartService, service_env: dict[str, str]
) -> None:
    release = start_service(procfile["release"], service_env)
    assert release.wait() == 0, release.output()
    web = start_service(procfile["web"], service_env)
    web.wait_until_serving()

    created = httpx.post(f"{web.url}/items", json={"name": "bolt", "description": "M6"})
    assert created.status_code == 201
    read = httpx.get(f"{web.url}/items/{created.json()['id']}")
    assert read.json() == created.json()
    assert web.stop() == 0
    assert APP_STOPPED in {event["event"] for event in web.json_lines()}
{%- endif %}


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_stop_signal_exits_zero(web: ServiceProcess, signum: signal.Signals) -> None:
    assert web.stop(signum) == 0, web.output()
    assert APP_STOPPED in {event["event"] for event in web.json_lines()}


{%- if cookiecutter.web_framework == "flask" %}


def read_until(stream: BinaryIO, marker: bytes) -> bytes:
    read = b""
    while marker not in read:
        chunk = stream.read(PIPE_PAGE)
        assert chunk, f"the output ended before {marker!r}: {read!r}"
        read += chunk
    return read


def fill(read_end: int) -> None:
    """Write newlines into the pipe until no byte fits.

    Through an open file of the test's own: non-blocking for the test, not for the service.
    """
    pipe = os.open(f"/proc/self/fd/{read_end}", os.O_WRONLY | os.O_NONBLOCK)
    try:
        size = PIPE_PAGE
        while size:
            try:
                os.write(pipe, b"\n" * size)
            except BlockingIOError:
                size //= 2
    finally:
        os.close(pipe)


def worker_held_writing(master: int) -> int | None:
    """The master's one child, once it waits to write to its full stdout; None if it does not."""
    deadline = time.monotonic() + 1
    while time.monotonic() < deadline:
        children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
        if children and Path(f"/proc/{children[0]}/wchan").read_text().endswith("pipe_write"):
            return int(children[0])
        time.sleep(0.001)
    return None


def test_a_worker_stopped_before_it_sets_its_signal_handlers_stops(
    procfile: dict[str, str], service_env: dict[str, str], tmp_path: Path
) -> None:
    """The whole group signalled while a new gunicorn worker runs the master's handlers.

    gunicorn's master forks a worker, which logs its boot, then sets its own
    handlers. With stdout full the worker waits in that write; SIGSTOP keeps it
    there while the group's SIGTERM, then the master's, reach it. Once it runs
    on, it must stop, not serve until GRACEFUL_TIMEOUT is up and be killed.
    """
    env = {**service_env, "WEB_CONCURRENCY": "1", "GRACEFUL_TIMEOUT": "5"}
    for _ in range(BOOT_ATTEMPTS):
        read_end, write_end = os.pipe()
        fcntl.fcntl(write_end, fcntl.F_SETPIPE_SZ, PIPE_PAGE)
        master = subprocess.Popen(
            shlex.split(procfile["web"]),
            env=env,
            cwd=tmp_path,
            stdout=write_end,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        os.close(write_end)
        with os.fdopen(read_end, "rb", buffering=0) as stdout:
            try:
                read_until(stdout, b"Using worker")  # the master's last line before it forks
                fill(read_end)
                worker = worker_held_writing(master.pid)
                if worker is None:  # it wrote its boot line before stdout was full
                    continue
                os.kill(worker, signal.SIGSTOP)
                os.killpg(master.pid, signal.SIGTERM)
                output = [read_until(stdout, MASTER_STOPPING)]
                time.sleep(0.5)  # the master signals its workers
                os.kill(worker, signal.SIGCONT)
                reader = threading.Thread(target=lambda rest=output: rest.append(stdout.read()))
                reader.start()
                assert master.wait(timeout=60) == 0
                reader.join()
            finally:
                if master.poll() is None:
                    os.killpg(master.pid, signal.SIGKILL)
                    master.wait()
        lines = b"".join(output).splitlines()
        events = [json.loads(line)["event"] for line in lines if line.strip()]
        assert not any(KILLED_AFTER_GRACE in event for event in events), events
        assert events.count(APP_STOPPED) == 1, events
        return
    pytest.fail(f"no worker of {BOOT_ATTEMPTS} was caught before it set its signal handlers")
{%- else %}


def spawned_worker(supervisor: int) -> int | None:
    """The first worker process the supervisor starts, as soon as it exists."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        for child in Path(f"/proc/{supervisor}/task/{supervisor}/children").read_text().split():
            with contextlib.suppress(OSError):  # it ended meanwhile
                if SPAWNED_WORKER in Path(f"/proc/{child}/cmdline").read_bytes().split(b"\0"):
                    return int(child)
        time.sleep(0.001)
    return None


def test_a_group_stop_while_a_worker_starts_stops_at_once(
    procfile: dict[str, str], start_service: StartService, service_env: dict[str, str]
) -> None:
    """The whole group signalled while uvicorn's supervisor waits on a worker still starting.

    The supervisor checks its workers' health in turn, waiting for each answer,
    and handles its signals between checks. SIGSTOP holds a new worker before it
    can answer; the group's SIGTERM reaches it there, and it ends on it once it
    runs on. The supervisor must then stop with the other worker, within the
    grace period: not wait out its health check (30 s), nor start a new worker.
    """
    env = {**service_env, "WEB_CONCURRENCY": "2", "GRACEFUL_TIMEOUT": "5"}
    for _ in range(BOOT_ATTEMPTS):
        web = start_service(procfile["web"], env)
        worker = spawned_worker(web.process.pid)
        assert worker is not None, web.output()
        os.kill(worker, signal.SIGSTOP)
        if len(list(Path(f"/proc/{worker}/task").iterdir())) > 1:  # its threads run: too late
            os.killpg(web.process.pid, signal.SIGKILL)
            web.wait()
            continue
        web.wait_until_serving(timeout=60)  # the other worker
        time.sleep(1)  # the supervisor checks every 0.5 s: it waits on the held worker now
        web.signal_group(signal.SIGTERM)
        os.kill(worker, signal.SIGCONT)
        assert web.wait(timeout=STOP_TIMEOUT) == 0, web.output()
        events = [event["event"] for event in web.json_lines()]
        assert not any(event.endswith("died") for event in events), events  # none restarted
        assert events.count(APP_STOPPED) == 1, events
        return
    pytest.fail(f"no worker of {BOOT_ATTEMPTS} was caught before its threads started")
{%- endif %}


def test_web_concurrency_starts_that_many_workers(
    procfile: dict[str, str], start_service: StartService, service_env: dict[str, str]
) -> None:
    web = start_service(procfile["web"], {**service_env, "WEB_CONCURRENCY": "2"})
    web.wait_until_serving()
    # A new connection per request, as from separate clients; one Client loads the CAs once.
    with httpx.Client(limits=httpx.Limits(max_keepalive_connections=0)) as client:
        assert all(client.get(f"{web.url}/healthz").status_code == 200 for _ in range(10))
    assert web.stop() == 0, web.output()
    events = [event["event"] for event in web.json_lines()]
    assert events.count(APP_STOPPED) == 2, "each worker process ran the app and stopped it"


def test_bad_config_stops_web_before_it_binds(
    procfile: dict[str, str], start_service: StartService, service_env: dict[str, str]
) -> None:
    web = start_service(procfile["web"], {**service_env, "WEB_CONCURRENCY": "many"})
    assert web.wait() != 0
    [line] = web.stderr
    assert line.startswith("config error: WEB_CONCURRENCY='many': Input should be a valid integer")
    assert web.stdout == []
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{web.url}/healthz")
