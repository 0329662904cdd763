"""Issue 15: what `use_opentelemetry` costs the default service, idle and exporting.

The default project is baked a second time with `use_opentelemetry=yes` and
served on the same database as the project without the option. Without
OTEL_EXPORTER_OTLP_ENDPOINT the service loads none of the option's libraries
(the SDK, its exporter, the instrumentations): its cold start, its
`GET /items/1` throughput and its p99 are held within 5% of the project
without the option. With the endpoint set, every request but the
probes' is traced and exported to a real OTLP/HTTP receiver (`Collector`, in
this process): its throughput, p99 and cost per request are recorded, with no
target. All three take turns in every run, each in each place, so a machine
that gets busier mid-run slows each alike, and every ratio is taken within
the same run.
"""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass, replace
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from .lifecycle import READY_PATH, start_and_stop
from .load import ITEM_PATH, LOAD_FIGURES, WRK_MISSING, LoadResult, LoadSettings, run_subject
from .results import Row, Target, seconds
from .servers import BenchError
from .subjects import Framework, Subject

ANSWER = "use_opentelemetry=yes"
OTLP_PATHS = ("/v1/traces", "/v1/metrics")
# The targets for the service with the option and no endpoint, against without it.
IDLE_TARGETS = {
    "start": Target(1.05, "ratio", at_most=True),
    "Requests/s": Target(0.95, "ratio", at_most=False),
    "p99 latency": Target(1.05, "ratio", at_most=True),
}


