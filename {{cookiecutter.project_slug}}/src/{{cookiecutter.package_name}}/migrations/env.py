"""Alembic's entry point, used by the `migrate` command and by the `alembic` CLI.

`migrate` hands over its own connection (holding the migration lock); the
`alembic` CLI (`alembic revision --autogenerate`, `alembic check`) gets one
made from the same settings as every other process.
"""

from alembic import context
from sqlalchemy import Connection

from {{ cookiecutter.package_name }}.db import create_database_engine
from {{ cookiecutter.package_name }}.logs import configure_logging
from {{ cookiecutter.package_name }}.settings import load_settings
from {{ cookiecutter.package_name }}.tables import Base


def run_migrations(connection: Connection) -> None:
    context.configure(connection=connection, target_metadata=Base.metadata)
    with context.begin_transaction():
        context.run_migrations()


connection = context.config.attributes.get("connection")
if connection is not None:
    run_migrations(connection)
else:
    settings = load_settings()
    configure_logging(settings)
    engine = create_database_engine(settings)
    with engine.connect() as own_connection:
        run_migrations(own_connection)
    engine.dispose()
