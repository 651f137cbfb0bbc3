"""Spot capacity: a lease's preemption notice and the group it borrows from; a job's tier,
retry policy and attempts.

A lease under notice has ``notice_at`` (when gpuhub asked its work to stop) and
``deadline`` (when it must be gone); ``borrowed_from`` names the group whose unused share
a borrowed lease runs on. A job keeps its tier, its retry policy per failure class, its
attempt number, the attempts that ended before this one, and when the next one may start.
Existing leases and jobs read as guaranteed, never noticed, on their first attempt.

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("leases", sa.Column("notice_at", sa.Float, nullable=True))
    op.add_column("leases", sa.Column("deadline", sa.Float, nullable=True))
    op.add_column("leases", sa.Column("borrowed_from", sa.String(255), nullable=True))
    op.add_column(
        "jobs", sa.Column("tier", sa.String(16), nullable=False, server_default="guaranteed")
    )
    op.add_column("jobs", sa.Column("retry", sa.JSON, nullable=True))
    op.add_column("jobs", sa.Column("attempt", sa.Integer, nullable=False, server_default="1"))
    op.add_column("jobs", sa.Column("attempts", sa.JSON, nullable=True))
    op.add_column("jobs", sa.Column("next_attempt_at", sa.Float, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        for column in ("next_attempt_at", "attempts", "attempt", "retry", "tier"):
            batch.drop_column(column)
    with op.batch_alter_table("leases") as batch:
        for column in ("borrowed_from", "deadline", "notice_at"):
            batch.drop_column(column)
