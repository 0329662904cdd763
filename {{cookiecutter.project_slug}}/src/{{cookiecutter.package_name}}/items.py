"""The example resource: a named item stored in the database.

It shows the wiring from HTTP to a table: validated input (the schemas
here), a session per request, the queries here, and a migration for the
table (the table itself is in tables.py). Replace it with your own resources.

A client may send an `Idempotency-Key` header with `POST /items` (a UUID of
its own, say). A retry with the same key and body returns the item the first
request created instead of creating a second: so a client that got no answer,
or a 503 while the database went away around its commit, can simply retry.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from .tables import IDEMPOTENCY_KEY_MAX_LENGTH, NAME_MAX_LENGTH, Item

DESCRIPTION_MAX_LENGTH = 2000
# The largest id a PostgreSQL integer column holds; larger ids cannot exist.
MAX_ID = 2**31 - 1
IDEMPOTENCY_KEY_HEADER = "Idempotency-Key"
IDEMPOTENCY_KEY_PATTERN = "^[A-Za-z0-9._:-]{1," + str(IDEMPOTENCY_KEY_MAX_LENGTH) + "}$"
# Set on the answer to a retry: the item was created by an earlier request with the key.
REPLAYED_HEADER = "Idempotent-Replayed"
KEY_REUSED = f"this {IDEMPOTENCY_KEY_HEADER} was sent before with a different item"


class IdempotencyKeyReusedError(Exception):
    """The key came before with another body: not a retry. A valid request that conflicts
    with what is stored (409), as two clients picking the same key would.
    """


# Stripped from names and descriptions: ASCII whitespace, which the schema's pattern names
# alike in every regex dialect (JSON Schema's, pydantic's); other kinds differ between them.
SPACES = " \t\n\r\f\v"
NOT_BLANK = r"[^ \t\n\r\f\v]"


def _no_nul(value: str | None) -> str | None:
    # PostgreSQL text cannot hold NUL; refuse it here rather than fail in the database.
    if value is not None and "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return value


def _stripped(value: str | None) -> str | None:
    # After the length checks, so that what the schema allows is what is accepted.
    return None if value is None else value.strip(SPACES)


class ItemCreate(BaseModel):
    """The body of `POST /items`."""

    model_config = ConfigDict(extra="forbid")

    name: Annotated[
        str,
        Field(min_length=1, max_length=NAME_MAX_LENGTH, pattern=NOT_BLANK),
        AfterValidator(_no_nul),
        AfterValidator(_stripped),
    ]
    description: Annotated[
        str | None,
        Field(max_length=DESCRIPTION_MAX_LENGTH),
        AfterValidator(_no_nul),
        AfterValidator(_stripped),
    ] = None


class ItemRead(BaseModel):
    """An item as the API returns it."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    description: str | None


def create_item(
    session: Session, data: ItemCreate, idempotency_key: str | None = None
) -> tuple[ItemRead, bool]:
    """Store a new item; True if this call created it, False if a request with the key had.

    The session must keep what it committed (see db.sessions): the item is read
    from memory, with no query after the commit that could fail.
    """
    item = Item(name=data.name, description=data.description, idempotency_key=idempotency_key)
    session.add(item)
    try:
        session.commit()
    except IntegrityError:
        # The key's unique index: an earlier or concurrent request with it committed first.
        session.rollback()
        stored = None if idempotency_key is None else _by_key(session, idempotency_key)
        if stored is None:
            raise
        if (stored.name, stored.description) != (data.name, data.description):
            raise IdempotencyKeyReusedError(KEY_REUSED) from None
        return ItemRead.model_validate(stored), False
    return ItemRead.model_validate(item), True


def _by_key(session: Session, idempotency_key: str) -> Item | None:
    return session.scalars(select(Item).where(Item.idempotency_key == idempotency_key)).first()


def get_item(session: Session, item_id: int) -> ItemRead | None:
    item = session.get(Item, item_id)
    return None if item is None else ItemRead.model_validate(item)
