"""Disposability (IX): SIGTERM under steady load loses no request the kernel accepted.

Clients loop on requests, each on a new connection, while the web process is
stopped. A connection that is refused, or whose connect times out because its
SYN went unanswered, was never accepted: a client or load balancer retries it
elsewhere. A connection that was accepted and then reset, or closed without a
response, is a lost request.
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

from .processes import COLD_START, StartService
from .test_processes import APP_STOPPED

# Every test here starts real processes: `make test-fast` leaves the module out.
pytestmark = pytest.mark.processes

CLIENTS = 24
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


@contextmanager
def steady_load(port: int) -> Iterator[list[str]]:
    """CLIENTS threads sending requests one after another; yields their outcomes so far."""
    outcomes: list[str] = []  # list.append is atomic: no lock needed
    stopping = threading.Event()

    def client() -> None:
        while not stopping.is_set():
            for path in PATHS:
                outcomes.append(request(port, path))

    clients = [threading.Thread(target=client, daemon=True) for _ in range(CLIENTS)]
    for thread in clients:
        thread.start()
    try:
        deadline = time.monotonic() + 60
        while outcomes.count(ANSWERED) < STEADY_LOAD and time.monotonic() < deadline:
            time.sleep(0.05)
        yield outcomes
    finally:
        stopping.set()
        for thread in clients:
            thread.join(CONNECT_TIMEOUT + RESPONSE_TIMEOUT)


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
    web.wait_until_serving(timeout=60)  # two workers starting on a busy machine
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
    assert set(tally) <= {ANSWERED, REFUSED}, tally
    # Each worker closed its pools and its log lines got out, though it skips the teardown.
    events = [event["event"] for event in web.json_lines()]
    assert events.count(APP_STOPPED) == workers, web.output()
