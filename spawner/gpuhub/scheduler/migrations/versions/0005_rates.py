"""Prices: admins' rates per GPU model, and the rate, tier and discount of each lease.

Leases granted before this revision are priced at 1 credit per GPU-hour (what a GPU-hour
was worth when every GPU-hour cost the same), in the guaranteed tier, undiscounted.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "rates",
        sa.Column("model", sa.String(128), primary_key=True),
        sa.Column("credits_per_gpu_hour", sa.Float, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
        sa.Column("updated_by", sa.String(255), nullable=False),
    )
    op.add_column("leases", sa.Column("rate", sa.Float, nullable=True))
    op.add_column(
        "leases", sa.Column("tier", sa.String(16), nullable=False, server_default="guaranteed")
    )
    op.add_column("leases", sa.Column("discount", sa.Float, nullable=False, server_default="1"))
    op.execute("UPDATE leases SET rate = 1 WHERE granted_at IS NOT NULL")


def downgrade() -> None:
    with op.batch_alter_table("leases") as batch:
        batch.drop_column("discount")
        batch.drop_column("tier")
        batch.drop_column("rate")
    op.drop_table("rates")
