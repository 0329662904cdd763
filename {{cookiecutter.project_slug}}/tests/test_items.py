"""The example resource: items stored in the database, bad input answered with 4xx."""

from __future__ import annotations

from typing import Any

import httpx2 as httpx
import pytest


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


def test_unknown_id_is_404(client: httpx.Client) -> None:
    response = client.get("/items/2147483647")
    assert response.status_code == 404
    assert response.json() == {"detail": "item 2147483647 not found"}


BAD_BODIES: dict[str, Any] = {
    "missing-name": {"description": "no name"},
    "empty-name": {"name": "   "},
    "name-not-text": {"name": 42},
    "name-too-long": {"name": "x" * 201},
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
