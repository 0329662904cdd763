{% set json_route = "/items" if cookiecutter.database != "none" else ("/reports" if cookiecutter.worker != "none" else "") -%}
"""Hostile clients against the real web process: each attack is refused or outlasted.

The web process runs with short limits, set through its environment as a
platform would, so that every attack ends within seconds. While each attack
runs, a normal client keeps asking for /healthz: its p99 latency stays under
a second and the server's memory within RSS_HEADROOM of what it was before.
Every answer the attacker gets is JSON, a 4xx (or a 2xx to a valid request),
or its connection is closed; no answer and no log line holds a traceback or
the attacker's credentials.
"""

from __future__ import annotations

import contextlib
import json
import math
import select
import socket
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, NoReturn

import httpx2 as httpx
import pytest

from .conftest import {% if cookiecutter.worker != "none" %}broker_settings, clean_queue, {% endif %}process_env, read_procfile
from .processes import ServiceProcess, descendants

# Every test here starts real processes: `make test-fast` leaves the module out.
pytestmark = pytest.mark.processes

# The limits the server runs with here: short, so each attack ends quickly.
READ_TIMEOUT = 1
KEEP_ALIVE_TIMEOUT = 1
HEADER_LIMIT = 4096
BODY_LIMIT = 65536
MAX_CONNECTIONS = 64
LIMITS = {
    "REQUEST_READ_TIMEOUT": str(READ_TIMEOUT),
    "KEEP_ALIVE_TIMEOUT": str(KEEP_ALIVE_TIMEOUT),
    "MAX_REQUEST_HEADER_BYTES": str(HEADER_LIMIT),
    "MAX_REQUEST_BODY_BYTES": str(BODY_LIMIT),
    "MAX_CONNECTIONS": str(MAX_CONNECTIONS),
}
# How long the server may take to close a connection past its timeout, on a busy machine.
CLOSE_WITHIN = READ_TIMEOUT + 3.0
# The bound on a normal client's p99 latency while an attack runs.
LATENCY_BOUND = 1.0
# Answers the normal client takes at least, per attack.
MIN_SAMPLES = 5
# How far the server's memory may grow during one attack; the memory attack sends far more.
RSS_HEADROOM = 48 * 1024 * 1024
# The attacker's credentials: the server must neither echo nor log them.
CANARY = "canary-4e1f9b2c7d"
AUTHORIZATION = f"Authorization: Bearer {CANARY}\r\n".encode()
{%- if json_route %}
JSON_ROUTE = "{{ json_route }}"
JSON_FIELD = "{{ 'name' if cookiecutter.database != 'none' else 'text' }}"
# What the app may answer to a body before the server has read it all.
UNREAD_BODY: set[int] = set()
{%- else %}
# No route takes a body: bodies go to one that does not read them, and may be refused unread.
JSON_ROUTE = "/healthz"
UNREAD_BODY = {405}
{%- endif %}


@dataclass(frozen=True)
class Answer:
    """An HTTP response as the attacker read it off the socket."""

    status: int
    headers: dict[str, str]
    body: bytes


# What one attacking connection ends with: an answer, or None when the server closed it.
Outcome = Answer | None


@dataclass(frozen=True)
class Attack:
    """Attacking connections (`run(port)` returns their outcomes) and the statuses allowed."""

    run: Callable[[int], list[Outcome]]
    allowed: frozenset[int]


def connect(port: int) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=CLOSE_WITHIN)


def send(connection: socket.socket, data: bytes) -> bool:
    """Send `data`; False if the server has closed the connection."""
    try:
        connection.sendall(data)
    except ConnectionError:  # a broken pipe or a reset
        return False
    return True


def answered(connection: socket.socket, wait: float = 0) -> bool:
    """Whether the server has answered or closed, within `wait` seconds."""
    readable, _, _ = select.select([connection], [], [], wait)
    return bool(readable)


