"""Backing services (factor IV): the database is an attached resource.

DATABASE_URL alone chooses SQLite or PostgreSQL; the code is the same. Each
process creates its engine once (the web app in its factory) and disposes of
it when it stops; creating one connects to nothing.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy
from sqlalchemy import URL, Connection, Engine, event, make_url, text
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.orm import Session, sessionmaker

from .settings import Settings

CONNECT_TIMEOUT_SECONDS = 3
# One lock per service, the same in every process that runs `migrate`.
MIGRATION_LOCK_ID = zlib.crc32(f"{__package__}:migrate".encode())
# The database's own failures (down, unreachable, pool exhausted): an outage, not a bug.
# The web app answers them 503, fast, so that clients retry.
DATABASE_OUTAGES = (OperationalError, InterfaceError, PoolTimeoutError)


def engine_url(database_url: str) -> URL:
    """The SQLAlchemy URL, with platform spellings (postgres://) mapped to psycopg 3."""
    url = make_url(database_url)
    if url.drivername in ("postgres", "postgresql"):
        url = url.set(drivername="postgresql+psycopg")
    return url


def create_database_engine(settings: Settings) -> Engine:
    url = engine_url(settings.database_url.get_secret_value())
    if url.get_backend_name() == "sqlite":
        return sqlite_engine(url)
    # sqlalchemy.create_engine is looked up as it is called: an instrumentation that wraps it
    # (OpenTelemetry's) then sees every engine, whenever it was installed.
    return sqlalchemy.create_engine(
        url,
        pool_pre_ping=True,  # a restarted database costs one failed ping, not a failed request
        connect_args={"connect_timeout": CONNECT_TIMEOUT_SECONDS},
    )


def sqlite_engine(url: URL) -> Engine:
    # Connects to nothing, creates nothing: `migrate` makes the file's directory.
    engine = sqlalchemy.create_engine(url, connect_args={"timeout": CONNECT_TIMEOUT_SECONDS})

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_connection: Any, _record: Any) -> None:
        # WAL lets several processes read while one writes.
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    return engine


def sessions(engine: Engine) -> sessionmaker[Session]:
    """Sessions for requests: what a request wrote stays readable after its commit.

    So a response is built from what was committed, with no query after the
    commit that could fail (and answer an error for a write that was done).
    """
    return sessionmaker(engine, expire_on_commit=False)


def ping(engine: Engine) -> None:
    """Raise if the database cannot answer a trivial query."""
    with engine.connect() as connection:
        connection.execute(text("SELECT 1"))


@contextmanager
def migration_lock(connection: Connection) -> Iterator[None]:
    """Serialise concurrent `migrate` runs (replicas, release phases) on PostgreSQL."""
    if connection.dialect.name != "postgresql":
        yield  # SQLite is a local file: one process migrates it.
        return
    connection.execute(text("SELECT pg_advisory_lock(:id)"), {"id": MIGRATION_LOCK_ID})
    connection.commit()
    try:
        yield
    finally:
        connection.execute(text("SELECT pg_advisory_unlock(:id)"), {"id": MIGRATION_LOCK_ID})
        connection.commit()


def migrate(engine: Engine) -> None:
    """Upgrade the schema to the newest migration; safe to run again and concurrently."""
    # Alembic is the release process's alone: at the top, it would add a fifth to each web start.
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", f"{__package__}:migrations")
    database = engine.url.database
    if engine.url.get_backend_name() == "sqlite" and database and database != ":memory:":
        Path(database).parent.mkdir(parents=True, exist_ok=True)
    with engine.connect() as connection, migration_lock(connection):
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
        connection.commit()
