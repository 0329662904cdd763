"""Backing services (factor IV): the database is an attached resource.

DATABASE_URL alone chooses SQLite or PostgreSQL; the code is the same. The
engine's pool is created per process and closed when the process stops.
"""

from __future__ import annotations

import threading
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .settings import Settings

if TYPE_CHECKING:
    from alembic.config import Config
    from sqlalchemy import Connection, Engine
    from sqlalchemy.engine import URL
    from sqlalchemy.orm import Session

# SQLAlchemy is imported where it is used, not here: the web process imports this module at
# start, and SQLAlchemy is most of a start's imports (and 20 MiB). /healthz needs none of it.

CONNECT_TIMEOUT_SECONDS = 3
# One lock per service, the same in every process that runs `migrate`.
MIGRATION_LOCK_ID = zlib.crc32(f"{__package__}:migrate".encode())


class DatabaseUnavailableError(Exception):
    """The database did not answer (down, unreachable, pool exhausted): an outage, not a bug."""


def engine_url(database_url: str) -> URL:
    """The SQLAlchemy URL, with platform spellings (postgres://) mapped to psycopg 3."""
    from sqlalchemy import make_url

    url = make_url(database_url)
    if url.drivername in ("postgres", "postgresql"):
        url = url.set(drivername="postgresql+psycopg")
    return url


def create_database_engine(settings: Settings) -> Engine:
    from sqlalchemy import create_engine

    url = engine_url(settings.database_url.get_secret_value())
    if url.get_backend_name() == "sqlite":
        return _sqlite_engine(url)
    return create_engine(
        url,
        pool_pre_ping=True,  # a restarted database costs one failed ping, not a failed request
        connect_args={"connect_timeout": CONNECT_TIMEOUT_SECONDS},
    )


class LazyEngine:
    """The process's engine, created on first use.

    Creating an engine imports the database driver, psycopg above all: a good part of a
    web process's start. /healthz needs no database, so the first request that does
    creates it (the platform's first /readyz, usually).
    """

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._engine: Engine | None = None
        self._lock = threading.Lock()  # request threads may ask at the same time

    def get(self) -> Engine:
        if self._engine is None:
            with self._lock:
                if self._engine is None:
                    self._engine = create_database_engine(self._settings)
        return self._engine

    def ping(self) -> None:
        """Raise if the database cannot answer a trivial query."""
        ping(self.get())

    def dispose(self) -> None:
        """Close the pool, if there is one."""
        if self._engine is not None:
            self._engine.dispose()


def _sqlite_engine(url: URL) -> Engine:
    from sqlalchemy import create_engine, event

    if url.database and url.database != ":memory:":
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, connect_args={"timeout": CONNECT_TIMEOUT_SECONDS})

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_connection: Any, _record: Any) -> None:
        # WAL lets several processes read while one writes.
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    return engine


@contextmanager
def session_scope(engine: LazyEngine) -> Iterator[Session]:
    """A session on the process's engine, closed afterwards.

    An error of the database's own (down, unreachable, pool exhausted) is raised as
    DatabaseUnavailableError, which the app answers 503: the app names no SQLAlchemy class,
    so it loads SQLAlchemy with its first request that needs the database.
    """
    from sqlalchemy.exc import InterfaceError, OperationalError
    from sqlalchemy.exc import TimeoutError as PoolTimeoutError
    from sqlalchemy.orm import Session

    try:
        with Session(engine.get()) as session:
            yield session
    except (OperationalError, InterfaceError, PoolTimeoutError) as exc:
        raise DatabaseUnavailableError from exc  # the handler logs the cause


def ping(engine: Engine) -> None:
    """Raise if the database cannot answer a trivial query."""
    from sqlalchemy import text

    with engine.connect() as connection:
        connection.execute(text("SELECT 1"))


def alembic_config() -> Config:
    # Imported here: only the release process needs Alembic, not the web process.
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", f"{__package__}:migrations")
    return config


@contextmanager
def migration_lock(connection: Connection) -> Iterator[None]:
    """Serialise concurrent `migrate` runs (replicas, release phases) on PostgreSQL."""
    from sqlalchemy import text

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
    from alembic import command

    config = alembic_config()
    with engine.connect() as connection, migration_lock(connection):
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
        connection.commit()
