"""Concurrency (VIII): the worker process builds the reports the web process queues.

Real processes from the Procfile and a real Redis (TEST_REDIS_URL), each test
with a queue of its own. To hold a job in hand, a test locks the job's report
row in PostgreSQL: the job waits on the lock until the test lets go.
"""

from __future__ import annotations

import signal
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any

import httpx2 as httpx
import pytest
from pydantic import SecretStr
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.orm import Session

from {{ cookiecutter.package_name }} import reports
from {{ cookiecutter.package_name }}.cli import EXIT_CONFIG
from {{ cookiecutter.package_name }}.db import create_database_engine, engine_url
from {{ cookiecutter.package_name }}.settings import Settings
from {{ cookiecutter.package_name }}.tables import Report

from .conftest import app_client
from .processes import ServiceProcess, StartService, wait_for

ITEMS = [
    {"name": "hex bolt", "description": "M6, zinc plated"},
    {"name": "washer"},
]
EXPECTED_COUNTS = {"item_count": 2, "word_count": 2 + 3 + 1}
# The `hold_job` fixture: `with hold_job() as worker:` the worker has the job in hand.
HoldJob = Callable[[], AbstractContextManager[ServiceProcess]]
{%- if cookiecutter.worker == "celery" %}
# The surviving worker hands on jobs unacknowledged for a second (it looks every 10 s).
REDELIVERY = {"WORKER_VISIBILITY_TIMEOUT": "1"}
{%- else %}
# The surviving worker sweeps every second; RQ abandons a job 65 s after its heartbeat.
REDELIVERY = {"WORKER_MAINTENANCE_INTERVAL": "1"}
{%- endif %}


def report_status(base_url: str, report_id: int) -> dict[str, Any]:
    response = httpx.get(f"{base_url}/reports/{report_id}")
    assert response.status_code == 200
    body: dict[str, Any] = response.json()
    return body


def report_done(base_url: str, report_id: int) -> dict[str, Any] | None:
    body = report_status(base_url, report_id)
    return body if body["status"] == "done" else None


@pytest.mark.processes
@pytest.mark.usefixtures("redis_url")
def test_release_web_and_worker_build_a_report(
    procfile: dict[str, str],
    start_service: StartService,
    service_env: dict[str, str],
    empty_database_url: str,
) -> None:
    env = {**service_env, "DATABASE_URL": empty_database_url}
    release = start_service(procfile["release"], env)
    assert release.wait() == 0, release.output()
    web = start_service(procfile["web"], env)
    worker = start_service(procfile["worker"], env)
    web.wait_until_serving()
    for item in ITEMS:
        assert httpx.post(f"{web.url}/items", json=item).status_code == 201

    queued = httpx.post(f"{web.url}/reports")
    assert queued.status_code == 202
    report = queued.json()
    assert queued.headers["location"] == f"/reports/{report['id']}"
    assert report["status"] == "queued"
    assert report["item_count"] is None

    done = wait_for(lambda: report_done(web.url, report["id"]), "done")
    assert {key: done[key] for key in EXPECTED_COUNTS} == EXPECTED_COUNTS
    assert done["finished_at"] >= done["created_at"]
    assert worker.stop() == 0, worker.output()
    assert web.stop() == 0, web.output()
    events = worker.json_lines()
    assert any(event["event"] == "report done" for event in events)
    assert any(event["logger"].startswith("{{ cookiecutter.worker }}") for event in events), (
        "the library's own lines are JSON too"
    )
    assert worker.stderr == []


def test_building_a_report_twice_gives_the_same_report(settings: Settings) -> None:
    engine = create_database_engine(settings)
    with Session(engine) as session:
        queued: list[int] = []
        report = reports.request_report(session, queued.append)
        assert queued == [report.id]
        reports.build_report(session, report.id)
        first = reports.get_report(session, report.id)
        reports.build_report(session, report.id)
        assert reports.get_report(session, report.id) == first
    engine.dispose()
    assert first is not None
    assert first.status == "done"


def test_unknown_report_is_404(client: httpx.Client) -> None:
    response = client.get("/reports/2147483647")
    assert response.status_code == 404
    assert response.json() == {"detail": "report 2147483647 not found"}


@pytest.mark.parametrize("report_id", ["0", "-1", "abc", "2147483648"])
def test_impossible_report_id_is_422(client: httpx.Client, report_id: str) -> None:
    assert client.get(f"/reports/{report_id}").status_code == 422


@pytest.fixture
def client_without_broker(settings: Settings, unused_port: int) -> Iterator[httpx.Client]:
    url = f"redis://:s3cret-pw@127.0.0.1:{unused_port}/0"
    with app_client(settings.model_copy(update={"redis_url": SecretStr(url)})) as test_client:
        yield test_client


def count_reports(settings: Settings) -> int:
    engine = create_database_engine(settings)
    with Session(engine) as session:
        count = session.scalar(select(func.count()).select_from(Report)) or 0
    engine.dispose()
    return count


