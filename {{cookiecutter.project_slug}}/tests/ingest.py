"""A local stand-in for Sentry's ingest: the envelopes an SDK sends, parsed.

`Ingest` listens on 127.0.0.1 and takes POST /api/<project>/envelope/, the
body compressed with gzip or not, answering 200. An envelope is a header line
(JSON), then items: each a header line (JSON) and a payload, as many bytes as
the header's `length`, else up to the end of the line. `dsn` is a DSN that
sends here.
"""

from __future__ import annotations

import gzip
import json
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

ENVELOPE_PATH = re.compile(r"/api/(?P<project>[^/]+)/envelope/")
DECOMPRESS: dict[str, Callable[[bytes], bytes]] = {"gzip": gzip.decompress, "identity": bytes}


@dataclass(frozen=True)
class Item:
    """One item of an envelope: its header (`type` says what it is) and its payload."""

    headers: dict[str, Any]
    payload: bytes

    @property
    def type(self) -> str:
        return str(self.headers.get("type", ""))

    def json(self) -> Any:
        return json.loads(self.payload)


@dataclass(frozen=True)
class Envelope:
    """One envelope as it arrived (decompressed), and parsed."""

    project: str
    headers: dict[str, Any]
    items: tuple[Item, ...]
    raw: bytes

    def events(self) -> list[dict[str, Any]]:
        """The payloads of its error events."""
        return [item.json() for item in self.items if item.type == "event"]


def parse_envelope(project: str, data: bytes) -> Envelope:
    header, _, rest = data.partition(b"\n")
    items: list[Item] = []
    while rest.strip():
        item_header, _, rest = rest.partition(b"\n")
        headers = json.loads(item_header)
        length = headers.get("length")
        if length is None:
            payload, _, rest = rest.partition(b"\n")
        else:
            payload, rest = rest[:length], rest[length:].removeprefix(b"\n")
        items.append(Item(headers, payload))
    return Envelope(project, json.loads(header), tuple(items), data)


class Ingest:
    """Sentry's ingest on 127.0.0.1; `with Ingest() as ingest:` it listens."""

    def __init__(self) -> None:
        self._envelopes: list[Envelope] = []
        self._lock = threading.Lock()
        self._server = _Server(self)
        self.port: int = self._server.server_address[1]

    def dsn(self, key: str, project: str = "1") -> str:
        """A DSN sending to this ingest, with `key` as its public key."""
        return f"http://{key}@127.0.0.1:{self.port}/{project}"

    def __enter__(self) -> Ingest:
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *_exc_info: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    @property
    def envelopes(self) -> list[Envelope]:
        """Every envelope received so far, in arrival order."""
        with self._lock:
            return list(self._envelopes)

    def events(self) -> list[dict[str, Any]]:
        """Every error event received so far."""
        return [event for envelope in self.envelopes for event in envelope.events()]

    def receive(self, path: str, encoding: str, body: bytes) -> bool:
        """Keep one envelope; False if `path` is not an envelope endpoint."""
        found = ENVELOPE_PATH.fullmatch(path.partition("?")[0])
        if found is None:
            return False
        envelope = parse_envelope(found["project"], DECOMPRESS[encoding](body))
        with self._lock:
            self._envelopes.append(envelope)
        return True


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, ingest: Ingest) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.ingest = ingest


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        encoding = self.headers.get("Content-Encoding", "identity")
        if not self.server.ingest.receive(self.path, encoding, body):
            self.send_error(HTTPStatus.NOT_FOUND)
            return
        answer = b"{}"
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *args: Any) -> None:
        """Quiet: the tests read what arrived, not an access log."""
