"""Throughput, latency and memory of a warmed-up web process, against the bare app.

Load comes from wrk (a C program: on a small machine a Python client would
take the CPU the server needs). Both sides write an access line per request
to stdout, redirected to a file: the service its JSON line, the bare app its
server's default access log. The harness checks that the lines were written.
One request in CLOSE_EVERY closes its connection, so that wrk's keep-alive
connections spread over the workers (see spread.lua).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from operator import attrgetter

from .results import Row, Target, Unit, mebibytes, percent, rate, seconds
from .servers import TICKS_PER_SECOND, BenchError, Server, cpu_ticks, request, rss_bytes
from .subjects import BENCHMARKS, Subject

WRK_MISSING = (
    "wrk not found: install it (Debian/Ubuntu: `sudo apt-get install wrk`; "
    "macOS: `brew install wrk`) to measure throughput and latency"
)
WARM_UP_CLIENTS = 4
WARM_UP_REQUESTS = 50  # per client
HEALTH_PATH = "/healthz"
ITEM_PATH = "/items/1"
SPREAD_SCRIPT = BENCHMARKS / "spread.lua"
# One request in this many closes its connection (spread.lua): with 16 connections, each
# is opened again every 1,600 requests or so, a few times a second, on both sides alike.
CLOSE_EVERY = 100
UNITS = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0}


@dataclass(frozen=True)
class LoadSettings:
    duration: int  # seconds per wrk run
    connections: int
    threads: int


@dataclass(frozen=True)
class LoadResult:
    requests_per_second: float
    p50: float  # seconds
    p99: float
    requests: int
    # Of the CPU the web processes used during the run, the busiest one's share: with
    # keep-alive, each connection stays with the worker that accepted it.
    busiest_share: float = 1.0
    # CPU seconds the web processes used per answered request, every thread counted: on a
    # shared machine, steadier than the throughput, which also counts time spent waiting.
    cpu_per_request: float = 0.0


# Each wrk run's figures that make a row: label, unit, and how to read it.
LOAD_FIGURES: tuple[tuple[str, Unit, Callable[[LoadResult], float]], ...] = (
    ("Requests/s", rate, attrgetter("requests_per_second")),
    ("p50 latency", seconds, attrgetter("p50")),
    ("p99 latency", seconds, attrgetter("p99")),
)


def wrk_available() -> bool:
    return shutil.which("wrk") is not None


def parse_wrk(output: str) -> LoadResult:
    """Requests/sec and the 50th and 99th latency percentiles of `wrk --latency`."""
    problems = re.search(r"Non-2xx or 3xx responses: (\d+)|Socket errors: (.*)", output)
    if problems:
        raise BenchError(f"wrk reported failed requests: {problems.group(0)}")
    percentiles = {
        percent: float(number) * UNITS[unit]
        for percent, number, unit in re.findall(r"^\s+(\d+)%\s+([\d.]+)(us|ms|s|m)$", output, re.M)
    }
    rps = re.search(r"^Requests/sec:\s+([\d.]+)$", output, re.M)
    requests = re.search(r"^\s+(\d+) requests in ", output, re.M)
    if not (rps and requests and "50" in percentiles and "99" in percentiles):
        raise BenchError(f"unexpected wrk output:\n{output}")
    return LoadResult(float(rps[1]), percentiles["50"], percentiles["99"], int(requests[1]))


def wrk(port: int, path: str, settings: LoadSettings) -> LoadResult:
    command = [
        "wrk",
        f"--threads={settings.threads}",
        f"--connections={settings.connections}",
        f"--duration={settings.duration}s",
        "--timeout=5s",
        "--latency",
        f"--script={SPREAD_SCRIPT}",
        f"http://127.0.0.1:{port}{path}",
        "--",
        str(CLOSE_EVERY),
    ]
    result = subprocess.run(
        command, capture_output=True, text=True, timeout=settings.duration + 30, check=False
    )
    if result.returncode != 0:
        raise BenchError(f"wrk failed ({result.returncode}): {result.stderr}")
    return parse_wrk(result.stdout)


def warm_up(port: int, path: str) -> None:
    """Concurrent requests over new connections, so that every worker serves some."""
    failures: list[int] = []

    def client() -> None:
        for _ in range(WARM_UP_REQUESTS):
            status, _ = request(port, "GET", path)
            if status != 200:
                failures.append(status)

    threads = [threading.Thread(target=client) for _ in range(WARM_UP_CLIENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failures:
        raise BenchError(f"warm-up: GET {path} answered {failures[0]}, expected 200")


def ensure_item(port: int) -> None:
    """The item GET /items/1 reads: created once per database, through the API."""
    status, _ = request(port, "GET", ITEM_PATH)
    if status == 404:
        status, body = request(port, "POST", "/items", {"name": "benchmark"})
        if status != 201:
            raise BenchError(f"POST /items answered {status}: {body!r}")


def seed_item(service: Subject) -> None:
    """Write the row GET /items/1 reads into the service's database, before any timed start."""
    with service.start() as server:
        server.wait_until_serving()
        ensure_item(server.port)
        server.stop()


