"""Add the items' idempotency key: a retried POST /items creates no second item.

Revision ID: 0004
Revises: {% if cookiecutter.worker != 'none' %}0003{% else %}0001{% endif %}
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "{% if cookiecutter.worker != 'none' %}0003{% else %}0001{% endif %}"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("items", sa.Column("idempotency_key", sa.String(length=128), nullable=True))
    # Unique, and NULL for items created without a key: both databases allow many NULLs.
    op.create_index(op.f("ix_items_idempotency_key"), "items", ["idempotency_key"], unique=True)


def downgrade() -> None:
    op.drop_index(op.f("ix_items_idempotency_key"), table_name="items")
    op.drop_column("items", "idempotency_key")
