"""The results table: printed, and written between markers into docs/performance.md."""

from __future__ import annotations

import os
import platform
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from .results import Row

BEGIN = "<!-- bench:results:begin -->"
END = "<!-- bench:results:end -->"
COLUMNS = ("Measurement", "Median", "Baseline", "Baseline median", "Ratio", "n", "Target")


@dataclass(frozen=True)
class Context:
    """How and where the figures were taken, printed above the table."""

    command: str
    note: str
    load_before: tuple[float, float, float]
    load_after: tuple[float, float, float]

    def lines(self) -> list[str]:
        when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
        machine = f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPUs"
        lines = [
            f"Recorded {when} on {machine}, Python {platform.python_version()}; "
            f"load average {self.load_before[0]:.2f} before, {self.load_after[0]:.2f} after.",
            "",
            f"Reproduce with `{self.command}`.",
        ]
        if self.note:
            lines += ["", f"**{self.note}**"]
        return lines


def cells(row: Row) -> list[str]:
    """The row's table cells; a skipped row says why instead of a median."""
    target = row.target.describe(row.unit) if row.target else ""
    if row.outcome:
        target = f"{target}: {row.outcome}"
    if row.value is None:
        return [row.name, f"skipped: {row.skipped}", row.baseline_name, "", "", "0", target]
    baseline = "" if row.baseline_value is None else row.unit(row.baseline_value)
    ratio = "" if row.ratio is None else f"{row.ratio:.2f}x"
    return [
        row.name,
        row.unit(row.value),
        row.baseline_name,
        baseline,
        ratio,
        str(len(row.samples)),
        target,
    ]


def table(rows: Sequence[Row]) -> list[str]:
    lines = [f"| {' | '.join(COLUMNS)} |", f"|{'|'.join('---' for _ in COLUMNS)}|"]
    lines += [f"| {' | '.join(cells(row))} |" for row in rows]
    return lines


def targets(rows: Sequence[Row]) -> list[str]:
    """One line per target: PASS, MISS, or SKIP when it could not be measured."""
    return [
        f"- {row.outcome}: {row.name} {row.target.describe(row.unit)}"
        for row in rows
        if row.target and row.outcome
    ]


def section(rows: Sequence[Row], context: Context) -> str:
    lines = [*context.lines(), "", *table(rows), "", "Targets:", "", *targets(rows)]
    return "\n".join(lines) + "\n"


def write(path: Path, text: str) -> None:
    """Replace the text between the markers; a new file holds only the results."""
    block = f"{BEGIN}\n{text}{END}\n"
    if not path.exists():
        path.write_text(block)
        return
    current = path.read_text()
    if BEGIN not in current or END not in current:
        raise SystemExit(f"bench: {path} has no {BEGIN} ... {END} markers; not overwriting it")
    before, rest = current.split(BEGIN, 1)
    after = rest.split(END, 1)[1].removeprefix("\n")
    path.write_text(f"{before}{block}{after}")
