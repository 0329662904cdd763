"""The bare FastAPI app plus the service's database layer at start: SQLAlchemy's ORM, an engine."""

from fastapi import FastAPI
from sqlalchemy import create_engine
from sqlalchemy.orm import DeclarativeBase

# As the service does: its models import the ORM, its app creates an engine (no connection yet).
engine = create_engine("sqlite://")


class Base(DeclarativeBase):
    """A declarative base, as the service's models have."""


app = FastAPI()


@app.get("/healthz")
def healthz() -> dict[str, str]:
    return {"status": "ok"}
