"""Web processes under measurement: start, first 200, resident memory, SIGTERM to exit.

Only 127.0.0.1 is ever requested. Each server runs in its own session, so
whatever it leaves behind (workers, a resource tracker) is killed with it.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import signal
import socket
import subprocess
import time
from pathlib import Path
from types import TracebackType

START_TIMEOUT = 60.0
STOP_TIMEOUT = 60.0
POLL_INTERVAL = 0.002
TICKS_PER_SECOND = os.sysconf("SC_CLK_TCK")  # the unit of /proc/<pid>/stat's CPU times


class BenchError(Exception):
    """A measurement could not be taken; the message says which and why."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def request(port: int, method: str, path: str, body: object | None = None) -> tuple[int, bytes]:
    """One request on a new connection: the status and the body."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        payload = None if body is None else json.dumps(body)
        headers = {} if body is None else {"Content-Type": "application/json"}
        connection.request(method, path, body=payload, headers=headers)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def rss_bytes(pid: int) -> int:
    """Resident memory of one process, from /proc/<pid>/status (VmRSS, in kB)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise BenchError(f"no VmRSS for process {pid}")


def children(pid: int) -> list[int]:
    """Processes whose parent is `pid`, from each /proc/<n>/stat."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            # The command name in parentheses may contain spaces: the ppid follows its ")".
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:
            continue  # exited while we looked
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return sorted(found)


def cpu_ticks(pid: int) -> int:
    """User plus system CPU time of a process so far, in clock ticks (/proc/<pid>/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return int(fields[11]) + int(fields[12])


def command_line(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


class Server:
    """One web server process; stdout (its access log) goes to a file, as a platform would."""

    def __init__(self, command: list[str], *, env: dict[str, str], cwd: Path, port: int) -> None:
        self.port = port
        self.log_path = cwd / f"server-{port}.log"
        self._stdout = self.log_path.open("wb")
        self._stderr = (cwd / f"server-{port}.err").open("w+b")
        self.started = time.perf_counter_ns()
        self.process = subprocess.Popen(
            command,
            env=env,
            cwd=cwd,
            stdout=self._stdout,
            stderr=self._stderr,
            start_new_session=True,
        )

    def __enter__(self) -> Server:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.kill()

    def wait_until_serving(self, path: str = "/healthz") -> float:
        """Seconds from process start to the first 200 on GET `path`.

        Polled as a platform's probe or a waiting client would: a refused connection or
        any other status is tried again.
        """
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise BenchError(f"server exited with {self.process.returncode}: {self.errors()}")
            try:
                status, _ = request(self.port, "GET", path)
            except OSError:
                time.sleep(POLL_INTERVAL)
                continue
            if status == 200:
                return (time.perf_counter_ns() - self.started) / 1e9
            time.sleep(POLL_INTERVAL)
        raise BenchError(f"no 200 on {path} within {START_TIMEOUT:.0f} s: {self.errors()}")

    def web_processes(self) -> list[int]:
        """The processes that serve requests: the workers if there are any, else the server."""
        workers = [
            pid
            for pid in children(self.process.pid)
            if "resource_tracker" not in command_line(pid)  # multiprocessing's helper
        ]
        return workers or [self.process.pid]

    def wait_for_workers(self, count: int) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while len(self.web_processes()) < count:
            if time.monotonic() > deadline:
                raise BenchError(f"{count} workers did not start: {self.errors()}")
            time.sleep(0.05)

    def wait_until_settled(self, count: int, quiet: float = 0.25) -> None:
        """Wait for `count` web processes that use no CPU for `quiet` seconds: done loading.

        A worker counts as started when it is forked, but it imports and builds the app
        after that; one still loading would leave every connection to the others.
        """
        self.wait_for_workers(count)
        deadline = time.monotonic() + START_TIMEOUT
        before = None
        while time.monotonic() < deadline:
            now = [(pid, cpu_ticks(pid)) for pid in self.web_processes()]
            if now == before:
                return
            before = now
            time.sleep(quiet)
        raise BenchError(f"workers still busy {START_TIMEOUT:.0f} s after start: {self.errors()}")

    def stop(self) -> float:
        """Seconds from SIGTERM to the process's exit."""
        sent = time.perf_counter_ns()
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            raise BenchError(f"still running {STOP_TIMEOUT:.0f} s after SIGTERM") from None
        return (time.perf_counter_ns() - sent) / 1e9

    def log_lines(self) -> int:
        with self.log_path.open("rb") as log:
            return sum(1 for _ in log)

    def wait_for_log_lines(self, expected: int, timeout: float = 5) -> bool:
        """Whether stdout reaches `expected` lines: a server logs just after it answers."""
        deadline = time.monotonic() + timeout
        while self.log_lines() < expected:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.05)
        return True

    def errors(self) -> str:
        self._stderr.seek(0)
        return self._stderr.read().decode(errors="replace")[-2000:]

    def kill(self) -> None:
        """Kill the server's whole session: workers must not outlive a failed measurement."""
        with contextlib.suppress(ProcessLookupError):  # nothing of it is left
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()
        self._stdout.close()
        self._stderr.close()