class Collector:
    """An OTLP/HTTP receiver on 127.0.0.1: 200 to every POST on /v1/traces and /v1/metrics.

    What a collector does before its pipeline: read the request and answer it (the
    empty body is the empty protobuf response). It decodes nothing; it counts the
    exports and their bytes per path, so the harness can tell that spans arrived.
    """

    def __init__(self) -> None:
        self.exports: Counter[str] = Counter()
        self.bytes: Counter[str] = Counter()
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self.handler())
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def endpoint(self) -> str:
        """The base URL for OTEL_EXPORTER_OTLP_ENDPOINT."""
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def received(self, path: str, size: int) -> None:
        with self.lock:
            self.exports[path] += 1
            self.bytes[path] += size

    def handler(self) -> type[BaseHTTPRequestHandler]:
        collector = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as the exporter's session expects

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if self.path not in OTLP_PATHS:
                    self.send_error(HTTPStatus.NOT_FOUND)
                    return
                collector.received(self.path, len(body))
                self.send_response(HTTPStatus.OK)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                pass  # one line per export on the harness's stderr: noise

        return Handler

    def __enter__(self) -> Collector:
        self.thread.start()
        return self

    def __exit__(self, *_exc_info: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@dataclass(frozen=True)
class Sides:
    """The service without the option, and with it: no endpoint, then exporting."""

    plain: Subject
    idle: Subject
    exporting: Subject

    @property
    def all(self) -> tuple[Subject, Subject, Subject]:
        return self.plain, self.idle, self.exporting

    def in_turn(self, run: int) -> tuple[Subject, ...]:
        """The three in run `run`'s order: over three runs, each side takes each place.

        No side always goes first, or always follows the exporting side's exit.
        """
        turn = run % len(self.all)
        return self.all[turn:] + self.all[:turn]


def sides(plain: Subject, baked: Subject, framework: Framework, label: str, endpoint: str) -> Sides:
    """`baked`: the service baked with the option, on `plain`'s database (named `label`)."""
    name = f"{framework.name} service with use_opentelemetry"
    return Sides(
        plain,
        replace(baked, name=f"{name}, no endpoint, {label}"),
        replace(
            baked,
            name=f"{name}, OTLP endpoint set, {label}",
            env={**baked.env, "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint},
        ),
    )


def start_rows(subjects: Sides, runs: int) -> list[Row]:
    """Cold start to the first 200 on /readyz and GET /items/1, against the plain service."""
    # The option's own modules are compiled by each side's first start, untimed.
    for subject in (subjects.idle, subjects.exporting):
        start_and_stop(subject)
    samples: dict[tuple[str, str], list[float]] = {
        (subject.name, path): [] for subject in subjects.all for path in (READY_PATH, ITEM_PATH)
    }
    for run in range(runs):
        for path in (READY_PATH, ITEM_PATH):
            for subject in subjects.in_turn(run):
                samples[subject.name, path].append(start_and_stop(subject, path)[0])
    rows = []
    for path in (READY_PATH, ITEM_PATH):
        for subject, target in (
            (subjects.idle, IDLE_TARGETS["start"]),
            (subjects.exporting, None),
        ):
            rows.append(
                Row(
                    f"Cold start to first 200 on GET {path}: {subject.name}",
                    seconds,
                    tuple(samples[subject.name, path]),
                    f"{subjects.plain.name}, GET {path}",
                    tuple(samples[subjects.plain.name, path]),
                    target,
                )
            )
    return rows


def per_request(result: LoadResult) -> float:
    """Mean seconds per request of a saturated process: the inverse of its throughput."""
    return 1 / result.requests_per_second


def load_rows(
    subjects: Sides, runs: int, settings: LoadSettings | None, received: Collector
) -> list[Row]:
    """GET /items/1 with one process: requests/s, p50, p99, and the cost per request.

    The cost is the difference of mean time per request (1 / requests/s) between each
    side and the plain service, taken run by run (the sides take turns), then the median.
    The CPU time per request is shown beside it: on a shared machine, the throughput
    also counts the time the server waited for a core, the CPU time does not.
    """
    names = {
        subject.name: f"GET {ITEM_PATH}, 1 process: {subject.name}"
        for subject in (subjects.idle, subjects.exporting)
    }
    if settings is None:
        return [
            Row(f"{label}, {names[subjects.idle.name]}", unit, skipped=WRK_MISSING, target=target)
            for label, unit, _ in LOAD_FIGURES
            if (target := IDLE_TARGETS.get(label))
        ] + [
            Row(f"{label}, {name}", seconds, skipped=WRK_MISSING)
            for label in ("Cost per request", "CPU per request")
            for name in names.values()
        ]
    samples: dict[str, list[LoadResult]] = {subject.name: [] for subject in subjects.all}
    for run in range(runs):
        for subject in subjects.in_turn(run):
            before = received.exports["/v1/traces"]
            results = run_subject(subject, 1, [ITEM_PATH], settings)[1]
            samples[subject.name].append(results[ITEM_PATH])
            exported = received.exports["/v1/traces"] > before
            if exported != (subject is subjects.exporting):
                raise BenchError(
                    f"{subject.name}: {'exported' if exported else 'did not export'} spans"
                    f" to the OTLP receiver at {received.endpoint} under load"
                )
    plain = samples[subjects.plain.name]
    baseline = f"{subjects.plain.name}, GET {ITEM_PATH}"
    rows = []
    for subject in (subjects.idle, subjects.exporting):
        ours = samples[subject.name]
        idle = subject is subjects.idle
        rows += [
            Row(
                f"{label}, {names[subject.name]}",
                unit,
                tuple(map(figure, ours)),
                baseline,
                tuple(map(figure, plain)),
                IDLE_TARGETS.get(label) if idle else None,
            )
            for label, unit, figure in LOAD_FIGURES
        ]
    for subject in (subjects.idle, subjects.exporting):
        rows.append(
            Row(
                f"Cost per request, {names[subject.name]}",
                seconds,
                tuple(
                    per_request(ours) - per_request(theirs)
                    for ours, theirs in zip(samples[subject.name], plain, strict=True)
                ),
                f"{subjects.plain.name}: time per request (1 / requests/s)",
                tuple(map(per_request, plain)),
                ratio_shown=False,
            )
        )
    for subject in (subjects.idle, subjects.exporting):
        rows.append(
            Row(
                f"CPU per request, {names[subject.name]}",
                seconds,
                tuple(result.cpu_per_request for result in samples[subject.name]),
                baseline,
                tuple(result.cpu_per_request for result in plain),
            )
        )
    return rows


def opentelemetry_rows(
    plain: Subject,
    baked: Subject,
    framework: Framework,
    label: str,
    runs: int,
    settings: LoadSettings | None,
) -> list[Row]:
    """Every row of issue 15 for one framework: starts, then load, the receiver listening."""
    with Collector() as received:
        subjects = sides(plain, baked, framework, label, received.endpoint)
        rows = start_rows(subjects, runs)
        rows += load_rows(subjects, runs, settings, received)
    return rows
