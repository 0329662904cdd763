"""Baking: the CLI bake of the default answers against the floor, and the whole matrix in-process.

The floor is the same cookiecutter baking a one-file template with no hooks
(`benchmarks/floor/`): what the tool itself costs. The matrix is every option
combination (the pre-gen hook accepts them all), baked one after another in this process.
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .results import Row, Target, seconds
from .servers import BenchError
from .subjects import FLOOR_TEMPLATE, TEMPLATE, Workspace, dev_tool

# The options that choose files, as the template's matrix test bakes them.
MATRIX_OPTIONS = ("web_framework", "database", "worker", "use_docker", "use_kubernetes", "ci")


def cli_bake(workspace: Workspace, template: Path) -> float:
    """Seconds for `cookiecutter --no-input` to bake `template` into a new directory."""
    output = workspace.fresh_dir("cli-bake")
    env = workspace.cookiecutter_env()
    command = [dev_tool("cookiecutter"), "--no-input", "--output-dir", str(output), str(template)]
    started = time.perf_counter_ns()
    result = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    elapsed = (time.perf_counter_ns() - started) / 1e9
    if result.returncode != 0:
        raise BenchError(f"bake of {template.name} failed: {result.stderr[-2000:]}")
    return elapsed


def accepted_combinations() -> list[dict[str, Any]]:
    """Every combination of the matrix options: the pre-gen hook accepts them all."""
    questions = json.loads((TEMPLATE / "cookiecutter.json").read_text())
    values = [
        [False, True] if isinstance(questions[option], bool) else questions[option]
        for option in MATRIX_OPTIONS
    ]
    return [dict(zip(MATRIX_OPTIONS, chosen, strict=True)) for chosen in itertools.product(*values)]


@contextmanager
def hook_output_discarded() -> Iterator[None]:
    """Send what the hooks print (the post-gen hook's next steps) nowhere, not into the report.

    The hooks are processes of their own writing to this process's stdout, so the file
    descriptor itself is pointed at /dev/null.
    """
    sys.stdout.flush()
    saved = os.dup(1)
    with open(os.devnull, "w") as devnull:
        os.dup2(devnull.fileno(), 1)
    try:
        yield
    finally:
        os.dup2(saved, 1)
        os.close(saved)


def bake_matrix(workspace: Workspace, combinations: list[dict[str, Any]]) -> float:
    """Seconds to bake every combination, one after another, in this process."""
    from cookiecutter.main import cookiecutter

    config = workspace.cookiecutter_env()["COOKIECUTTER_CONFIG"]
    output = workspace.fresh_dir("matrix")
    saved_tempdir = tempfile.tempdir
    tempfile.tempdir = str(workspace.root / "hook-scripts")  # where rendered hooks are left
    try:
        started = time.perf_counter_ns()
        with hook_output_discarded():
            for index, combination in enumerate(combinations):
                cookiecutter(
                    str(TEMPLATE),
                    no_input=True,
                    extra_context=combination,
                    output_dir=str(output / str(index)),
                    config_file=config,
                )
        return (time.perf_counter_ns() - started) / 1e9
    finally:
        tempfile.tempdir = saved_tempdir


def bake_rows(workspace: Workspace, runs: int, matrix_runs: int, limit: int | None) -> list[Row]:
    default: list[float] = []
    floor: list[float] = []
    cli_bake(workspace, TEMPLATE)  # warm-up: bytecode and page cache, as for every subject
    for _ in range(runs):
        default.append(cli_bake(workspace, TEMPLATE))
        floor.append(cli_bake(workspace, FLOOR_TEMPLATE))
    combinations = accepted_combinations()
    if limit is not None:
        combinations = combinations[:limit]
    everything = "all" if limit is None else "the first"
    matrix = [bake_matrix(workspace, combinations) for _ in range(matrix_runs)]
    return [
        Row(
            "CLI bake, default answers",
            seconds,
            tuple(default),
            "one-file template, no hooks",
            tuple(floor),
            Target(1.5, "ratio", at_most=True),
        ),
        Row(
            f"In-process bake, {everything} {len(combinations)} accepted combinations",
            seconds,
            tuple(matrix),
        ),
    ]