def test_broker_outage_is_503_on_readyz_and_stores_no_report(
    client_without_broker: httpx.Client, settings: Settings
) -> None:
    ready = client_without_broker.get("/readyz")
    assert ready.status_code == 503
    assert ready.json()["checks"]["database"] == "ok"
    assert ready.json()["checks"]["broker"].startswith("ConnectionError")
    assert "s3cret-pw" not in ready.text

    before = count_reports(settings)
    response = client_without_broker.post("/reports")
    assert response.status_code == 503
    assert response.json() == {"detail": "broker unavailable"}
    assert count_reports(settings) == before


@pytest.mark.processes
def test_bad_config_stops_the_worker_before_it_starts(
    procfile: dict[str, str], start_service: StartService, service_env: dict[str, str]
) -> None:
    worker = start_service(procfile["worker"], {**service_env, "REDIS_URL": "http://cache"})
    assert worker.wait() == EXIT_CONFIG
    [line] = worker.stderr
    assert line.startswith("config error: REDIS_URL: scheme http:// is not one of redis://")
    assert worker.stdout == []

{%- if cookiecutter.worker == "rq" %}


@pytest.mark.processes
def test_unreachable_broker_stops_the_worker_with_one_line(
    procfile: dict[str, str],
    start_service: StartService,
    service_env: dict[str, str],
    unused_port: int,
) -> None:
    url = f"redis://:s3cret-pw@127.0.0.1:{unused_port}/0"
    worker = start_service(procfile["worker"], {**service_env, "REDIS_URL": url})
    assert worker.wait() == 1
    [event] = worker.json_lines()
    assert event["level"] == "error"
    assert event["event"] == "worker stopped: Redis unavailable"
    assert worker.stderr == []
    assert "s3cret-pw" not in worker.output()
{%- endif %}


@pytest.fixture
def silent_broker_url() -> Iterator[str]:
    """A Redis URL whose server accepts connections and never answers."""
    with socket.create_server(("127.0.0.1", 0)) as server:
        yield f"redis://127.0.0.1:{server.getsockname()[1]}/0"


def test_silent_broker_is_503_not_a_hung_request(
    settings: Settings, silent_broker_url: str
) -> None:
    silent = settings.model_copy(update={"redis_url": SecretStr(silent_broker_url)})
    with app_client(silent) as client:
        response = client.post("/reports")
    assert response.status_code == 503
    assert response.json() == {"detail": "broker unavailable"}


@contextmanager
def report_row_locked(database_url: str, report_id: int) -> Iterator[None]:
    """Hold the report's row lock: its job blocks on its first write until this ends."""
    engine = create_engine(engine_url(database_url))
    with engine.connect() as connection:
        connection.execute(
            text("SELECT id FROM reports WHERE id = :id FOR UPDATE"), {"id": report_id}
        )
        yield
        connection.rollback()
    engine.dispose()


def job_waiting_on_lock(database_url: str) -> bool:
    engine = create_engine(engine_url(database_url))
    with engine.connect() as connection:
        waiting = connection.scalar(
            text(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )
        )
    engine.dispose()
    return bool(waiting)


@pytest.fixture
def postgresql_url(settings: Settings) -> str:
    url = settings.database_url.get_secret_value()
    if not url.startswith("postgresql"):
        pytest.skip("a job is held in hand by a PostgreSQL row lock; set TEST_DATABASE_URL")
    return url


@pytest.fixture
def queued_report(web: ServiceProcess) -> int:
    """A report queued through the web process, before any worker runs."""
    response = httpx.post(f"{web.url}/reports")
    assert response.status_code == 202
    report_id: int = response.json()["id"]
    return report_id


@pytest.fixture
def hold_job(
    procfile: dict[str, str],
    start_service: StartService,
    service_env: dict[str, str],
    postgresql_url: str,
    queued_report: int,
) -> HoldJob:
    """Start a worker and keep the queued report's job in its hands until the block ends."""

    @contextmanager
    def held() -> Iterator[ServiceProcess]:
        with report_row_locked(postgresql_url, queued_report):
            worker = start_service(procfile["worker"], service_env)
            wait_for(lambda: job_waiting_on_lock(postgresql_url), "holding the job", timeout=60)
            yield worker

    return held


@pytest.mark.processes
@pytest.mark.usefixtures("redis_url")
def test_sigterm_lets_the_job_in_hand_finish(
    hold_job: HoldJob, web: ServiceProcess, queued_report: int
) -> None:
    with hold_job() as worker:
        worker.process.send_signal(signal.SIGTERM)
        time.sleep(0.5)
        assert worker.process.poll() is None, "exited with a job in hand"
    assert worker.wait() == 0, worker.output()
    assert report_status(web.url, queued_report)["status"] == "done"
    assert worker.stderr == []


@pytest.mark.processes
@pytest.mark.usefixtures("redis_url")
def test_job_of_a_killed_worker_is_run_by_another(
    hold_job: HoldJob,
    procfile: dict[str, str],
    start_service: StartService,
    service_env: dict[str, str],
    web: ServiceProcess,
    queued_report: int,
) -> None:
    with hold_job() as doomed:
        doomed.kill_with_children()
    assert report_status(web.url, queued_report)["status"] != "done"

    survivor = start_service(procfile["worker"], {**service_env, **REDELIVERY})
    done = wait_for(lambda: report_done(web.url, queued_report), "redelivered", timeout=150)
    assert done["item_count"] is not None
    assert survivor.stop() == 0, survivor.output()
