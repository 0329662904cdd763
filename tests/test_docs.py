"""The docs match the template: options tables, the reference, the factor table's tests."""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Any

import pytest

from .conftest import COOKIECUTTER_JSON, DATABASES, FRAMEWORKS, TEMPLATE
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


# Every web_framework x database x worker combination.
STACKS = [
    {"web_framework": framework, "database": database, "worker": worker}
    for framework in FRAMEWORKS
    for database in DATABASES
    for worker in COOKIECUTTER_JSON["worker"]
]
# `tests/test_x.py` or `tests/test_x.py::test_name`, in backticks.
TEST_REFERENCE = re.compile(r"`(tests/test_\w+\.py)(?:::(test_\w+))?`")


def factor_table_tests(readme: str) -> dict[str, list[tuple[str, str | None]]]:
    """The generated README's factor table: factor -> the (file, test) its last column names."""
    section = readme.split("## The twelve factors", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if re.match(r"^\| [IVX]+\. ", line)]
    return {row.split("|")[1].strip(): TEST_REFERENCE.findall(row.split("|")[4]) for row in rows}


def defined_tests(path: Path) -> set[str]:
    return {
        node.name
        for node in ast.parse(path.read_text()).body
        if isinstance(node, ast.FunctionDef) and node.name.startswith("test_")
    }


@pytest.mark.parametrize("stack", STACKS, ids=lambda stack: "-".join(stack.values()))
def test_generated_readme_names_tests_that_exist(cookies: Any, stack: dict[str, str]) -> None:
    result = cookies.bake(extra_context=stack)
    assert result.exit_code == 0, result.exception
    project = result.project_path
    table = factor_table_tests((project / "README.md").read_text())
    assert len(table) == 12
    for factor, tests in table.items():
        assert tests, f"{factor} names no test"
        for file, name in tests:
            assert (project / file).is_file(), f"{factor}: {file}"
            if name:
                assert name in defined_tests(project / file), f"{factor}: {file}::{name}"
    # Each factor but IX (tests/test_disposability.py) has its contract test.
    contract = {
        factor
        for factor, tests in table.items()
        for file, _ in tests
        if file.endswith("test_factors.py")
    }
    assert set(table) - contract == {"IX. Disposability"}
