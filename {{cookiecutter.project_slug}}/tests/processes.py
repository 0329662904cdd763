"""Run the service's real processes, as a Procfile runner or a platform would."""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx2 as httpx

# The user property (see record_property) holding a web process's cold start, in seconds.
COLD_START = "cold_start_seconds"
# The marker of a test that starts a process: `make test-fast` leaves those out.
PROCESSES = "processes"
# The audit events (see sys.addaudithook) by which Python starts a process.
SPAWN_EVENTS = frozenset(
    {
        "subprocess.Popen",
        "os.system",
        "os.posix_spawn",
        "os.spawn",
        "os.exec",
        "os.fork",
        "os.forkpty",
    }
)


class UnmarkedProcessError(RuntimeError):
    """A test not marked `processes` tried to start a process."""


class ProcessGuard:
    """An audit hook refusing to start a process while an unmarked test sets up or runs.

    So the fast tier (`-m "not processes"`) cannot come to start processes unseen.
    """

    def __init__(self) -> None:
        # The id of the test setting up or running, when it is not marked PROCESSES.
        self.unmarked_test: str | None = None

    def __call__(self, event: str, args: tuple[Any, ...]) -> None:
        if self.unmarked_test is not None and event in SPAWN_EVENTS:
            raise UnmarkedProcessError(
                f"{self.unmarked_test} started a process ({event}) but is not marked"
                f" @pytest.mark.{PROCESSES}: mark it, so that `make test-fast` leaves it out"
            )


class ServiceProcess:
    """A command started from the Procfile, with its stdout collected line by line."""

    def __init__(self, command: str, *, env: dict[str, str], cwd: Path) -> None:
        self.port = int(env.get("PORT", "0"))
        self.started = time.monotonic()
        # Seconds from start to the first 200 on /healthz, once wait_until_serving saw it.
        self.cold_start: float | None = None
        self.process = subprocess.Popen(
            shlex.split(command),
            env=env,
            cwd=cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            # Its own process group, as a platform starts it: a test can signal the whole group.
            start_new_session=True,
        )
        self.stdout: list[str] = []
        self.stderr: list[str] = []
        self._readers = [
            threading.Thread(target=self._collect, args=(stream, lines), daemon=True)
            for stream, lines in (
                (self.process.stdout, self.stdout),
                (self.process.stderr, self.stderr),
            )
        ]
        for reader in self._readers:
            reader.start()

    @staticmethod
    def _collect(stream: Any, lines: list[str]) -> None:
        for line in stream:
            lines.append(line.rstrip("\n"))

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def wait_until_serving(self, timeout: float = 30) -> None:
        """Poll /healthz until it answers 200; fail if the process exits first."""
        deadline = time.monotonic() + timeout
        # One client for every poll: a new one loads the CA bundle, tens of ms of CPU.
        with httpx.Client(timeout=1) as client:
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    raise AssertionError(f"exited with {self.process.returncode}: {self.output()}")
                try:
                    if client.get(f"{self.url}/healthz").status_code == 200:
                        self.cold_start = time.monotonic() - self.started
                        return
                except httpx.TransportError:
                    time.sleep(0.02)
        raise AssertionError(f"not serving after {timeout} s: {self.output()}")

    def stop(self, signum: int = signal.SIGTERM, timeout: float = 30) -> int:
        """Send `signum` and wait for the exit status."""
        self.process.send_signal(signum)
        return self.wait(timeout)

    def signal_group(self, signum: int = signal.SIGTERM) -> None:
        """Send `signum` to every process of the group, as platforms stop a service."""
        os.killpg(self.process.pid, signum)

    def wait(self, timeout: float = 30) -> int:
        returncode = self.process.wait(timeout)
        for reader in self._readers:
            reader.join(timeout)
        return returncode

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
{%- if cookiecutter.worker != "none" %}

    def kill_with_children(self) -> None:
        """SIGKILL the process, then every process it started, as when its machine dies."""
        children = descendants(self.process.pid)
        self.process.kill()
        for pid in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.wait()
{%- endif %}

    def children(self) -> list[int]:
        """The pids of every process this one started (a server's worker processes)."""
        return descendants(self.process.pid)

    def json_lines(self) -> list[dict[str, Any]]:
        """Every stdout line, parsed; fails on any line that is not one JSON object."""
        events = [json.loads(line) for line in self.stdout]
        assert all(isinstance(event, dict) for event in events), self.stdout
        return events

    def output(self) -> str:
        return "\n".join(["stdout:", *self.stdout, "stderr:", *self.stderr])


def descendants(pid: int) -> list[int]:
    """Every process below `pid`, read from Linux's /proc."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):
            # Fields after the command name (which may hold spaces): state, then parent pid.
            parent = int(stat.read_text().rpartition(")")[2].split()[1])
            children.setdefault(parent, []).append(int(stat.parent.name))
    found: list[int] = []
    pending = [pid]
    while pending:
        below = children.get(pending.pop(), [])
        found += below
        pending += below
    return found


def wait_for(condition: Callable[[], Any], what: str, timeout: float = 30) -> Any:
    """Poll until `condition` returns something truthy; return it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = condition()
        if result:
            return result
        time.sleep(0.1)
    raise AssertionError(f"not {what} after {timeout} s")


# The `start_service` fixture: start a Procfile command with an environment.
StartService = Callable[[str, dict[str, str]], ServiceProcess]
