"""Batch jobs and recurring job definitions.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "jobs",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("user", sa.String(255), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("path", sa.String(1024), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("reason", sa.String(1024), nullable=True),
        sa.Column("profile", sa.String(64), nullable=True),
        sa.Column("group_name", sa.String(255), nullable=True),
        sa.Column("image", sa.String(500), nullable=True),
        sa.Column("image_digest", sa.String(255), nullable=True),
        sa.Column("shape", sa.JSON, nullable=False),
        sa.Column("limits", sa.JSON, nullable=False),
        sa.Column("parameters", sa.JSON, nullable=False),
        sa.Column("max_runtime_s", sa.Integer, nullable=False),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("lease_id", sa.Integer, nullable=True),
        sa.Column("executor", sa.String(32), nullable=False),
        sa.Column("state", sa.JSON, nullable=True),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("started_at", sa.Float, nullable=True),
        sa.Column("ended_at", sa.Float, nullable=True),
        sa.Column("exit_code", sa.Integer, nullable=True),
        sa.Column("gpu_hours", sa.Float, nullable=True),
        sa.Column("log_tail", sa.LargeBinary, nullable=True),
        sa.Column("log_offset", sa.BigInteger, nullable=True),
        sa.Column("log_size", sa.BigInteger, nullable=True),
        sa.Column("definition_id", sa.Integer, nullable=True),
        sa.Column("idempotency_key", sa.String(128), nullable=True),
        sa.Column("request_digest", sa.String(64), nullable=True),
    )
    op.create_index("ix_jobs_user", "jobs", ["user"])
    op.create_index("ix_jobs_status", "jobs", ["status"])
    op.create_index("ix_jobs_definition_id", "jobs", ["definition_id"])
    # NULLs are distinct in a unique index (SQLite and PostgreSQL): keyless jobs never clash
    op.create_index(
        "ix_jobs_user_idempotency_key", "jobs", ["user", "idempotency_key"], unique=True
    )
    op.create_table(
        "job_definitions",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("user", sa.String(255), nullable=False),
        sa.Column("groups", sa.JSON, nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("schedule", sa.String(200), nullable=False),
        sa.Column("paused", sa.Boolean, nullable=False),
        sa.Column("request", sa.Text, nullable=False),
        sa.Column("path", sa.String(1024), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("profile", sa.String(64), nullable=True),
        sa.Column("shape", sa.JSON, nullable=False),
        sa.Column("parameters", sa.JSON, nullable=False),
        sa.Column("max_runtime_s", sa.Integer, nullable=False),
        sa.Column("next_run_at", sa.Float, nullable=True),
        sa.Column("last_run_at", sa.Float, nullable=True),
        sa.Column("last_job_id", sa.Integer, nullable=True),
        sa.Column("last_error", sa.String(1024), nullable=True),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    op.create_index("ix_job_definitions_user", "job_definitions", ["user"])
    op.create_index("ix_job_definitions_next_run_at", "job_definitions", ["next_run_at"])


def downgrade() -> None:
    op.drop_table("job_definitions")
    op.drop_table("jobs")
