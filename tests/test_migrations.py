"""The Alembic migrations build exactly the schema the models declare, on both databases."""

from __future__ import annotations

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from gpuhub.scheduler.db import Base, alembic_config, open_engine
from sqlalchemy import create_engine, inspect


def test_upgrade_builds_the_declared_schema(db_url):
    engine = open_engine(db_url)
    try:
        with engine.connect() as conn:
            ctx = MigrationContext.configure(conn)
            diff = compare_metadata(ctx, Base.metadata)
            head = ScriptDirectory.from_config(alembic_config(db_url)).get_current_head()
            assert ctx.get_current_revision() == head
        assert diff == [], f"models and migrations disagree: {diff}"
    finally:
        engine.dispose()


def test_upgrade_is_idempotent_and_downgrade_removes_everything(db_url):
    open_engine(db_url).dispose()
    engine = open_engine(db_url)  # a second start finds the schema current
    engine.dispose()
    cfg = alembic_config(db_url)
    url = db_url.replace("postgresql://", "postgresql+psycopg://")
    with create_engine(url).begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "base")
    plain = create_engine(url)
    try:
        assert set(inspect(plain).get_table_names()) <= {"alembic_version"}
    finally:
        plain.dispose()
