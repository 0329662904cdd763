"""Build, release, run (V): `release` migrates the schema, idempotently and safely in parallel."""

from __future__ import annotations

import json
import shlex
import subprocess
from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect, text

from {{ cookiecutter.package_name }}.cli import EXIT_CONFIG
from {{ cookiecutter.package_name }}.db import engine_url

from .processes import StartService

# Every test here starts real processes: `make test-fast` leaves the module out.
pytestmark = pytest.mark.processes


def tables(database_url: str) -> set[str]:
    engine = create_engine(engine_url(database_url))
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_release_creates_the_schema_and_can_run_again(
    procfile: dict[str, str],
    start_service: StartService,
    service_env: dict[str, str],
    empty_database_url: str,
) -> None:
    env = {**service_env, "DATABASE_URL": empty_database_url}
    for _ in range(2):
        release = start_service(procfile["release"], env)
        assert release.wait() == 0, release.output()
        assert release.stderr == []
        assert any(
            event["event"] == "database schema is up to date" for event in release.json_lines()
        )
    assert {"items", "alembic_version"} <= tables(empty_database_url)


def test_concurrent_releases_apply_the_schema_once(
    procfile: dict[str, str],
    start_service: StartService,
    service_env: dict[str, str],
    empty_database_url: str,
) -> None:
    if not empty_database_url.startswith("postgresql"):
        pytest.skip("concurrent migrations are locked on PostgreSQL; set TEST_DATABASE_URL")
    env = {**service_env, "DATABASE_URL": empty_database_url}
    releases = [start_service(procfile["release"], env) for _ in range(3)]
    assert [release.wait() for release in releases] == [0, 0, 0]
    upgraders = [
        release
        for release in releases
        if any(event["event"].startswith("Running upgrade") for event in release.json_lines())
    ]
    assert len(upgraders) == 1
    engine = create_engine(engine_url(empty_database_url))
    with engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM alembic_version")).scalar() == 1
    engine.dispose()


def test_release_against_an_unreachable_database_fails_in_one_line(
    procfile: dict[str, str], service_env: dict[str, str], unused_port: int
) -> None:
    env = {**service_env, "DATABASE_URL": f"postgresql://app:s3cret-pw@127.0.0.1:{unused_port}/app"}
    result = subprocess.run(
        shlex.split(procfile["release"]),
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    [event] = [json.loads(line) for line in result.stdout.splitlines()]
    assert event["level"] == "error"
    assert event["event"] == "migration failed: database unavailable"
    assert "s3cret-pw" not in result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr


def unusable_sqlite_url(case: str, root: Path) -> str:
    if case == "a-directory":
        return f"sqlite:///{root}"
    (root / "file").write_text("")
    return f"sqlite:///{root / 'file' / 'data' / 'app.sqlite3'}"


@pytest.mark.parametrize(
    ("process", "case"),
    [("release", "a-directory"), ("release", "under-a-file"), ("web", "under-a-file")],
)
def test_an_unusable_sqlite_path_is_refused_at_start_in_one_line(
    procfile: dict[str, str], service_env: dict[str, str], tmp_path: Path, process: str, case: str
) -> None:
    env = {**service_env, "DATABASE_URL": unusable_sqlite_url(case, tmp_path)}
    result = subprocess.run(
        shlex.split(procfile[process]),
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == EXIT_CONFIG, result.stdout + result.stderr
    assert result.stdout == ""
    [line] = result.stderr.splitlines()
    assert line.startswith("config error: DATABASE_URL: ")
