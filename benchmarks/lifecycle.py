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

from .results import Row, Target, count, seconds
from .servers import BenchError, request
from .subjects import Subject

IN_FLIGHT_CLIENTS = 8
LOAD_BEFORE_SIGTERM = 0.5  # seconds of requests before the signal


def start_and_stop(subject: Subject) -> tuple[float, float]:
    """Seconds to the first 200, then seconds from SIGTERM to exit while idle."""
    with subject.start() as server:
        started = server.wait_until_serving()
        time.sleep(0.1)  # let the probe's connection close: idle means idle
        return started, server.stop()


Samples = dict[str, tuple[list[float], list[float]]]


def alternate(
    subjects: list[Subject], runs: int, measure: Callable[[Subject], tuple[float, float]]
) -> Samples:
    """For each subject's name: the two figures `measure` takes, one pair per run."""
    samples: Samples = {subject.name: ([], []) for subject in subjects}
    for _ in range(runs):
        for subject in subjects:
            first, second = measure(subject)
            samples[subject.name][0].append(first)
            samples[subject.name][1].append(second)
    return samples


def lifecycle_samples(subjects: list[Subject], runs: int, warm_up: list[Subject]) -> Samples:
    """For each subject's name: its cold starts and idle shutdowns."""
    for subject in warm_up:
        start_and_stop(subject)
    return alternate(subjects, runs, start_and_stop)


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


def start_rows(services: list[Subject], baseline: Subject, samples: Samples) -> list[Row]:
    """Cold start of each subject against the bare app's.

    The target is the first subject's: the default answers (SQLite). The others, other
    databases and the bare app with SQLAlchemy, are there for comparison.
    """
    return [
        Row(
            f"Cold start to first 200: {subject.name}",
            seconds,
            tuple(samples[subject.name][0]),
            baseline.name,
            tuple(samples[baseline.name][0]),
            Target(1.25, "ratio", at_most=True) if index == 0 else None,
        )
        for index, subject in enumerate(services)
    ]


def under_load_samples(subjects: list[Subject], runs: int) -> Samples:
    """For each subject's name: SIGTERM to exit under load, and the requests dropped."""
    return alternate(subjects, runs, stop_under_load)


def shutdown_rows(
    service: Subject, baseline: Subject, idle: Samples, under_load: Samples
) -> list[Row]:
    """SIGTERM to exit, idle (from the cold start runs) and with requests in flight."""
    return [
        Row(
            f"SIGTERM to exit, idle: {service.name}",
            seconds,
            tuple(idle[service.name][1]),
            baseline.name,
            tuple(idle[baseline.name][1]),
            Target(0.3, "value", at_most=True),
        ),
        Row(
            f"SIGTERM to exit, {IN_FLIGHT_CLIENTS} clients in flight: {service.name}",
            seconds,
            tuple(under_load[service.name][0]),
            baseline.name,
            tuple(under_load[baseline.name][0]),
        ),
        Row(
            f"Requests dropped by that shutdown: {service.name}",
            count,
            tuple(under_load[service.name][1]),
            baseline.name,
            tuple(under_load[baseline.name][1]),
            ratio_shown=False,
        ),
    ]
