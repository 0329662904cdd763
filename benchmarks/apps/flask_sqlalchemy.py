"""The bare Flask app plus the service's database read, written plainly with SQLAlchemy's ORM.

The baseline for a service that serves a database: the same library, the same table,
the same read of one row and the same readiness query, without the template's settings,
logging or layout. The engine is created at import, as SQLAlchemy's docs do it.
"""

import os

from flask import Flask, abort
from sqlalchemy import String, Text, create_engine, text
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

engine = create_engine(os.environ["DATABASE_URL"])


class Base(DeclarativeBase):
    pass


class Item(Base):
    __tablename__ = "items"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(Text)


app = Flask(__name__)


@app.get("/healthz")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@app.get("/readyz")
def readyz() -> dict[str, str]:
    # What the service's readiness does: a trivial query on a pooled connection.
    with engine.connect() as connection:
        connection.execute(text("SELECT 1"))
    return {"status": "ok"}


@app.get("/items/<int:item_id>")
def read_item(item_id: int) -> dict[str, object]:
    with Session(engine) as session:
        item = session.get(Item, item_id)
        if item is None:
            abort(404)
        return {"id": item.id, "name": item.name, "description": item.description}
