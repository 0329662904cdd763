"""Disposability (factor IX): cold start to the first 200, and SIGTERM to exit.

Every measured start finds its bytecode compiled and its files in the page
cache, as a restarted process on a platform does: the shutdown-under-load
runs come first (their starts are not timed), and any other subject is
started once unmeasured. Runs alternate between the subjects, so a machine
that gets busier mid-run slows both sides alike.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from .load import HEALTH_PATH, ITEM_PATH
from .results import Row, Target, count, seconds
from .servers import BenchError, request
from .subjects import Subject

IN_FLIGHT_CLIENTS = 8
LOAD_BEFORE_SIGTERM = 0.5  # seconds of requests before the signal
READY_PATH = "/readyz"
DEFAULT = "SQLite"  # the database of the default answers, which the targets are held on
START_TARGET = Target(1.1, "ratio", at_most=True)


def start_and_stop(subject: Subject, path: str = HEALTH_PATH) -> tuple[float, float]:
    """Seconds to the first 200 on GET `path`, then seconds from SIGTERM to exit while idle."""
    with subject.start() as server:
        started = server.wait_until_serving(path)
        time.sleep(0.1)  # let the probe's connection close: idle means idle
        return started, server.stop()


@dataclass(frozen=True)
class Probe:
    """A subject started fresh and polled on one path until it answers 200."""

    subject: Subject
    path: str = HEALTH_PATH

    @property
    def key(self) -> tuple[str, str]:
        return self.subject.name, self.path


Samples = dict[tuple[str, str], tuple[list[float], list[float]]]


def alternate(
    probes: list[Probe], runs: int, measure: Callable[[Probe], tuple[float, float]]
) -> Samples:
    """For each probe: the two figures `measure` takes, one pair per run."""
    samples: Samples = {probe.key: ([], []) for probe in probes}
    for _ in range(runs):
        for probe in probes:
            first, second = measure(probe)
            samples[probe.key][0].append(first)
            samples[probe.key][1].append(second)
    return samples


def lifecycle_samples(probes: list[Probe], runs: int, warm_up: list[Subject]) -> Samples:
    """For each probe: its cold starts and idle shutdowns."""
    for subject in warm_up:
        start_and_stop(subject)
    return alternate(probes, runs, lambda probe: start_and_stop(probe.subject, probe.path))


@dataclass
class ClientLoad:
    """Clients looping on GET /healthz, a new connection per request, as a proxy would."""

    port: int
    signalled: bool = False
    lost: int = 0  # accepted, then dropped without a response, after the signal
    stop: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)
    errors_before_signal: list[str] = field(default_factory=list)

    def client(self) -> None:
        while not self.stop.is_set():
            try:
                status, _ = request(self.port, "GET", "/healthz")
                failure = None if status == 200 else f"status {status}"
            except ConnectionRefusedError:
                failure = None  # the listener is closed: never accepted, the client may retry
                time.sleep(0.01)
            except OSError as exc:  # reset, closed without a response, timed out
                failure = type(exc).__name__
            if failure is not None:
                with self.lock:
                    if self.signalled:
                        self.lost += 1
                    else:
                        self.errors_before_signal.append(failure)


@contextmanager
def client_load(port: int) -> Iterator[ClientLoad]:
    load = ClientLoad(port)
    threads = [threading.Thread(target=load.client) for _ in range(IN_FLIGHT_CLIENTS)]
    for thread in threads:
        thread.start()
    try:
        yield load
    finally:
        load.stop.set()
        for thread in threads:
            thread.join()


def stop_under_load(subject: Subject) -> tuple[float, int]:
    """Seconds from SIGTERM to exit with requests in flight, and the requests it dropped."""
    with subject.start() as server:
        server.wait_until_serving()
        with client_load(server.port) as load:
            time.sleep(LOAD_BEFORE_SIGTERM)
            with load.lock:
                load.signalled = True
            stopped = server.stop()
        if load.errors_before_signal:
            raise BenchError(
                f"{subject.name}: requests failed before SIGTERM: {load.errors_before_signal[:5]}"
            )
        return stopped, load.lost


def start_probes(
    services: dict[str, Subject], with_database: dict[str, Subject], baseline: Subject
) -> list[Probe]:
    """Every start to time: each side on each path it is compared on, sides interleaved."""
    probes = [Probe(subject) for subject in [*services.values(), baseline, with_database[DEFAULT]]]
    for path in (READY_PATH, ITEM_PATH):
        for label, subject in services.items():
            probes += [Probe(subject, path), Probe(with_database[label], path)]
    return probes


def start_rows(
    services: dict[str, Subject],
    with_database: dict[str, Subject],
    baseline: Subject,
    samples: Samples,
) -> list[Row]:
    """Cold start of each service: to its first 200 on /healthz, /readyz and GET /items/1.

    What a platform waits for before it routes traffic is the first 200 on /readyz; what
    the first client waits for is its answer, here the read of an existing row. Both are
    held to the bare app + SQLAlchemy on the same database, answering the same request.
    The first 200 on /healthz (liveness, no database) is shown against the hello-world,
    and so is the bare app + SQLAlchemy's: that library's own share of a start. Targets
    are on the default answers (SQLite); other databases are there for comparison.
    """

    def row(probe: Probe, against: Probe, target: Target | None = None) -> Row:
        return Row(
            f"Cold start to first 200 on GET {probe.path}: {probe.subject.name}",
            seconds,
            tuple(samples[probe.key][0]),
            f"{against.subject.name}, GET {against.path}",
            tuple(samples[against.key][0]),
            target,
        )

    hello = Probe(baseline)
    rows = [row(Probe(subject), hello) for subject in services.values()]
    rows.append(row(Probe(with_database[DEFAULT]), hello))
    for path in (READY_PATH, ITEM_PATH):
        rows += [
            row(
                Probe(subject, path),
                Probe(with_database[label], path),
                START_TARGET if label == DEFAULT else None,
            )
            for label, subject in services.items()
        ]
    return rows


def under_load_samples(subjects: list[Subject], runs: int) -> Samples:
    """For each subject: SIGTERM to exit under load, and the requests dropped."""
    return alternate(
        [Probe(subject) for subject in subjects], runs, lambda probe: stop_under_load(probe.subject)
    )


def shutdown_rows(
    service: Subject, baseline: Subject, idle: Samples, under_load: Samples
) -> list[Row]:
    """SIGTERM to exit, idle (from the cold start runs) and with requests in flight."""
    return [
        Row(
            f"SIGTERM to exit, idle: {service.name}",
            seconds,
            tuple(idle[service.name, HEALTH_PATH][1]),
            baseline.name,
            tuple(idle[baseline.name, HEALTH_PATH][1]),
            Target(0.3, "value", at_most=True),
        ),
        Row(
            f"SIGTERM to exit, {IN_FLIGHT_CLIENTS} clients in flight: {service.name}",
            seconds,
            tuple(under_load[service.name, HEALTH_PATH][0]),
            baseline.name,
            tuple(under_load[baseline.name, HEALTH_PATH][0]),
        ),
        Row(
            f"Requests dropped by that shutdown: {service.name}",
            count,
            tuple(under_load[service.name, HEALTH_PATH][1]),
            baseline.name,
            tuple(under_load[baseline.name, HEALTH_PATH][1]),
            ratio_shown=False,
        ),
    ]
