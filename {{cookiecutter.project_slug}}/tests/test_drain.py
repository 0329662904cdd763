"""Disposability (IX): SIGTERM drains the requests in flight, within GRACEFUL_TIMEOUT.

A POST whose body arrives slowly is a request in flight that the test controls.
"""

from __future__ import annotations

import json
import signal
import socket
import time

import pytest

from .processes import ServiceProcess, StartService

# Every test here starts real processes: `make test-fast` leaves the module out.
pytestmark = pytest.mark.processes


def start_request_in_flight(web: ServiceProcess) -> tuple[socket.socket, bytes]:
    """Send a request's headers and half its body; return the socket and the rest of the body."""
    body = json.dumps({"name": "in flight"}).encode()
    connection = socket.create_connection(("127.0.0.1", web.port), timeout=30)
    connection.sendall(
        b"POST /items HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
        + f"Content-Length: {len(body)}\r\n\r\n".encode()
        + body[:5]
    )
    time.sleep(0.2)  # let the server start handling it
    return connection, body[5:]


def test_sigterm_lets_the_request_in_flight_finish(web: ServiceProcess) -> None:
    connection, rest = start_request_in_flight(web)
    with connection:
        web.process.send_signal(signal.SIGTERM)
        time.sleep(0.5)
        assert web.process.poll() is None, "exited with a request in flight"
        connection.sendall(rest)
        response = connection.recv(65536).decode()
    assert response.startswith("HTTP/1.1 201"), response
    assert web.wait() == 0, web.output()


def test_graceful_timeout_bounds_the_drain(
    procfile: dict[str, str], start_service: StartService, service_env: dict[str, str]
) -> None:
    web = start_service(procfile["web"], {**service_env, "GRACEFUL_TIMEOUT": "1"})
    web.wait_until_serving()
    connection, _ = start_request_in_flight(web)  # and never finished
    with connection:
        assert web.stop(timeout=15) == 0, web.output()
    assert any("graceful shutdown exceeded" in event["event"] for event in web.json_lines())
