"""The example resource: items stored in the database, bad input answered with 4xx."""

from __future__ import annotations

import uuid
from typing import Any

import httpx2 as httpx
import pytest

from {{ cookiecutter.package_name }}.app import NOT_JSON
from {{ cookiecutter.package_name }}.items import (
    IDEMPOTENCY_KEY_HEADER,
    KEY_REUSED,
    REPLAYED_HEADER,
)
from {{ cookiecutter.package_name }}.settings import Settings

from .processes import ServiceProcess

# MAX_REQUEST_BODY_BYTES, at its default in these tests.
MAX_BODY_BYTES: int = Settings.model_fields["max_request_body_bytes"].default


def test_created_item_can_be_read_back(client: httpx.Client) -> None:
    created = client.post("/items", json={"name": "  widget ", "description": "a part"})
    assert created.status_code == 201
    item = created.json()
    assert item == {"id": item["id"], "name": "widget", "description": "a part"}
    read = client.get(f"/items/{item['id']}")
    assert read.status_code == 200
    assert read.json() == item


def test_description_is_optional(client: httpx.Client) -> None:
    created = client.post("/items", json={"name": "bare"})
    assert created.status_code == 201
    assert created.json()["description"] is None


def test_a_retry_with_the_same_idempotency_key_returns_the_first_item(
    client: httpx.Client,
) -> None:
    headers = {IDEMPOTENCY_KEY_HEADER: str(uuid.uuid4())}
    body = {"name": "once", "description": "however often it is sent"}
    first = client.post("/items", json=body, headers=headers)
    assert first.status_code == 201
    assert REPLAYED_HEADER.lower() not in first.headers
    for _ in range(2):
        retried = client.post("/items", json=body, headers=headers)
        assert (retried.status_code, retried.json()) == (201, first.json())
        assert retried.headers[REPLAYED_HEADER] == "true"
    other = client.post("/items", json=body, headers={IDEMPOTENCY_KEY_HEADER: "another-key"})
    assert other.json()["id"] != first.json()["id"]


def test_without_an_idempotency_key_every_post_creates_an_item(client: httpx.Client) -> None:
    ids = {client.post("/items", json={"name": "again"}).json()["id"] for _ in range(2)}
    assert len(ids) == 2


def test_an_idempotency_key_sent_with_another_item_is_409(client: httpx.Client) -> None:
    headers = {IDEMPOTENCY_KEY_HEADER: uuid.uuid4().hex}
    assert client.post("/items", json={"name": "first"}, headers=headers).status_code == 201
    reused = client.post("/items", json={"name": "second"}, headers=headers)
    assert reused.status_code == 409
    assert reused.json() == {"detail": KEY_REUSED}


INVALID_KEYS = {"empty": "", "space": "has space", "too-long": "x" * 129, "slash": "a/b"}


@pytest.mark.parametrize("key", INVALID_KEYS.values(), ids=INVALID_KEYS.keys())
def test_an_invalid_idempotency_key_is_422(client: httpx.Client, key: str) -> None:
    headers = {IDEMPOTENCY_KEY_HEADER: key}
    response = client.post("/items", json={"name": "x"}, headers=headers)
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["loc"] == ["header", "idempotency-key"]


def test_unknown_id_is_404(client: httpx.Client) -> None:
    response = client.get("/items/2147483647")
    assert response.status_code == 404
    assert response.json() == {"detail": "item 2147483647 not found"}


BAD_BODIES: dict[str, Any] = {
    "missing-name": {"description": "no name"},
    "empty-name": {"name": "   "},
    "name-not-text": {"name": 42},
    "name-too-long": {"name": "x" * 201},
    # Stripped to 199 it would fit, but the schema allows 200 as sent (schemathesis found it).
    "name-too-long-as-sent": {"name": "  " + "x" * 199},
    "description-too-long": {"name": "x", "description": "y" * 2001},
    "nul-character": {"name": "a\x00b"},
    "unknown-field": {"name": "x", "colour": "red"},
    "not-an-object": ["name"],
}


@pytest.mark.parametrize("body", BAD_BODIES.values(), ids=BAD_BODIES.keys())
def test_invalid_body_is_422_naming_the_problem(client: httpx.Client, body: Any) -> None:
    response = client.post("/items", json=body)
    assert response.status_code == 422
    assert response.json()["detail"][0]["msg"]


