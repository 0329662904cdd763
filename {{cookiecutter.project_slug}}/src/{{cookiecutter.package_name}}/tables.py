"""The service's tables, mapped with SQLAlchemy's ORM; Alembic compares the migrations with them.

They are apart from the request and response schemas (items.py) so that the web
process loads the ORM with its first request that needs the database, not at start.
"""

from __future__ import annotations

from sqlalchemy import String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from .items import NAME_MAX_LENGTH


class Base(DeclarativeBase):
    """Declarative base of the service's tables; Alembic compares against its metadata."""


class Item(Base):
    __tablename__ = "items"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(NAME_MAX_LENGTH))
    description: Mapped[str | None] = mapped_column(Text)
