"""The template's own Python (hooks, tests, benchmarks) is held to the generated code's standard."""

from __future__ import annotations

import sys

import pytest

from .conftest import RUFF, TEMPLATE, run


@pytest.mark.parametrize(
    "command", [["check"], ["format", "--check"]], ids=["ruff-check", "ruff-format"]
)
def test_hooks_tests_and_benchmarks_are_clean(command: list[str]) -> None:
    run(
        [RUFF, *command, "hooks", "tests", "benchmarks", "local_extensions.py"],
        TEMPLATE,
        timeout=60,
    )


def test_the_suite_collects_without_xdist() -> None:
    """`pytest -p no:xdist` (one process, no workers) must not trip on the xdist hook."""
    run(
        [sys.executable, "-m", "pytest", "-p", "no:xdist", "--collect-only", "-q", __file__],
        TEMPLATE,
    )
