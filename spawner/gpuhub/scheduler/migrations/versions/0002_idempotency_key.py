"""Leases remember the idempotency key and request digest they were created with.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # nullable: leases created before keys existed (or without one) have none
    op.add_column("leases", sa.Column("idempotency_key", sa.String(128), nullable=True))
    op.add_column("leases", sa.Column("request_digest", sa.String(64), nullable=True))
    # NULLs are distinct in a unique index (SQLite and PostgreSQL): keyless leases never clash
    op.create_index(
        "ix_leases_user_idempotency_key", "leases", ["user", "idempotency_key"], unique=True
    )


def downgrade() -> None:
    with op.batch_alter_table("leases") as batch:
        batch.drop_index("ix_leases_user_idempotency_key")
        batch.drop_column("request_digest")
        batch.drop_column("idempotency_key")
