"""Test suites' wall time: the generated project's two tiers, and (on request) the template's.

Each runs as a developer runs it, in its own environment, with the caller's
TEST_DATABASE_URL and TEST_REDIS_URL passed through: with them set, the
backing-service tests run too and are timed with the rest.
"""

from __future__ import annotations

import shlex
import subprocess
import time
from dataclasses import dataclass
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


@dataclass(frozen=True)
class Tier:
    """A tier of the generated suite: its row's title, its `pytest` arguments, its target."""

    title: str
    args: tuple[str, ...]
    target: Target | None = None


# What the generated Makefile's `test-fast` and `test` run, past `uv run pytest`.
TIERS = (
    Tier(
        "Generated project's test suite, in-process tier (make test-fast)",
        ("-m", "not processes"),
        Target(10, "value", at_most=True),
    ),
    Tier("Generated project's full suite (make test)", ()),
)


def generated_suite_rows(project: Project, name: str, runs: int, args: list[str]) -> list[Row]:
    """Each tier's wall time; the tiers take turns, so that load weighs on both alike."""
    command = [str(project.bin_dir / "pytest"), "-q", "-p", "no:cacheprovider"]
    samples: dict[Tier, list[float]] = {tier: [] for tier in TIERS}
    for _ in range(runs):
        for tier in TIERS:
            run = [*command, *tier.args, *args]
            samples[tier].append(wall_time(run, project.root, project.env()))
    if args:  # a selection is timed for what it is, not held to a tier's target
        return [
            Row(
                f"Generated project's tests ({shlex.join(['pytest', *tier.args, *args])}): {name}",
                seconds,
                tuple(samples[tier]),
            )
            for tier in TIERS
        ]
    return [
        Row(f"{tier.title}: {name}", seconds, tuple(samples[tier]), target=tier.target)
        for tier in TIERS
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
