"""The feature table: each option value owns its paths; unchosen values' paths are pruned."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from .conftest import DEFAULT_ANSWERS, TEMPLATE, bake_on_command_line, option_values
from .hooks import post_gen

PROJECT_TEMPLATE = TEMPLATE / "{{cookiecutter.project_slug}}"


def template_path(path: str) -> Path:
    return PROJECT_TEMPLATE / path.format(package_name="{{cookiecutter.package_name}}")


@pytest.mark.parametrize("option", sorted(post_gen.OWNED_PATHS))
def test_table_covers_exactly_the_options_choices(option: str) -> None:
    assert set(post_gen.OWNED_PATHS[option]) == set(option_values(option))


@pytest.mark.parametrize(
    "path",
    sorted({p for owners in post_gen.OWNED_PATHS.values() for ps in owners.values() for p in ps}),
)
def test_every_owned_path_exists_in_the_template(path: str) -> None:
    assert template_path(path).exists()


@pytest.mark.parametrize(
    ("option", "value"),
    [(option, value) for option in post_gen.OWNED_PATHS for value in option_values(option)],
    ids=lambda value: str(value).lower(),
)
def test_paths_to_remove_are_those_owned_only_by_unchosen_values(option: str, value: Any) -> None:
    answers = {**DEFAULT_ANSWERS, option: value, "package_name": "svc"}
    removed = set(post_gen.paths_to_remove(answers))
    owned_here = {
        path.format(package_name="svc")
        for chosen, paths in post_gen.OWNED_PATHS[option].items()
        for path in paths
        if chosen != value
    } - {path.format(package_name="svc") for path in post_gen.OWNED_PATHS[option][value]}
    assert owned_here <= removed
    kept = {path.format(package_name="svc") for path in post_gen.OWNED_PATHS[option][value]}
    assert not kept & removed


# The observability options' files, as each answer leaves them (package "svc").
OBSERVABILITY_FILES = {
    "use_opentelemetry": {"src/svc/telemetry.py", "tests/otlp.py", "tests/test_telemetry.py"},
    "use_sentry": {
        "src/svc/error_reporting.py",
        "tests/ingest.py",
        "tests/test_error_reporting.py",
    },
}


@pytest.mark.parametrize(
    ("option", "value"),
    [(option, value) for option in OBSERVABILITY_FILES for value in (False, True)],
    ids=lambda value: str(value).lower(),
)
def test_observability_files_are_removed_exactly_when_their_option_is_off(
    option: str, value: bool
) -> None:
    answers = {**DEFAULT_ANSWERS, "package_name": "svc"}
    removed = set(post_gen.paths_to_remove({**answers, option: value}))
    others = set(post_gen.paths_to_remove({**answers, option: not value}))
    expected = set() if value else OBSERVABILITY_FILES[option]
    # The option's answer changes only its own files.
    assert removed - others == expected
    assert OBSERVABILITY_FILES[option] & removed == expected


def test_remove_paths_deletes_files_and_folders(tmp_path: Path) -> None:
    (tmp_path / "folder" / "inner").mkdir(parents=True)
    (tmp_path / "folder" / "inner" / "file.py").write_text("")
    (tmp_path / "file.txt").write_text("")
    (tmp_path / "kept.txt").write_text("")
    post_gen.remove_paths(tmp_path, ["folder", "file.txt", "missing.txt"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["kept.txt"]


@pytest.mark.parametrize(
    ("database", "worker", "commands"),
    [
        ("sqlite", "none", ["make setup", "make migrate", "make run"]),
        ("postgresql", "celery", ["make setup", "make migrate", "make run", "make worker"]),
        ("none", "none", ["make setup", "make run"]),
    ],
    ids=["sqlite", "postgresql-worker", "no-database"],
)
def test_next_steps_name_the_folder_and_the_first_commands(
    database: str, worker: str, commands: list[str]
) -> None:
    answers = {**DEFAULT_ANSWERS, "database": database, "worker": worker}
    lines = post_gen.next_steps(answers, "/srv/my projects/my-service").splitlines()
    assert lines[0] == "my-service is ready in /srv/my projects/my-service"
    assert "  cd '/srv/my projects/my-service'" in lines
    assert [line.split("#")[0].strip() for line in lines if line.startswith("  make ")] == commands


def test_a_bake_on_the_command_line_prints_where_the_project_is(tmp_path: Path) -> None:
    result = bake_on_command_line(tmp_path, {})
    assert result.returncode == 0, result.stderr
    assert f"  cd {tmp_path / 'out' / 'my-service'}" in result.stdout.splitlines()


@pytest.mark.parametrize(
    ("use_opentelemetry", "use_sentry"),
    [("yes", "no"), ("no", "yes")],
    ids=["otel-no-sentry", "no-otel-sentry"],
)
def test_a_command_line_bake_keeps_the_files_of_the_options_answered_yes(
    tmp_path: Path, use_opentelemetry: str, use_sentry: str
) -> None:
    """yes/no as typed: each option's files are there exactly when it is answered yes."""
    answers = {"use_opentelemetry": use_opentelemetry, "use_sentry": use_sentry}
    result = bake_on_command_line(tmp_path, {**answers, "package_name": "svc"})
    assert result.returncode == 0, result.stderr
    project = tmp_path / "out" / "my-service"
    present = {
        option: {path for path in paths if (project / path).is_file()}
        for option, paths in OBSERVABILITY_FILES.items()
    }
    assert present == {
        option: paths if answers[option] == "yes" else set()
        for option, paths in OBSERVABILITY_FILES.items()
    }
