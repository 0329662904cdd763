"""Disposability (IX): SIGTERM under steady load loses no request the kernel accepted.

Clients loop on requests while the web process is stopped: most on a new
connection each, some on keep-alive connections. A connection that is refused,
or whose connect times out because its SYN went unanswered, was never
accepted: a client or load balancer retries it elsewhere. A connection that
was accepted and then reset, or closed without a response, is a lost request.
The one exception is a reused keep-alive connection that the server closes
while it is idle: a request the client sends at that moment crosses the close,
which no server can prevent, so HTTP lets the client retry it (RFC 9112, 9.3.1).
"""

from __future__ import annotations

import http.client
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest

from .processes import COLD_START, ServiceProcess, StartService, wait_for
from .test_processes import APP_STOPPED, WORKER_STARTED

# Every test here starts real processes: `make test-fast` leaves the module out.
pytestmark = pytest.mark.processes

CLIENTS = 24
# Of those, clients sending their requests on keep-alive connections.
KEEP_ALIVE_CLIENTS = 6
GRACEFUL_TIMEOUT = 10
# Beyond the grace period: for a machine busy with other test runs.
EXIT_MARGIN = 10
# Answered requests before the signal: the load is steady by then.
STEADY_LOAD = 300
# A connect that outlasts this had its SYN dropped: the service refused it.
CONNECT_TIMEOUT = 2.0
RESPONSE_TIMEOUT = 30.0
# A client waits this long after a refusal, as clients back off: no busy loop.
RETRY_DELAY = 0.05
# Path -> the status it answers; every path is asked in turn by every client.
PATHS = {
    "/healthz": 200,
{%- if cookiecutter.database != "none" %}
    "/items/2147483647": 404,  # a database query that finds nothing
{%- endif %}
}
ANSWERED = "answered"
REFUSED = "refused"
# A reused keep-alive connection closed by the server before any byte of the response.
CLOSED_IDLE = "closed while idle"
# Platforms stop a service by signalling its whole process group: a stop takes these rounds.
GROUP_STOP_ROUNDS = 3


def request(port: int, path: str) -> str:
    """One GET on a new connection: ANSWERED, REFUSED, or how it was lost."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=CONNECT_TIMEOUT)
    try:
        connection.connect()
    except OSError:  # refused, or the SYN was dropped: never accepted
        time.sleep(RETRY_DELAY)
        return REFUSED
    try:
        assert connection.sock is not None
        connection.sock.settimeout(RESPONSE_TIMEOUT)
        # The server closes first, so client ports do not pile up in TIME_WAIT.
        connection.request("GET", path, headers={"Connection": "close"})
        response = connection.getresponse()
        response.read()
    except (OSError, http.client.HTTPException) as exc:
        return f"lost: {type(exc).__name__}"
    finally:
        connection.close()
    return ANSWERED if response.status == PATHS[path] else f"answered {response.status}"


def keep_alive_requests(port: int, stopping: threading.Event) -> Iterator[str]:
    """GETs on one keep-alive connection until it closes or `stopping` is set; their outcomes."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=CONNECT_TIMEOUT)
    try:
        connection.connect()
    except OSError:
        time.sleep(RETRY_DELAY)
        yield REFUSED
        return
    assert connection.sock is not None
    connection.sock.settimeout(RESPONSE_TIMEOUT)
    reused = False
    try:
        while not stopping.is_set():
            for path in PATHS:
                try:
                    connection.request("GET", path)
                    response = connection.getresponse()
                except ConnectionError:  # reset, broken pipe, or closed (RemoteDisconnected)
                    yield CLOSED_IDLE if reused else "lost: closed before the first response"
                    return
                except (OSError, http.client.HTTPException) as exc:
                    yield f"lost: {type(exc).__name__}"
                    return
                try:
                    response.read()
                except (OSError, http.client.HTTPException) as exc:
                    yield f"lost in the response: {type(exc).__name__}"
                    return
                yield ANSWERED if response.status == PATHS[path] else f"answered {response.status}"
                if response.will_close:  # the server said `Connection: close`
                    return
                reused = True
    finally:
        connection.close()


def wait_until_every_worker_serves(web: ServiceProcess, workers: int) -> None:
    """Serving on the port is one worker's doing: the stop must find all of them started.

    (A worker still starting when the group is stopped ends on the signal:
    test_processes.py proves that stop.)
    """
    web.wait_until_serving(timeout=60)  # two workers starting on a busy machine

    def every_worker_started() -> bool:
        events: list[str] = [event["event"] for event in web.json_lines()]
        return sum(event.startswith(WORKER_STARTED) for event in events) == workers

    wait_for(every_worker_started, f"{workers} workers started", timeout=60)


