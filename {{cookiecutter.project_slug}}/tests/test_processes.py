"""The real processes, started from the Procfile.

Port binding (VII), logs (XI) and disposability (IX), as a platform runs them.
"""

from __future__ import annotations

import signal

import httpx2 as httpx
import pytest

from .processes import ServiceProcess, StartService

# Every test here starts real processes: `make test-fast` leaves the module out.
pytestmark = pytest.mark.processes

PACKAGE = "{{ cookiecutter.package_name }}"
# What each worker process logs as it stops, after closing what the app opened.
APP_STOPPED = "{% if cookiecutter.database != 'none' %}database pool closed{% else %}application stopped{% endif %}"


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
