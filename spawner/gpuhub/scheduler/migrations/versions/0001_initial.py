"""Devices, leases, claims and quotas.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "devices",
        sa.Column("id", sa.String(96), primary_key=True),
        sa.Column("node", sa.String(255), nullable=False),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("parent", sa.String(96), nullable=True),
        sa.Column("model", sa.String(128), nullable=False),
        sa.Column("index", sa.Integer, nullable=False),
        sa.Column("profile", sa.String(32), nullable=True),
        sa.Column("memory_mb", sa.Integer, nullable=False),
        sa.Column("mode", sa.String(16), nullable=False),
        sa.Column("shares", sa.Integer, nullable=False),
        sa.Column("simulated", sa.Boolean, nullable=False),
        sa.Column("present", sa.Boolean, nullable=False),
        sa.Column("seen_at", sa.Float, nullable=False),
    )
    op.create_index("ix_devices_node", "devices", ["node"])
    op.create_table(
        "leases",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("user", sa.String(255), nullable=False),
        sa.Column("group_name", sa.String(255), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("shape", sa.JSON, nullable=False),
        sa.Column("profile", sa.String(255), nullable=True),
        sa.Column("label", sa.String(255), nullable=False),
        sa.Column("priority", sa.Integer, nullable=False),
        sa.Column("units_num", sa.Integer, nullable=False),
        sa.Column("units_den", sa.Integer, nullable=False),
        sa.Column("hours", sa.Float, nullable=True),
        sa.Column("node", sa.String(255), nullable=True),
        sa.Column("devices", sa.JSON, nullable=True),
        sa.Column("requested_at", sa.Float, nullable=False),
        sa.Column("granted_at", sa.Float, nullable=True),
        sa.Column("ended_at", sa.Float, nullable=True),
        sa.Column("end_reason", sa.String(1024), nullable=True),
    )
    op.create_index("ix_leases_user", "leases", ["user"])
    op.create_index("ix_leases_group_name", "leases", ["group_name"])
    op.create_index("ix_leases_status", "leases", ["status"])
    op.create_index("ix_leases_ended_at", "leases", ["ended_at"])
    op.create_index("ix_leases_user_ended", "leases", ["user", "ended_at"])
    op.create_table(
        "claims",
        sa.Column("device_id", sa.String(96), primary_key=True),
        sa.Column("slot", sa.Integer, primary_key=True),
        sa.Column("lease_id", sa.Integer, sa.ForeignKey("leases.id"), nullable=False),
    )
    op.create_index("ix_claims_lease_id", "claims", ["lease_id"])
    op.create_table(
        "quotas",
        sa.Column("kind", sa.String(8), primary_key=True),
        sa.Column("name", sa.String(255), primary_key=True),
        sa.Column("spec", sa.JSON, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
        sa.Column("updated_by", sa.String(255), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("quotas")
    op.drop_table("claims")
    op.drop_table("leases")
    op.drop_table("devices")