@contextmanager
def steady_load(port: int, answered: int = STEADY_LOAD) -> Iterator[list[str]]:
    """CLIENTS threads sending requests one after another; yields their outcomes so far.

    It yields once `answered` requests were answered: the load is steady by then.
    """
    outcomes: list[str] = []  # list.append is atomic: no lock needed
    stopping = threading.Event()

    def client() -> None:
        while not stopping.is_set():
            for path in PATHS:
                outcomes.append(request(port, path))

    def keep_alive_client() -> None:
        while not stopping.is_set():
            outcomes.extend(keep_alive_requests(port, stopping))

    clients = [
        threading.Thread(
            target=keep_alive_client if index < KEEP_ALIVE_CLIENTS else client, daemon=True
        )
        for index in range(CLIENTS)
    ]
    for thread in clients:
        thread.start()
    try:
        deadline = time.monotonic() + 60
        while outcomes.count(ANSWERED) < answered and time.monotonic() < deadline:
            time.sleep(0.05)
        yield outcomes
    finally:
        stopping.set()
        for thread in clients:
            thread.join(CONNECT_TIMEOUT + RESPONSE_TIMEOUT)
        assert not any(thread.is_alive() for thread in clients), "a client hung"


@pytest.mark.parametrize("workers", [1, 2], ids=["one-worker", "two-workers"])
def test_sigterm_under_load_loses_no_accepted_request(
    procfile: dict[str, str],
    start_service: StartService,
    service_env: dict[str, str],
    record_property: Callable[[str, object], None],
    workers: int,
) -> None:
    env = {
        **service_env,
        "GRACEFUL_TIMEOUT": str(GRACEFUL_TIMEOUT),
        "WEB_CONCURRENCY": str(workers),
    }
    web = start_service(procfile["web"], env)
    wait_until_every_worker_serves(web, workers)
    record_property(COLD_START, web.cold_start)
    with steady_load(web.port) as outcomes:
        answered_before = outcomes.count(ANSWERED)
        signalled = time.monotonic()
        web.process.send_signal(signal.SIGTERM)
        # Load goes on until the process is gone: every request meanwhile counts.
        returncode = web.wait(timeout=GRACEFUL_TIMEOUT + EXIT_MARGIN)
        record_property("stop_seconds", time.monotonic() - signalled)
    tally = Counter(outcomes)
    record_property("outcomes", dict(tally))
    assert answered_before >= STEADY_LOAD, tally
    assert returncode == 0, web.output()
    assert set(tally) <= {ANSWERED, REFUSED, CLOSED_IDLE}, tally
    # Each worker closed its pools and its log lines got out, though it skips the teardown.
    events = [event["event"] for event in web.json_lines()]
    assert events.count(APP_STOPPED) == workers, web.output()


@pytest.mark.parametrize("workers", [1, 2], ids=["one-worker", "two-workers"])
def test_sigterm_to_the_process_group_under_load_loses_no_accepted_request(
    procfile: dict[str, str],
    start_service: StartService,
    service_env: dict[str, str],
    workers: int,
) -> None:
    """As systemd, Heroku, honcho and dumb-init stop a service: SIGTERM to every process at once.

    The server's worker processes then start their own stop at the same moment
    as the process that supervises them: the listening socket they share must
    still hand over its backlog. Races show in some runs only: several rounds.
    """
    env = {
        **service_env,
        "GRACEFUL_TIMEOUT": str(GRACEFUL_TIMEOUT),
        "WEB_CONCURRENCY": str(workers),
    }
    for round_ in range(GROUP_STOP_ROUNDS):
        web = start_service(procfile["web"], env)
        wait_until_every_worker_serves(web, workers)
        with steady_load(web.port, STEADY_LOAD // GROUP_STOP_ROUNDS) as outcomes:
            web.signal_group(signal.SIGTERM)
            returncode = web.wait(timeout=GRACEFUL_TIMEOUT + EXIT_MARGIN)
        tally = Counter(outcomes)
        assert returncode == 0, (round_, web.output())
        assert set(tally) <= {ANSWERED, REFUSED, CLOSED_IDLE}, (round_, tally)
        events = [event["event"] for event in web.json_lines()]
        assert events.count(APP_STOPPED) == workers, web.output()
