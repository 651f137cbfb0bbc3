"""Reservations of devices for a group's time windows; leases remember their user's groups.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "reservations",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("group_name", sa.String(255), nullable=False),
        sa.Column("shape", sa.JSON, nullable=False),
        sa.Column("count", sa.Integer, nullable=False),
        sa.Column("devices", sa.JSON, nullable=False),
        sa.Column("start_at", sa.Float, nullable=False),
        sa.Column("end_at", sa.Float, nullable=False),
        sa.Column("repeat", sa.String(8), nullable=False),
        sa.Column("timezone", sa.String(64), nullable=False),
        sa.Column("note", sa.String(500), nullable=False),
        sa.Column("created_by", sa.String(255), nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("deleted_at", sa.Float, nullable=True),
        sa.Column("deleted_by", sa.String(255), nullable=True),
    )
    op.create_index("ix_reservations_group_name", "reservations", ["group_name"])
    op.create_index("ix_reservations_deleted_at", "reservations", ["deleted_at"])
    # nullable: leases made before this revision carry no groups (treated as none)
    op.add_column("leases", sa.Column("user_groups", sa.JSON, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("leases") as batch:
        batch.drop_column("user_groups")
    op.drop_table("reservations")
