"""The service's tables, mapped with SQLAlchemy's ORM.

Every table is declared here, on `Base`: Alembic compares its metadata with
the migrations (`uv run alembic revision --autogenerate` writes a new one,
`make check-migrations` fails while one is missing). The API's request and
response schemas live with each resource (items.py{% if cookiecutter.worker != "none" %}, reports.py{% endif %}).
"""

from __future__ import annotations
{%- if cookiecutter.worker != "none" %}

from datetime import datetime
{%- endif %}

from sqlalchemy import {% if cookiecutter.worker != "none" %}DateTime, {% endif %}String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAME_MAX_LENGTH = 200
IDEMPOTENCY_KEY_MAX_LENGTH = 128
{%- if cookiecutter.worker != "none" %}
# A failed report keeps one line on why: the error's type and first line, no SQL.
ERROR_MAX_LENGTH = 200
{%- endif %}


class Base(DeclarativeBase):
    """Declarative base of the service's tables; Alembic compares against its metadata."""


class Item(Base):
    __tablename__ = "items"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(NAME_MAX_LENGTH))
    description: Mapped[str | None] = mapped_column(Text)
    # The client's Idempotency-Key of the request that created the item, if it sent one.
    idempotency_key: Mapped[str | None] = mapped_column(
        String(IDEMPOTENCY_KEY_MAX_LENGTH), index=True, unique=True
    )
{%- if cookiecutter.worker != "none" %}


class Report(Base):
    __tablename__ = "reports"

    id: Mapped[int] = mapped_column(primary_key=True)
    status: Mapped[str] = mapped_column(String(16))
    item_count: Mapped[int | None]
    word_count: Mapped[int | None]
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    error: Mapped[str | None] = mapped_column(String(ERROR_MAX_LENGTH))
{%- endif %}
