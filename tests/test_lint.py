"""The template's own Python (hooks, tests, benchmarks) is held to the generated code's standard."""

from __future__ import annotations

import subprocess
import sys

import pytest

from .conftest import RUFF, TEMPLATE


@pytest.mark.parametrize(
    "command", [["check"], ["format", "--check"]], ids=["ruff-check", "ruff-format"]
)
def test_hooks_tests_and_benchmarks_are_clean(command: list[str]) -> None:
    result = subprocess.run(
        [RUFF, *command, "hooks", "tests", "benchmarks", "local_extensions.py"],
        cwd=TEMPLATE,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_suite_collects_without_xdist() -> None:
    """`pytest -p no:xdist` (one process, no workers) must not trip on the xdist hook."""
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:xdist", "--collect-only", "-q", __file__],
        cwd=TEMPLATE,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