def measure_load(server: Server, paths: list[str], settings: LoadSettings) -> dict[str, LoadResult]:
    """One wrk run per path; fails unless every answered request was logged."""
    results = {}
    workers = server.web_processes()
    for path in paths:
        logged = server.log_lines()
        before = [cpu_ticks(pid) for pid in workers]
        result = wrk(server.port, path, settings)
        used = [cpu_ticks(pid) - ticks for pid, ticks in zip(workers, before, strict=True)]
        results[path] = replace(
            result,
            busiest_share=max(used) / max(sum(used), 1),
            cpu_per_request=sum(used) / TICKS_PER_SECOND / max(result.requests, 1),
        )
        if not server.wait_for_log_lines(logged + results[path].requests):
            raise BenchError(f"{path}: fewer access lines than requests: is access logging on?")
    return results


@dataclass
class Figures:
    """Every run's figures for one subject at one worker count."""

    rss: list[float]
    load: dict[str, list[LoadResult]]


def run_subject(
    subject: Subject, workers: int, paths: list[str], settings: LoadSettings | None
) -> tuple[list[int], dict[str, LoadResult]]:
    """Start, warm up, read each web process's RSS, then load each path."""
    with subject.start(workers) as server:
        server.wait_until_serving()
        server.wait_until_settled(workers)
        if ITEM_PATH in paths:
            ensure_item(server.port)
        for path in paths:
            warm_up(server.port, path)
        rss = [rss_bytes(pid) for pid in server.web_processes()]
        results = measure_load(server, paths, settings) if settings else {}
        server.stop()
        return rss, results


def memory_rows(
    service: Subject, with_database: Subject, baseline: Subject, runs: int
) -> list[Row]:
    """Resident memory of one process after warm-up: the service against two baselines.

    The target holds the service to the bare app that reads the same row through
    SQLAlchemy: the hello-world loads no database library, and SQLAlchemy alone is
    most of the difference (its own row). The service after `/healthz` only, which
    leaves SQLAlchemy unloaded, shows the template's share without it.
    """
    both = [HEALTH_PATH, ITEM_PATH]
    measured = {  # the service first: it creates the row the others read
        "service": (service, both),
        "service, /healthz only": (service, [HEALTH_PATH]),
        "with database": (with_database, both),
        "bare": (baseline, [HEALTH_PATH]),
    }
    samples: dict[str, list[int]] = {key: [] for key in measured}
    for _ in range(runs):
        for key, (subject, paths) in measured.items():
            samples[key] += run_subject(subject, 1, paths, None)[0]

    def row(name: str, key: str, against: Subject, target: Target | None = None) -> Row:
        compared = "bare" if against is baseline else "with database"
        return Row(
            name,
            mebibytes,
            tuple(samples[key]),
            against.name,
            tuple(samples[compared]),
            target,
        )

    return [
        row(
            f"RSS after warm-up, 1 process: {service.name}",
            "service",
            with_database,
            Target(1.3, "ratio", at_most=True),
        ),
        row(
            f"RSS after warm-up, 1 process, against the hello-world: {service.name}",
            "service",
            baseline,
        ),
        row(
            f"RSS after warm-up on /healthz only, 1 process: {service.name}",
            "service, /healthz only",
            baseline,
        ),
        row(f"RSS after warm-up, 1 process: {with_database.name}", "with database", baseline),
    ]


