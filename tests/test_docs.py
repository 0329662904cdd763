"""The README's options table and the options reference cover cookiecutter.json exactly."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

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


DOCS = TEMPLATE / "docs"
PAGES = [TEMPLATE / "README.md", *sorted(DOCS.glob("*.md"))]
# A Markdown link's target, without its #fragment.
LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")


def relative_links(page: Path) -> set[str]:
    return {target for target in LINK.findall(page.read_text()) if ":" not in target}


def test_docs_index_links_every_page() -> None:
    pages = {page.name for page in DOCS.glob("*.md")} - {"index.md"}
    assert pages <= relative_links(DOCS / "index.md")


@pytest.mark.parametrize("page", PAGES, ids=lambda page: page.relative_to(TEMPLATE).as_posix())
def test_relative_links_resolve(page: Path) -> None:
    missing = {link for link in relative_links(page) if not (page.parent / link).exists()}
    assert not missing
