"""The README's options table and the options reference cover cookiecutter.json exactly."""

from __future__ import annotations

import re

from .conftest import COOKIECUTTER_JSON, TEMPLATE
from .hooks import pre_gen

QUESTIONS = {key for key in COOKIECUTTER_JSON if not key.startswith("_")}


def readme_options_table() -> set[str]:
    """The keys in the first column of the README's options table."""
    section = (TEMPLATE / "README.md").read_text().split("## Options", 1)[1].split("\n## ", 1)[0]
    return set(re.findall(r"^\| `([a-z_]+)` \|", section, flags=re.MULTILINE))


def test_readme_options_table_lists_every_question() -> None:
    assert readme_options_table() == QUESTIONS


def test_options_reference_has_a_section_per_question() -> None:
    text = (TEMPLATE / "docs" / "options.md").read_text()
    assert set(re.findall(r"^## `?([a-z_]+)`?$", text, flags=re.MULTILINE)) == QUESTIONS


def test_readme_first_screen_gives_the_two_commands() -> None:
    first_screen = (TEMPLATE / "README.md").read_text().splitlines()[:25]
    commands = [line.split("#")[0].strip() for line in first_screen if line.startswith("make ")]
    assert commands == ["make serve", "make test"]
    makefile = (TEMPLATE / "Makefile").read_text()
    assert re.search(r"^serve:", makefile, flags=re.MULTILINE)
    assert re.search(r"^test:", makefile, flags=re.MULTILINE)
    assert "make test" in (TEMPLATE / ".ci" / "run").read_text()


def test_options_reference_lists_every_refused_dependency_name() -> None:
    text = (TEMPLATE / "docs" / "options.md").read_text()
    paragraph = text.split("The names are: ", 1)[1].split(". The list applies", 1)[0]
    assert set(re.findall(r"`([a-z0-9_]+)`", paragraph)) == pre_gen.DEPENDENCY_MODULES
