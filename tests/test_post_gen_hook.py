"""The feature table: each option value owns its paths; unchosen values' paths are pruned."""

from __future__ import annotations

from pathlib import Path

import pytest

from .conftest import COOKIECUTTER_JSON, TEMPLATE
from .hooks import post_gen

PROJECT_TEMPLATE = TEMPLATE / "{{cookiecutter.project_slug}}"


def template_path(path: str) -> Path:
    return PROJECT_TEMPLATE / path.format(package_name="{{cookiecutter.package_name}}")


@pytest.mark.parametrize("option", sorted(post_gen.OWNED_PATHS))
def test_table_covers_exactly_the_options_choices(option: str) -> None:
    assert sorted(post_gen.OWNED_PATHS[option]) == sorted(COOKIECUTTER_JSON[option])


@pytest.mark.parametrize(
    "path",
    sorted({p for owners in post_gen.OWNED_PATHS.values() for ps in owners.values() for p in ps}),
)
def test_every_owned_path_exists_in_the_template(path: str) -> None:
    assert template_path(path).exists()


@pytest.mark.parametrize("database", COOKIECUTTER_JSON["database"])
def test_paths_to_remove_are_those_owned_only_by_unchosen_values(database: str) -> None:
    answers = {"database": database, "package_name": "svc"}
    removed = set(post_gen.paths_to_remove(answers))
    kept = {path.format(package_name="svc") for path in post_gen.OWNED_PATHS["database"][database]}
    owned = {
        path.format(package_name="svc")
        for paths in post_gen.OWNED_PATHS["database"].values()
        for path in paths
    }
    assert removed == owned - kept


def test_remove_paths_deletes_files_and_folders(tmp_path: Path) -> None:
    (tmp_path / "folder" / "inner").mkdir(parents=True)
    (tmp_path / "folder" / "inner" / "file.py").write_text("")
    (tmp_path / "file.txt").write_text("")
    (tmp_path / "kept.txt").write_text("")
    post_gen.remove_paths(tmp_path, ["folder", "file.txt", "missing.txt"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["kept.txt"]