def read_answer(stream: BinaryIO) -> Outcome:
    """The next response on the connection; None if the server closes it (or resets it) first."""
    try:
        status_line = stream.readline(65536)
        if not status_line:
            return None
        status = int(status_line.split(b" ", 2)[1])
        headers: dict[str, str] = {}
        while (line := stream.readline(65536)) not in (b"\r\n", b"\n", b""):
            name, _, value = line.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        if headers.get("transfer-encoding", "").lower() == "chunked":
            body = b""
            while size := int(stream.readline(1024).split(b";")[0], 16):
                body += stream.read(size)
                stream.readline(1024)
            stream.readline(1024)
        else:
            body = stream.read(int(headers.get("content-length", "0")))
    except ConnectionResetError:
        return None
    except TimeoutError:
        raise AssertionError(f"neither answered nor closed within {CLOSE_WITHIN} s") from None
    return Answer(status, headers, body)


def outcome(connection: socket.socket) -> Outcome:
    with connection.makefile("rb") as stream:
        return read_answer(stream)


def exchange(port: int, request: bytes) -> Outcome:
    """Send `request` on a new connection; its answer, or None if closed without one."""
    with connect(port) as connection:
        send(connection, request)
        return outcome(connection)


def in_parallel(
    connections: int, attack: Callable[[int], Outcome]
) -> Callable[[int], list[Outcome]]:
    """`attack` on `connections` connections at once."""

    def run(port: int) -> list[Outcome]:
        with ThreadPoolExecutor(connections) as pool:
            return list(pool.map(lambda _: attack(port), range(connections)))

    return run


def dribble(port: int, head: bytes, trickle: bytes, interval: float = 0.2) -> Outcome:
    """Send `head`, then `trickle` a byte per `interval` until the server answers or closes."""
    deadline = time.monotonic() + CLOSE_WITHIN
    with connect(port) as connection:
        send(connection, head)
        for byte in trickle:
            if not send(connection, bytes([byte])):
                return None
            if answered(connection, interval):
                return outcome(connection)
            if time.monotonic() > deadline:
                break
        raise AssertionError(f"still open {CLOSE_WITHIN} s after the request began")


def stream_until_refused(port: int, head: bytes, block: bytes, total: int) -> Outcome:
    """Send `head`, then `block` after `block` (up to `total` bytes) until the server answers."""
    deadline = time.monotonic() + CLOSE_WITHIN
    with connect(port) as connection:
        sent = 0
        if send(connection, head):
            while sent < total and time.monotonic() < deadline and not answered(connection):
                if not send(connection, block):
                    break
                sent += len(block)
        return outcome(connection)


def cut_short(port: int, request: bytes) -> Outcome:
    """Send `request`, then end the stream: the server sees the end in the middle of it."""
    with connect(port) as connection:
        send(connection, request)
        connection.shutdown(socket.SHUT_WR)
        return outcome(connection)


def idle(port: int, connections: int, first: bytes = b"") -> list[Outcome]:
    """Open `connections` that send `first` (or nothing) and then wait: each must be closed."""
    with contextlib.ExitStack() as stack:
        opened = [stack.enter_context(connect(port)) for _ in range(connections)]
        for connection in opened:
            send(connection, first)
        return [outcome(connection) for connection in opened]


def idle_after_a_request(port: int) -> list[Outcome]:
    """A complete request, then silence: answered, then closed after KEEP_ALIVE_TIMEOUT."""
    with connect(port) as connection:
        send(connection, get("/healthz"))
        with connection.makefile("rb") as stream:
            return [read_answer(stream), read_answer(stream)]


def pipelined(port: int, valid: int, requests: list[bytes]) -> list[Outcome]:
    """Send `requests` at once on one connection: the first `valid` ones must be answered."""
    with connect(port) as connection:
        send(connection, b"".join(requests))
        with connection.makefile("rb") as stream:
            answers = [read_answer(stream) for _ in requests]
    assert None not in answers[:valid], answers
    return answers


def get(path: str, extra: bytes = b"", *, close: bool = False) -> bytes:
    connection = b"Connection: close\r\n" if close else b""
    return (
        f"GET {path} HTTP/1.1\r\nHost: localhost\r\n".encode()
        + AUTHORIZATION
        + connection
        + extra
        + b"\r\n"
    )


def post_head(headers: bytes) -> bytes:
    return (
        f"POST {JSON_ROUTE} HTTP/1.1\r\nHost: localhost\r\n".encode()
        + AUTHORIZATION
        + b"Content-Type: application/json\r\n"
        + headers
        + b"\r\n"
    )


