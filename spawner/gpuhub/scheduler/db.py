"""The scheduler's tables (SQLAlchemy 2) and how a database is opened and migrated.

SQLite (WAL) is the embedded default; PostgreSQL is supported. The schema is owned by
Alembic (``gpuhub/scheduler/migrations``): :func:`open_engine` upgrades to head.
Timestamps are POSIX seconds (UTC) so both databases compare and sum them alike.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import (
    JSON,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    create_engine,
    event,
)
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    """Declarative base of the scheduler's tables."""


class DeviceRow(Base):
    """A device the pool has (or had): whole GPU or MIG instance."""

    __tablename__ = "devices"

    id: Mapped[str] = mapped_column(String(96), primary_key=True)  # GPU or MIG UUID
    node: Mapped[str] = mapped_column(String(255), index=True)
    kind: Mapped[str] = mapped_column(String(8))  # gpu | mig
    parent: Mapped[str | None] = mapped_column(String(96))
    model: Mapped[str] = mapped_column(String(128))
    index: Mapped[int] = mapped_column(Integer)
    profile: Mapped[str | None] = mapped_column(String(32))
    memory_mb: Mapped[int] = mapped_column(Integer)
    mode: Mapped[str] = mapped_column(String(16))  # exclusive | mig | shared
    shares: Mapped[int] = mapped_column(Integer, default=1)
    simulated: Mapped[bool] = mapped_column(Boolean, default=False)
    present: Mapped[bool] = mapped_column(Boolean, default=True)
    seen_at: Mapped[float] = mapped_column(Float)


class LeaseRow(Base):
    """A request for GPUs: queued, then active, then ended. Ended leases are the ledger."""

    __tablename__ = "leases"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    user: Mapped[str] = mapped_column(String(255), index=True)
    group: Mapped[str | None] = mapped_column("group_name", String(255), index=True)
    status: Mapped[str] = mapped_column(String(16), index=True)
    shape: Mapped[dict] = mapped_column(JSON)
    profile: Mapped[str | None] = mapped_column(String(255))
    label: Mapped[str] = mapped_column(String(255), default="")
    priority: Mapped[int] = mapped_column(Integer, default=0)
    units_num: Mapped[int] = mapped_column(Integer)
    units_den: Mapped[int] = mapped_column(Integer)
    hours: Mapped[float | None] = mapped_column(Float)  # expected duration, when stated
    node: Mapped[str | None] = mapped_column(String(255))
    devices: Mapped[list | None] = mapped_column(JSON)
    requested_at: Mapped[float] = mapped_column(Float)
    granted_at: Mapped[float | None] = mapped_column(Float)
    ended_at: Mapped[float | None] = mapped_column(Float, index=True)
    end_reason: Mapped[str | None] = mapped_column(String(1024))
    # the client's key for the request that created the lease, and a digest of that request
    idempotency_key: Mapped[str | None] = mapped_column(String(128))
    request_digest: Mapped[str | None] = mapped_column(String(64))
    # the user's hub groups when they asked (reservations admit members); null: none known
    user_groups: Mapped[list | None] = mapped_column(JSON)
    # the price in force when granted: credits per GPU-hour (of one unit), the capacity
    # tier and its discount; the charge is units x hours x rate x discount
    rate: Mapped[float | None] = mapped_column(Float)
    tier: Mapped[str] = mapped_column(String(16), default="guaranteed")
    discount: Mapped[float] = mapped_column(Float, default=1.0)
    # a preemption notice (spot or borrowed work): when given, and when the work must be
    # gone; the group whose unused share a borrowed lease runs on
    notice_at: Mapped[float | None] = mapped_column(Float)
    deadline: Mapped[float | None] = mapped_column(Float)
    borrowed_from: Mapped[str | None] = mapped_column(String(255))

    __table_args__ = (
        Index("ix_leases_user_ended", "user", "ended_at"),
        Index("ix_leases_user_idempotency_key", "user", "idempotency_key", unique=True),
    )


class ClaimRow(Base):
    """One held slot of a device. The primary key makes a double grant impossible."""

    __tablename__ = "claims"

    device_id: Mapped[str] = mapped_column(String(96), primary_key=True)
    slot: Mapped[int] = mapped_column(Integer, primary_key=True)
    lease_id: Mapped[int] = mapped_column(ForeignKey("leases.id"), index=True)


class QuotaRow(Base):
    """A quota of a user or a JupyterHub group."""

    __tablename__ = "quotas"

    kind: Mapped[str] = mapped_column(String(8), primary_key=True)  # user | group
    name: Mapped[str] = mapped_column(String(255), primary_key=True)
    spec: Mapped[dict] = mapped_column(JSON)
    updated_at: Mapped[float] = mapped_column(Float)
    updated_by: Mapped[str] = mapped_column(String(255))


class RateRow(Base):
    """An admin's rate for a GPU model (credits per GPU-hour); it wins over configuration."""

    __tablename__ = "rates"

    model: Mapped[str] = mapped_column(String(128), primary_key=True)
    credits_per_gpu_hour: Mapped[float] = mapped_column(Float)
    updated_at: Mapped[float] = mapped_column(Float)
    updated_by: Mapped[str] = mapped_column(String(255))


class ReservationRow(Base):
    """Devices reserved for a group's members in a time window, once or weekly."""

    __tablename__ = "reservations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    group: Mapped[str] = mapped_column("group_name", String(255), index=True)
    shape: Mapped[dict] = mapped_column(JSON)
    count: Mapped[int] = mapped_column(Integer)
    devices: Mapped[list] = mapped_column(JSON)  # what each reserved device is (uuid, node, ...)
    start: Mapped[float] = mapped_column("start_at", Float)  # the first window (POSIX seconds)
    end: Mapped[float] = mapped_column("end_at", Float)
    repeat: Mapped[str] = mapped_column(String(8))  # once | weekly
    timezone: Mapped[str] = mapped_column(String(64))  # weekly windows keep its wall-clock time
    note: Mapped[str] = mapped_column(String(500), default="")
    created_by: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[float] = mapped_column(Float)
    deleted_at: Mapped[float | None] = mapped_column(Float, index=True)
    deleted_by: Mapped[str | None] = mapped_column(String(255))


MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(url: str):
    """An Alembic ``Config`` for the scheduler database at ``url``."""
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def open_engine(url: str, *, upgrade: bool = True) -> Engine:
    """Open the scheduler database and bring its schema to the newest revision."""
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    kwargs: dict = {"future": True}
    if url.startswith("sqlite"):
        kwargs["connect_args"] = {"timeout": 30}
    engine = create_engine(url, **kwargs)
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    if upgrade:
        from alembic import command

        cfg = alembic_config(url)
        with engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")
    return engine


def _sqlite_pragmas(dbapi_conn, _record) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()
