"""Logs (factor XI): the cost of one line of the service's JSON logger.

The baseline is the standard library's text line (`logging.basicConfig`) in
the same process, to the same stream: /dev/null, so that only formatting and
handling are timed, not the disk.
"""

from __future__ import annotations

import json
import subprocess

from .results import Row, seconds
from .servers import BenchError
from .subjects import BENCHMARKS, Project

LINES_PER_RUN = 20_000


def log_line_rows(project: Project, name: str, runs: int) -> list[Row]:
    service: list[float] = []
    stdlib: list[float] = []
    for _ in range(runs):
        result = subprocess.run(
            [
                str(project.bin_dir / "python"),
                str(BENCHMARKS / "probes" / "log_lines.py"),
                project.package,
                str(LINES_PER_RUN),
            ],
            cwd=project.root,
            env=project.env(),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if result.returncode != 0:
            raise BenchError(f"log line probe failed: {result.stderr[-2000:]}")
        timings = json.loads(result.stdout)
        service.append(timings["service"])
        stdlib.append(timings["stdlib"])
    return [
        Row(
            f"Cost per access log line (JSON): {name}",
            seconds,
            tuple(service),
            "stdlib logging, text line",
            tuple(stdlib),
        )
    ]
