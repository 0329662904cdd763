"""The suite's two tiers: `make test-fast` runs the tests that start no process.

A test that starts one (the service, a server, honcho) is marked `processes`;
an unmarked one that tries fails, so the fast tier cannot come to start
processes unseen, and `make test` runs both tiers.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable

import pytest

from .processes import UnmarkedProcessError

PYTHON_PASS = [sys.executable, "-c", "pass"]
# Ways to start a process, each through its own audit event.
STARTS: dict[str, Callable[[], object]] = {
    "subprocess": lambda: subprocess.run(PYTHON_PASS, check=False),
    "os.system": lambda: os.system("true"),  # noqa: S605, S607
}


@pytest.mark.parametrize("start", STARTS.values(), ids=STARTS.keys())
def test_an_unmarked_test_cannot_start_a_process(start: Callable[[], object]) -> None:
    with pytest.raises(UnmarkedProcessError, match=r"is not marked @pytest\.mark\.processes"):
        start()


@pytest.mark.processes
def test_a_marked_test_may_start_a_process() -> None:
    assert subprocess.run(PYTHON_PASS, check=False).returncode == 0