@pytest.mark.parametrize(
    "raw",
    [b"{not json", b"", b'{"name": "x"', b"\xff\xfe"],
    ids=["malformed", "empty", "truncated", "not-utf8"],
)
def test_malformed_json_is_422(client: httpx.Client, raw: bytes) -> None:
    response = client.post("/items", content=raw, headers={"Content-Type": "application/json"})
    assert response.status_code == 422
    assert response.json()["detail"]
    assert "Traceback" not in response.text


@pytest.mark.parametrize("item_id", ["0", "-1", "abc", "2147483648", "1e3"])
def test_impossible_id_is_422(client: httpx.Client, item_id: str) -> None:
    assert client.get(f"/items/{item_id}").status_code == 422


# id -> (Content-Type, body, sent in chunks without a Content-Length, status)
BAD_REQUESTS: dict[str, tuple[str | None, bytes, bool, int]] = {
    "malformed-json": ("application/json", b"{not json", False, 422),
    "wrong-type": ("application/json", b'{"name": ["x"]}', False, 422),
    # FastAPI refuses such a body before parsing it as JSON; Flask's parser finds it invalid.
    "invalid-utf8": ("application/json", b'{"name": "\xc3("}', False, {% if cookiecutter.web_framework == "fastapi" %}400{% else %}422{% endif %}),
    "text-plain": ("text/plain", b'{"name": "x"}', False, 415),
    "form": ("application/x-www-form-urlencoded", b"name=x", False, 415),
    "no-content-type": (None, b'{"name": "x"}', False, 415),
    "oversized": ("application/json", b"[" + b"0," * MAX_BODY_BYTES + b"0]", False, 413),
    "oversized-streamed": ("application/json", b"[" + b"0," * MAX_BODY_BYTES + b"0]", True, 413),
}


def post_item(
    client: httpx.Client, url: str, content_type: str | None, body: bytes, streamed: bool
) -> httpx.Response:
    headers = {"Content-Type": content_type} if content_type else {}
    chunks = (body[start : start + 65536] for start in range(0, len(body), 65536))
    return client.post(url, content=chunks if streamed else body, headers=headers)


def assert_clear_json_error(response: httpx.Response, status: int) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    assert response.json()["detail"]
    assert response.headers["x-request-id"]
    assert "Traceback" not in response.text


{% if cookiecutter.web_framework == "flask" -%}
# WSGI without a server has no chunked input: the real-server test below covers that one.
{% endif -%}
@pytest.mark.parametrize(
    ("content_type", "body", "streamed", "status"),
    [pytest.param(*case, id=key) for key, case in BAD_REQUESTS.items(){% if cookiecutter.web_framework == "flask" %} if not case[2]{% endif %}],
)
def test_bad_request_is_a_json_4xx(
    client: httpx.Client, content_type: str | None, body: bytes, streamed: bool, status: int
) -> None:
    assert_clear_json_error(post_item(client, "/items", content_type, body, streamed), status)


def test_non_json_content_type_names_the_one_allowed(client: httpx.Client) -> None:
    response = client.post("/items", content=b"name=x", headers={"Content-Type": "text/csv"})
    assert response.json() == {"detail": NOT_JSON}


@pytest.mark.processes
def test_real_server_answers_every_bad_request_with_a_json_4xx(web: ServiceProcess) -> None:
    """Through the real server too, and a body of exactly the limit is still taken."""
    for content_type, body, streamed, status in BAD_REQUESTS.values():
        # A connection each: after a 413 the rest of the body is unread, and gunicorn drops
        # a kept-alive connection that still has some.
        with httpx.Client(base_url=web.url) as client:
            response = post_item(client, "/items", content_type, body, streamed)
        assert_clear_json_error(response, status)
    at_the_limit = b'{"name": "x"}'.ljust(MAX_BODY_BYTES)
    for streamed in (False, True):
        with httpx.Client(base_url=web.url) as client:
            response = post_item(client, "/items", "application/json", at_the_limit, streamed)
        assert response.status_code == 201, response.text
    assert all(event["status"] < 500 for event in web.json_lines() if "status" in event)