def load_rows(
    service: Subject,
    baseline: Subject,
    with_database: Subject,
    concurrency: list[int],
    runs: int,
    settings: LoadSettings | None,
) -> list[Row]:
    """Memory, requests per second, p50 and p99; without wrk, memory only.

    `GET /healthz` is held to the hello-world's, `GET /items/1` to the bare app +
    SQLAlchemy answering the same read from the same database.
    """
    rows = []
    paths = {
        service.name: [HEALTH_PATH, ITEM_PATH],
        baseline.name: [HEALTH_PATH],
        with_database.name: [ITEM_PATH],
    }
    against = {HEALTH_PATH: baseline, ITEM_PATH: with_database}
    for workers in concurrency:
        samples = {name: Figures([], {path: [] for path in paths[name]}) for name in paths}
        for _ in range(runs):
            for subject in (service, baseline, with_database):  # the service writes the row
                rss, results = run_subject(subject, workers, paths[subject.name], settings)
                samples[subject.name].rss.extend(rss)
                for path, result in results.items():
                    samples[subject.name].load[path].append(result)
        processes = "1 process" if workers == 1 else f"WEB_CONCURRENCY={workers}"
        if workers > 1:  # one process: memory_rows, against a baseline that reads the row too
            rows.append(
                Row(
                    f"RSS after warm-up, {processes}, per worker: {service.name}",
                    mebibytes,
                    tuple(samples[service.name].rss),
                    baseline.name,
                    tuple(samples[baseline.name].rss),
                )
            )
        for path in paths[service.name]:
            name = f"GET {path}, {processes}: {service.name}"
            if settings is None:
                rows += [
                    Row(
                        f"{label}, {name}",
                        unit,
                        skipped=WRK_MISSING,
                        target=load_target(label, path),
                    )
                    for label, unit, _ in LOAD_FIGURES
                    if load_target(label, path)
                ]
                continue
            ours = samples[service.name].load[path]
            theirs = samples[against[path].name].load[path]
            baseline_name = f"{against[path].name}, GET {path}"
            rows += [
                Row(
                    f"{label}, {name}",
                    unit,
                    tuple(map(figure, ours)),
                    baseline_name,
                    tuple(map(figure, theirs)),
                    load_target(label, path),
                )
                for label, unit, figure in LOAD_FIGURES
            ]
            if workers > 1:
                rows.append(
                    Row(
                        f"Busiest worker's share of CPU, {name}",
                        percent,
                        tuple(result.busiest_share for result in ours),
                        baseline_name,
                        tuple(result.busiest_share for result in theirs),
                        ratio_shown=False,
                    )
                )
    return rows


# The targets, at every worker count: (figure, path) -> limit on the ratio.
LOAD_TARGETS = {
    ("Requests/s", HEALTH_PATH): Target(0.8, "ratio", at_most=False),
    ("p99 latency", HEALTH_PATH): Target(1.3, "ratio", at_most=True),
    ("Requests/s", ITEM_PATH): Target(0.9, "ratio", at_most=False),
    ("p99 latency", ITEM_PATH): Target(1.2, "ratio", at_most=True),
}


def load_target(label: str, path: str) -> Target | None:
    return LOAD_TARGETS.get((label, path))
