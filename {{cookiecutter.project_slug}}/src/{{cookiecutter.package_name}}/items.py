"""The example resource: a named item stored in the database.

It shows the wiring from HTTP to a table: validated input (the schemas
here), a session per request, the queries here, and a migration for the
table (the table itself is in tables.py). Replace it with your own resources.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session

from .tables import NAME_MAX_LENGTH, Item

DESCRIPTION_MAX_LENGTH = 2000
# The largest id a PostgreSQL integer column holds; larger ids cannot exist.
MAX_ID = 2**31 - 1


def _no_nul(value: str | None) -> str | None:
    # PostgreSQL text cannot hold NUL; refuse it here rather than fail in the database.
    if value is not None and "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return value


class ItemCreate(BaseModel):
    """The body of `POST /items`."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: Annotated[str, Field(min_length=1, max_length=NAME_MAX_LENGTH), AfterValidator(_no_nul)]
    description: Annotated[
        str | None, Field(max_length=DESCRIPTION_MAX_LENGTH), AfterValidator(_no_nul)
    ] = None


class ItemRead(BaseModel):
    """An item as the API returns it."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    description: str | None


def create_item(session: Session, data: ItemCreate) -> ItemRead:
    item = Item(name=data.name, description=data.description)
    session.add(item)
    session.commit()
    return ItemRead.model_validate(item)


def get_item(session: Session, item_id: int) -> ItemRead | None:
    item = session.get(Item, item_id)
    return None if item is None else ItemRead.model_validate(item)
