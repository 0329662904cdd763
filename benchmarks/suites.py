"""Test suites' wall time: the generated project's own, and (on request) the template's.

Each runs as a developer runs it, in its own environment, with the caller's
TEST_DATABASE_URL and TEST_REDIS_URL passed through: with them set, the
backing-service tests run too and are timed with the rest.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

from .results import Row, Target, seconds
from .servers import BenchError
from .subjects import TEMPLATE, Project, dev_tool


def wall_time(command: list[str], cwd: Path, env: dict[str, str] | None = None) -> float:
    started = time.perf_counter_ns()
    result = subprocess.run(
        command, cwd=cwd, env=env, capture_output=True, text=True, timeout=3600, check=False
    )
    elapsed = (time.perf_counter_ns() - started) / 1e9
    if result.returncode != 0:
        raise BenchError(f"`{' '.join(command)}` failed:\n{result.stdout[-3000:]}")
    return elapsed


def generated_suite_rows(project: Project, name: str, runs: int, args: list[str]) -> list[Row]:
    command = [str(project.bin_dir / "pytest"), "-q", "-p", "no:cacheprovider", *args]
    samples = tuple(wall_time(command, project.root, project.env()) for _ in range(runs))
    if args:  # a selection is timed for what it is, not held to the whole suite's target
        return [
            Row(f"Generated project's tests (pytest {' '.join(args)}): {name}", seconds, samples)
        ]
    return [
        Row(
            f"Generated project's test suite: {name}",
            seconds,
            samples,
            target=Target(10, "value", at_most=True),
        )
    ]


def template_suite_rows(runs: int) -> list[Row]:
    """The template's whole suite, as `make test` runs it."""
    command = [dev_tool("pytest"), "-n", "auto", "--dist", "loadgroup"]
    samples = tuple(wall_time(command, TEMPLATE) for _ in range(runs))
    return [
        Row(
            "Template's test suite (make test)",
            seconds,
            samples,
            target=Target(900, "value", at_most=True),
        )
    ]
