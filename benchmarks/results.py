"""Rows of the results table: samples, their baseline, and the target they are held to."""

from __future__ import annotations

import statistics
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

Outcome = Literal["PASS", "MISS", "SKIP"]


def seconds(value: float) -> str:
    """Three significant digits in s, ms or µs: `1.97 s`, `84.1 ms`, `14.9 µs`; `1234 s`.

    A difference may be negative: `-14.9 µs`, in the unit of its size.
    """
    rounded = abs(float(f"{value:.3g}"))  # the unit follows the rounded figure: 999.6 ms is 1 s
    if rounded >= 100:
        return f"{value:.0f} s"
    if rounded >= 1:
        return f"{value:.3g} s"
    if rounded >= 1e-3:
        return f"{value * 1e3:.3g} ms"
    return f"{value * 1e6:.3g} µs"


def rate(value: float) -> str:
    return f"{value:,.0f} req/s"


def mebibytes(value: float) -> str:
    return f"{value / 2**20:.1f} MiB"


def percent(value: float) -> str:
    return f"{value * 100:.0f}%"


def count(value: float) -> str:
    return f"{value:g}"


Unit = Callable[[float], str]


@dataclass(frozen=True)
class Target:
    """A goal from the issue: the row's ratio to its baseline, or its own value, within a limit."""

    limit: float
    of: Literal["ratio", "value"]
    at_most: bool

    def describe(self, unit: Unit) -> str:
        sign = "≤" if self.at_most else "≥"
        if self.of == "ratio":
            return f"{sign} {self.limit:g}x"
        return f"{'<' if self.at_most else '>'} {unit(self.limit)}"

    def met_by(self, value: float, ratio: float | None) -> bool | None:
        measured = ratio if self.of == "ratio" else value
        if measured is None:
            return None
        return measured <= self.limit if self.at_most else measured >= self.limit


@dataclass(frozen=True)
class Row:
    """One line of the table: the service's samples and, if compared, its baseline's."""

    name: str
    unit: Unit
    samples: tuple[float, ...] = ()
    baseline_name: str = ""
    baseline: tuple[float, ...] = ()
    target: Target | None = None
    skipped: str = ""  # why nothing was measured
    ratio_shown: bool = True  # off where a ratio means nothing, e.g. counts that can be zero

    @property
    def value(self) -> float | None:
        return statistics.median(self.samples) if self.samples else None

    @property
    def baseline_value(self) -> float | None:
        return statistics.median(self.baseline) if self.baseline else None

    @property
    def ratio(self) -> float | None:
        """Median over median; none without a baseline or when the baseline is zero."""
        if not self.ratio_shown or self.value is None or not self.baseline_value:
            return None
        return self.value / self.baseline_value

    @property
    def outcome(self) -> Outcome | None:
        if self.target is None:
            return None
        if self.value is None:
            return "SKIP"
        met = self.target.met_by(self.value, self.ratio)
        if met is None:
            return "SKIP"
        return "PASS" if met else "MISS"


def skipped(name: str, unit: Unit, reason: str, target: Target | None = None) -> Row:
    return Row(name, unit, target=target, skipped=reason)
