"""Admin processes (XII): one-off commands share the web process's settings and code."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from {{ cookiecutter.package_name }}.cli import COMMANDS, EXIT_CONFIG, main

from .test_settings import BAD_VALUES

PROJECT_ROOT = Path(__file__).resolve().parents[1]
COMMAND = "{{ cookiecutter.project_slug }}"
BAD_VARIABLES = {
    "PORT": "eighty",
    "LOG_FORMAT": "xml",
{%- if cookiecutter.database != "none" %}
    "DATABASE_URL": "mysql://app:s3cret-pw@db/app",
{%- endif %}
{%- if cookiecutter.worker != "none" %}
    "REDIS_URL": "http://:s3cret-pw@cache:6379/0",
{%- endif %}
}


def run(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [COMMAND, *args], env=env, capture_output=True, text=True, timeout=60, check=False
    )


@pytest.mark.processes
def test_check_config_prints_the_effective_config(service_env: dict[str, str]) -> None:
    result = run("check-config", env={**service_env, "LOG_LEVEL": "warning"})
    assert result.returncode == 0, result.stderr
    config = dict(line.split("=", 1) for line in result.stdout.splitlines())
    assert config["PORT"] == service_env["PORT"]
    assert config["LOG_LEVEL"] == "WARNING"
{%- if cookiecutter.database != "none" %}


@pytest.mark.processes
def test_check_config_masks_secrets(service_env: dict[str, str]) -> None:
    url = "postgresql://app:s3cret-pw@db.internal:5432/app"
    result = run("check-config", env={**service_env, "DATABASE_URL": url})
    assert result.returncode == 0, result.stderr
    assert "DATABASE_URL=postgresql://app:***@db.internal:5432/app" in result.stdout.splitlines()
    assert "s3cret-pw" not in result.stdout


@pytest.mark.processes
def test_check_config_reads_secret_files_masked(
    service_env: dict[str, str], tmp_path: Path
) -> None:
    """A secret mounted as a file (Docker, Kubernetes) is read, masked like any other."""
    (tmp_path / "database_url").write_text("postgresql://app:s3cret-pw@db.internal:5432/app\n")
    env = {**service_env, "SECRETS_DIR": str(tmp_path)}
    del env["DATABASE_URL"]
    result = run("check-config", env=env)
    assert result.returncode == 0, result.stderr
    assert "DATABASE_URL=postgresql://app:***@db.internal:5432/app" in result.stdout.splitlines()
    assert "s3cret-pw" not in result.stdout + result.stderr
{%- endif %}


@pytest.mark.processes
def test_secrets_dir_that_is_no_directory_is_a_config_error(
    service_env: dict[str, str], tmp_path: Path
) -> None:
    missing = tmp_path / "no-such-dir"
    result = run("check-config", env={**service_env, "SECRETS_DIR": str(missing)})
    assert result.returncode == EXIT_CONFIG
    assert result.stderr.splitlines() == [
        f"config error: SECRETS_DIR={str(missing)!r}: must be a directory of secret files"
    ]


@pytest.mark.processes
def test_bad_config_exits_non_zero_with_one_line_per_variable(service_env: dict[str, str]) -> None:
    env = {**service_env, **BAD_VARIABLES}
    result = run("check-config", env=env)
    assert result.returncode == EXIT_CONFIG
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    named = [line.removeprefix("config error: ").split("=")[0].split(":")[0] for line in lines]
    assert sorted(named) == sorted(BAD_VARIABLES)
    assert all(line.startswith("config error: ") for line in lines)
    assert "Traceback" not in result.stderr
    assert "s3cret-pw" not in result.stderr


# Each bad value's line is checked in-process (test_settings.py). Through a real process,
# one per service command shows the way from the environment to the exit: one line, no
# traceback. Values holding a password go first, so that a process shows it masks them.
SERVICE_COMMANDS = [name for name in COMMANDS if name != "check-config"]
SECRETS_FIRST = sorted(BAD_VALUES.items(), key=lambda item: "s3cret-pw" not in item[1][1])
BAD_VALUE_RUNS = [
    pytest.param(command, *case, id=f"{command}-{key}")
    for command, (key, case) in zip(SERVICE_COMMANDS, SECRETS_FIRST, strict=False)
]


@pytest.mark.processes
@pytest.mark.parametrize(("command", "name", "value", "line"), BAD_VALUE_RUNS)
def test_bad_value_stops_the_process_with_its_line(
    service_env: dict[str, str], command: str, name: str, value: str, line: str
) -> None:
    result = run(command, env={**service_env, name: value})
    assert result.returncode == EXIT_CONFIG, result.stdout + result.stderr
    assert result.stdout == ""
    [error] = result.stderr.splitlines()
    assert error.startswith(f"config error: {line}")
    assert "s3cret-pw" not in error


def test_env_example_command_writes_the_committed_file(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["env-example"]) == 0
    assert capsys.readouterr().out == (PROJECT_ROOT / ".env.example").read_text()


@pytest.mark.processes
def test_module_entry_point_is_the_same_command() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "{{ cookiecutter.package_name }}", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0
    assert "check-config" in result.stdout


def test_unknown_command_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as raised:
        main(["launch"])
    assert raised.value.code == 2
    assert "invalid choice: 'launch'" in capsys.readouterr().err