def post(body: bytes) -> bytes:
    return post_head(f"Content-Length: {len(body)}\r\n".encode()) + body


def chunked(body: bytes) -> bytes:
    return post_head(b"Transfer-Encoding: chunked\r\n") + body


def refused(statuses: set[int], run: Callable[[int], list[Outcome]]) -> Attack:
    return Attack(run, frozenset(statuses))


def single(request: bytes, *statuses: int) -> Attack:
    return refused(set(statuses), lambda port: [exchange(port, request)])


OVERSIZED = 16 * BODY_LIMIT
ATTACKS: dict[str, Attack] = {
    # Slow and idle clients: each connection is closed once its time to send a request is up.
    "slow-headers": refused(
        {408},
        in_parallel(5, lambda port: dribble(port, b"", get("/healthz", b"X-Slow: " + b"a" * 100))),
    ),
    "slow-body": refused(
        {408} | UNREAD_BODY,
        in_parallel(
            5,
            lambda port: dribble(port, post_head(b"Content-Length: 200\r\n"), b"{" + b" " * 199),
        ),
    ),
    "idle-connections": refused({408}, lambda port: idle(port, 20)),
    "idle-after-a-request": refused({200}, idle_after_a_request),
    "many-connections": refused(
        {408}, lambda port: idle(port, 40, b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n")
    ),
    # Oversized heads: refused before they are read whole.
    "request-line-over-limit": single(get("/" + "a" * HEADER_LIMIT), 414),
    "header-over-limit": single(get("/healthz", b"X-Big: " + b"a" * HEADER_LIMIT + b"\r\n"), 431),
    "many-headers": single(
        get("/healthz", b"".join(b"X-%d: v\r\n" % n for n in range(HEADER_LIMIT // 8))), 431
    ),
    "header-streamed-without-end": refused(
        {431},
        in_parallel(
            4,
            lambda port: stream_until_refused(
                port, get("/healthz")[:-2] + b"X-Endless: ", b"a" * 65536, 64 * 1024 * 1024
            ),
        ),
    ),
    # Oversized bodies, declared or streamed.
    "body-over-limit": single(post(b"[" + b"0," * (BODY_LIMIT // 2) + b"0]"), 413, *UNREAD_BODY),
    "body-declared-huge": refused(
        {413} | UNREAD_BODY,
        lambda port: [
            stream_until_refused(
                port, post_head(b"Content-Length: 1000000000000\r\n"), b" " * 65536, OVERSIZED
            )
        ],
    ),
    "body-chunked-over-limit": refused(
        {413} | UNREAD_BODY,
        lambda port: [
            stream_until_refused(
                port,
                post_head(b"Transfer-Encoding: chunked\r\n") + b"1\r\n[\r\n",
                b"4000\r\n" + b" " * 0x4000 + b"\r\n",
                OVERSIZED,
            )
        ],
    ),
    # Malformed request lines and headers.
    "garbage": single(b"\x00\x01\x02 garbage\r\n\r\n", 400),
    "tls-handshake": single(b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03" + bytes(32), 400),
    "unknown-http-version": single(b"GET /healthz HTTP/7.1\r\nHost: localhost\r\n\r\n", 400, 505),
    "space-in-target": single(b"GET /a b HTTP/1.1\r\nHost: localhost\r\n\r\n", 400),
    "header-without-colon": single(get("/healthz", b"NoColon\r\n"), 400),
    "nul-in-header": single(get("/healthz", b"X-Nul: a\x00b\r\n"), 400),
    "negative-content-length": single(post_head(b"Content-Length: -1\r\n"), 400),
    # Malformed chunked framing.
    "bad-chunk-size": single(chunked(b"zz\r\n{}\r\n0\r\n\r\n"), 400, *UNREAD_BODY),
    "chunk-size-overflow": single(
        chunked(b"f" * 40 + b"\r\n{}\r\n0\r\n\r\n"), 400, 413, *UNREAD_BODY
    ),
    "chunk-without-crlf": single(chunked(b"2\r\n{}XX0\r\n\r\n"), 400, *UNREAD_BODY),
    "content-length-and-chunked": single(
        post_head(b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n") + b"0\r\n\r\n", 400
    ),
    "chunked-cut-short": refused(
        {400} | UNREAD_BODY, lambda port: [cut_short(port, chunked(b'10\r\n{"x": 1'))]
    ),
    # Pipelining: every request answered in order, a bad one ends the connection.
    "pipelined-requests": refused(
        {200},
        lambda port: pipelined(port, 21, [get("/healthz")] * 20 + [get("/healthz", close=True)]),
    ),
    "pipelined-then-garbage": refused(
        {200, 400}, lambda port: pipelined(port, 3, [get("/healthz")] * 3 + [b"BAD\x00\r\n\r\n"])
    ),
}

{%- if json_route %}


def odd_value(value: bytes) -> bytes:
    """A body whose one field holds `value`, as raw JSON text."""
    return b'{"' + JSON_FIELD.encode() + b'": ' + value + b"}"


ODD_BODIES: dict[str, bytes] = {
    "nan": odd_value(b"NaN"),
    "infinity": odd_value(b"Infinity"),
    "negative-infinity": odd_value(b"-Infinity"),
    "overflowing-float": odd_value(b"1e999"),
    "huge-integer": odd_value(b"9" * 5000),
    "deep-nesting": odd_value(b"[" * 20000 + b"]" * 20000),
    "lone-surrogate": odd_value(b'"\\ud800"'),
    "lone-low-surrogate": odd_value(b'"a\\udfffb"'),
    "escaped-nul": odd_value(b'"a\\u0000b"'),
    "raw-nul": odd_value(b'"a\x00b"'),
    "invalid-utf8": odd_value(b'"\xff\xfe"'),
    "overlong-utf8": odd_value(b'"\xc0\xaf"'),
    "bom": b"\xef\xbb\xbf" + odd_value(b'"bom"'),
    "not-an-object": b"NaN",
}
# A byte-order mark may be ignored (RFC 8259): that body is then valid.
{%- if cookiecutter.database == "none" %} So is NUL in a
# report's text: Redis keeps any character.
MAY_SUCCEED = {"bom", "escaped-nul"}
{%- else %}
MAY_SUCCEED = {"bom"}
{%- endif %}
for name, body in ODD_BODIES.items():
    statuses = {400, 413, 422} | ({201, 202} if name in MAY_SUCCEED else set())
    ATTACKS[f"json-{name}"] = single(post(body), *statuses)
{%- endif %}


class NormalClient:
    """A well-behaved client asking for /healthz in a loop, timing each answer."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.latencies: list[float] = []
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self) -> None:
        with httpx.Client(timeout=CLOSE_WITHIN) as client:
            while not self.stopping.is_set():
                started = time.perf_counter()
                try:
                    served = client.get(f"{self.url}/healthz").status_code == 200
                except httpx.TransportError:
                    served = False
                self.latencies.append(time.perf_counter() - started if served else math.inf)
                self.stopping.wait(0.02)

    def p99(self) -> float:
        ordered = sorted(self.latencies)
        return ordered[math.ceil(0.99 * len(ordered)) - 1]

    def __enter__(self) -> NormalClient:
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        # A quick attack is over before the first answer: take a few all the same.
        deadline = time.monotonic() + CLOSE_WITHIN
        while len(self.latencies) < MIN_SAMPLES and time.monotonic() < deadline:
            time.sleep(0.01)
        self.stopping.set()
        self.thread.join()


@dataclass
class MemoryWatch:
    """The resident memory of a server process and its workers, sampled while it is attacked."""

    pid: int
    samples: list[int] = field(default_factory=list)
    stopping: threading.Event = field(default_factory=threading.Event)

    def sample(self) -> None:
        while not self.stopping.wait(0.05):
            self.samples.append(resident_bytes(self.pid))

    @contextlib.contextmanager
    def watching(self) -> Iterator[MemoryWatch]:
        self.samples.append(resident_bytes(self.pid))
        thread = threading.Thread(target=self.sample, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self.stopping.set()
            thread.join()
            self.samples.append(resident_bytes(self.pid))

    def growth(self) -> int:
        return max(self.samples) - self.samples[0]


def resident_bytes(pid: int) -> int:
    """VmRSS of `pid` and every process below it, from Linux's /proc."""
    total = 0
    for process in (pid, *descendants(pid)):
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{process}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
    return total


def assert_refused(outcome: Outcome, allowed: frozenset[int]) -> None:
    """A closed connection, or an allowed status with a JSON body holding no credential."""
    if outcome is None:
        return
    assert outcome.status in allowed, outcome
    assert outcome.headers.get("content-type") == "application/json", outcome
    strict_json(outcome.body)
    assert CANARY.encode() not in outcome.body, outcome


def strict_json(body: bytes) -> Any:
    """`body` parsed as JSON proper: Python's parser also takes NaN and Infinity."""

    def refuse(constant: str) -> NoReturn:
        raise ValueError(f"{constant} is not JSON")

    return json.loads(body, parse_constant=refuse)


def assert_logs_clean(server: ServiceProcess, first_line: int) -> None:
    """Since `first_line`: JSON lines only, no error, no traceback, no 5xx, no credential."""
    events = server.json_lines()[first_line:]
    bad = [
        event
        for event in events
        if event["level"] in ("error", "critical")
        or "exception" in event
        or event.get("status", 0) >= 500
    ]
    assert not bad, "\n".join(map(json.dumps, bad))
    assert CANARY not in "\n".join(server.stdout + server.stderr)
    assert not [line for line in server.stderr if "Traceback" in line], server.stderr


@pytest.fixture(scope="module")
def web_env({% if cookiecutter.database != "none" %}database_url: str{% endif %}) -> {% if cookiecutter.worker != "none" %}Iterator[dict[str, str]]{% else %}dict[str, str]{% endif %}:
    """The environment of a web process with the short limits."""
{%- if cookiecutter.database == "none" and cookiecutter.worker == "none" %}
    return {**process_env(), **LIMITS}
{%- else %}
    env = {**process_env(), **LIMITS}
{%- if cookiecutter.database != "none" %}
    env["DATABASE_URL"] = database_url
{%- endif %}
{%- if cookiecutter.worker != "none" %}
    env.update(broker_settings())
    yield env
    if "REDIS_URL" in env:
        clean_queue(env["REDIS_URL"], env["WORKER_QUEUE"])
{%- else %}
    return env
{%- endif %}
{%- endif %}


@pytest.fixture(scope="module")
def server(
    web_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServiceProcess]:
    """One web process with the short limits, for the whole module."""
    process = ServiceProcess(
        read_procfile()["web"], env=web_env, cwd=tmp_path_factory.mktemp("web")
    )
    try:
        process.wait_until_serving()
        yield process
    finally:
        process.kill()


@pytest.mark.parametrize("attack", ATTACKS.values(), ids=ATTACKS.keys())
def test_attack_is_refused_while_a_normal_client_is_served(
    server: ServiceProcess, attack: Attack
) -> None:
    first_line = len(server.stdout)
    with NormalClient(server.url) as normal, MemoryWatch(server.process.pid).watching() as memory:
        outcomes = attack.run(server.port)
    for each in outcomes:
        assert_refused(each, attack.allowed)
    assert normal.p99() < LATENCY_BOUND, normal.latencies
    assert memory.growth() < RSS_HEADROOM, f"grew {memory.growth() / 2**20:.0f} MiB"
    assert_logs_clean(server, first_line)


def test_connections_over_max_connections_wait_or_get_a_json_503(server: ServiceProcess) -> None:
    """Back-pressure: beyond MAX_CONNECTIONS a request waits its turn or gets a JSON 503."""
    first_line = len(server.stdout)
    with contextlib.ExitStack() as held:
        for _ in range(MAX_CONNECTIONS):
            send(held.enter_context(connect(server.port)), b"GET /healthz HTTP/1.1\r\n")
        answer = exchange(server.port, get("/healthz", close=True))
    assert answer is not None, "closed instead of answered"
    assert answer.status in (200, 503), answer
    assert answer.headers["content-type"] == "application/json", answer
    strict_json(answer.body)
    assert_logs_clean(server, first_line)
