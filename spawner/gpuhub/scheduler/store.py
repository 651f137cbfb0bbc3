"""The scheduler's SQL: prebuilt statements, the guarded transaction, loading and lookups.

Decisions are made in memory (:mod:`.core`) and written here in one transaction each,
all on one connection the store keeps (the scheduler is the one writer). The writes
every decision makes (a lease inserted, granted or ended, its claims) are
:class:`DriverStatement`: SQLAlchemy's statement text and parameter processing, compiled
once. On SQLite they run on the driver's cursor. On PostgreSQL with psycopg a decision's
writes are held until it commits and then go to the server as one message (``BEGIN``,
the writes with their values rendered by psycopg, ``COMMIT``): one round trip and one
WAL flush per decision. A decision that also runs anything else (an administrator's
write, a read inside the transaction) sends what it holds first and goes on as an
ordinary transaction.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from sqlalchemy import bindparam, delete, event, insert, select, update
from sqlalchemy.engine import Connection, Dialect, Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.sql.dml import UpdateBase

from ..inventory import Node
from ..terms import ACTIVE, LIVE_STATUSES
from .db import ClaimRow, DeviceRow, LeaseRow, QuotaRow
from .errors import SchedulerError
from .lease import Lease, lease_from_row, lease_row
from .quota import QuotaSpec

log = logging.getLogger("gpuhub.scheduler")

LEASES = LeaseRow.__table__
CLAIMS = ClaimRow.__table__
QUOTAS = QuotaRow.__table__
DEVICES = DeviceRow.__table__

# Built once: the hot path only binds parameters (no statement building per decision).
INSERT_LEASE = insert(LEASES)
INSERT_CLAIM = insert(CLAIMS)
GRANT_LEASE = (
    update(LEASES)
    .where(LEASES.c.id == bindparam("lid"))
    .values(
        status=bindparam("status"),
        granted_at=bindparam("granted_at"),
        node=bindparam("node"),
        devices=bindparam("devices", type_=LEASES.c.devices.type),
        units_num=bindparam("units_num"),
        units_den=bindparam("units_den"),
        rate=bindparam("rate"),
        tier=bindparam("tier"),
        discount=bindparam("discount"),
        borrowed_from=bindparam("borrowed_from"),
    )
)
END_LEASE = (
    update(LEASES)
    .where(LEASES.c.id == bindparam("lid"), LEASES.c.status == bindparam("was"))
    .values(
        status=bindparam("status"),
        ended_at=bindparam("ended_at"),
        end_reason=bindparam("end_reason"),
    )
)
UPDATE_DEVICE = (
    update(DEVICES)
    .where(DEVICES.c.id == bindparam("device"))
    .values({c.name: bindparam(c.name) for c in DEVICES.c if c.name != "id"})
)
DELETE_CLAIMS = delete(CLAIMS).where(CLAIMS.c.lease_id == bindparam("lid"))
SET_DEVICES = (
    update(LEASES)
    .where(LEASES.c.id == bindparam("lid"))
    .values(devices=bindparam("devices", type_=LEASES.c.devices.type))
)
GIVE_NOTICE = (
    update(LEASES)
    .where(LEASES.c.id == bindparam("lid"), LEASES.c.status == ACTIVE)
    .values(notice_at=bindparam("notice_at"), deadline=bindparam("deadline"))
)

# For this transaction alone: COMMIT returns once the WAL record is written, not flushed.
NO_FLUSH_WAIT = "SET LOCAL synchronous_commit TO OFF"


def claim_rows(lease: Lease) -> list[dict]:
    """The ``claims`` rows of an active lease's slots."""
    return [{"device_id": d, "slot": s, "lease_id": lease.id} for d, s in lease.slots]


class DriverStatement:
    """A write compiled once for one database and run on its driver's cursor.

    The text and the bind processing (JSON, floats) are SQLAlchemy's own, so the database
    gets what ``conn.execute(stmt, params)`` would send; what is skipped is SQLAlchemy's
    per-execution work (cache lookup, execution context, result set-up), which costs
    several times what SQLite itself spends on these one-row writes. Every value must be a
    bound parameter (no literals in ``.values()``).
    """

    def __init__(self, stmt: UpdateBase, dialect: Dialect) -> None:
        compiled = stmt.compile(dialect=dialect)
        self.sql = compiled.string
        self.names: Sequence[str] = compiled.positiontup or ()  # () for named parameters
        self.process: list[tuple[str, Callable[[Any], Any]]] = []
        for name, bind in compiled.binds.items():
            proc = bind.type.dialect_impl(dialect).bind_processor(dialect)
            if proc is not None:
                self.process.append((name, proc))

    def _params(self, row: dict[str, Any]) -> Any:
        if self.process:
            row = dict(row)
            for name, proc in self.process:
                row[name] = proc(row[name])
        return tuple(row[n] for n in self.names) if self.names else row

    def run(self, conn: Connection, params: dict[str, Any] | list[dict[str, Any]]) -> None:
        """Execute in ``conn``'s transaction: once, or once per row of a list."""
        cur = conn.connection.driver_connection.cursor()
        try:
            if isinstance(params, list):
                cur.executemany(self.sql, [self._params(p) for p in params])
            else:
                cur.execute(self.sql, self._params(params))
        finally:
            cur.close()

    def render(self, client: Any, params: dict[str, Any] | list[dict[str, Any]]) -> list[str]:
        """The statement once, or once per row of a list, with its values as literals
        (``client``: a psycopg ``ClientCursor``, which quotes them as the server expects)."""
        rows = params if isinstance(params, list) else [params]
        return [client.mogrify(self.sql, self._params(p)) for p in rows]


class Batch:
    """The writes of one PostgreSQL decision, held until it commits.

    ``pending`` is None once the decision has run anything else on its connection: what
    it held was sent then, and the rest of the transaction runs statement by statement.
    """

    def __init__(self, conn: Connection, client: Any) -> None:
        self.conn = conn
        self.client = client
        self.pending: list[str] | None = []

    def holding(self, conn: Connection) -> bool:
        """Whether writes on ``conn`` are still held (not yet sent)."""
        return self.conn is conn and self.pending is not None

    def send_pending(self) -> None:
        """Send what is held into the open transaction (psycopg begins it) and stop holding."""
        held, self.pending = self.pending, None
        if held:
            self.conn.connection.driver_connection.execute(";".join(held), prepare=False)

    def commit(self, *, wait_for_flush: bool) -> None:
        """Send the held writes and their COMMIT as one message (nothing was sent before,
        so the driver is outside any transaction and the message brings its own)."""
        held, self.pending = self.pending, None
        if not held:
            return  # nothing written: nothing to commit
        raw = self.conn.connection.driver_connection
        sql = ";".join(["BEGIN", *held, *([] if wait_for_flush else [NO_FLUSH_WAIT]), "COMMIT"])
        raw.autocommit = True
        try:
            raw.execute(sql, prepare=False)  # each text is new: not worth psycopg's cache
        except Exception:
            # a write refused inside the BEGIN, or the connection lost: the driver connection
            # goes (never back to the pool in autocommit, or in a failed transaction)
            self.conn.invalidate()
            raise
        raw.autocommit = False


class Store:
    """The scheduler database: one engine, one writer (the scheduler's thread)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.batched = engine.dialect.name == "postgresql" and engine.dialect.driver == "psycopg"
        # the writes run on the driver's cursor (DriverStatement) or go in one message
        # (Batch), and raise the driver's own errors (the driver is imported only where
        # it is used: a SQLite service never loads psycopg)
        self.integrity_errors = (IntegrityError, engine.dialect.loaded_dbapi.IntegrityError)
        self._granting = False  # the open transaction grants (or gives notice): flush it
        self._batch: Batch | None = None  # the open decision's held writes (PostgreSQL)
        self._writer: Connection | None = None  # the connection every decision runs on
        event.listen(engine, "engine_disposed", lambda _engine: self.close())
        if self.batched:
            event.listen(engine, "before_execute", self._before_execute)
        hot = (INSERT_LEASE, INSERT_CLAIM, GRANT_LEASE, END_LEASE, DELETE_CLAIMS)
        self._insert_lease, self._insert_claims, self._grant, self._end, self._unclaim = (
            DriverStatement(stmt, engine.dialect) for stmt in hot
        )

    # -- writing ---------------------------------------------------------------------

    def guarded(
        self, fn: Callable[[Connection], Any], resync: Callable[[], None], *, lazy: bool = False
    ) -> Any:
        """Run ``fn`` in one transaction; on any failure call ``resync`` and re-raise.

        ``resync`` rebuilds memory from the database, which the failed transaction left
        as it was. A write the database refuses (a slot claimed twice) becomes a
        :class:`SchedulerError` asking the client to try again.

        ``lazy``: on PostgreSQL, a transaction that grants nothing (no claim written, no
        notice given) commits without waiting for its WAL flush (``synchronous_commit``
        off for it alone). Such a transaction (a release, a cancellation, a request that
        queues) is durable at the next grant's commit, which flushes the WAL up to
        itself, or within PostgreSQL's WAL writer delay; docs/explanation/architecture.md
        ("One writer") says what a database crash may lose. A grant always waits.
        """
        self._granting = False
        try:
            conn = self._writer_connection()
            batch = self._batch = Batch(conn, self._client(conn)) if self.batched else None
            try:
                with conn.begin():
                    out = fn(conn)
                    if batch is None:
                        return out
                    wait = not lazy or self._granting
                    if batch.pending is not None:  # only held writes: one message
                        batch.commit(wait_for_flush=wait)
                    elif not wait:
                        conn.connection.driver_connection.execute(NO_FLUSH_WAIT)
                    return out
            except BaseException:
                self.close()  # the next decision starts on a new connection
                raise
            finally:
                self._batch = None
        except SchedulerError:
            resync()
            raise
        except self.integrity_errors as e:
            log.error("database refused a scheduler write, reloading state: %s", e)
            resync()
            raise SchedulerError("the pool changed under this request; try again") from e
        except Exception:
            resync()
            raise

    def _writer_connection(self) -> Connection:
        """The connection every decision runs on: the scheduler is the one writer, so it
        keeps one rather than taking one from the pool per decision."""
        conn = self._writer
        if conn is None or conn.closed or conn.invalidated:
            conn = self._writer = self.engine.connect()
        return conn

    def close(self) -> None:
        """Give the decisions' connection back (also when the engine is disposed)."""
        conn, self._writer = self._writer, None
        if conn is not None and not conn.closed:
            conn.close()

    def _client(self, conn: Connection) -> Any:
        """The psycopg ClientCursor that renders values for ``conn``'s driver connection."""
        info = conn.connection.info  # the pool's, kept as long as the driver connection is
        raw = conn.connection.driver_connection
        client = info.get("gpuhub_client")
        if client is None or client.connection is not raw:
            from psycopg import ClientCursor  # PostgreSQL only

            client = info["gpuhub_client"] = ClientCursor(raw)
        return client

    def _before_execute(self, conn: Connection, *_: Any) -> None:
        """Anything else run in the open decision's transaction: send its held writes first,
        so the database sees every statement in the order the decision made them."""
        if self._batch is not None and self._batch.holding(conn):
            self._batch.send_pending()

    def _write(self, conn: Connection, stmt: DriverStatement, params: Any) -> None:
        batch = self._batch
        if batch is not None and batch.holding(conn):
            batch.pending.extend(stmt.render(batch.client, params))
        else:
            stmt.run(conn, params)

    def rows(self, query: Any, conn: Connection | None = None) -> list[tuple]:
        """Rows of ``query``: inside the open transaction ``conn``, else on a connection of
        its own (so that a write in progress reads what it has written)."""
        if conn is not None:
            return [tuple(r) for r in conn.execute(query)]
        with self.engine.connect() as c:
            return [tuple(r) for r in c.execute(query)]

    def insert_lease(self, conn: Connection, lease: Lease) -> None:
        """Write a new lease (queued or active; an active one's claims separately)."""
        self._write(conn, self._insert_lease, lease_row(lease))

    def insert_claims(self, conn: Connection, lease: Lease) -> None:
        """Write the claims of an active lease's slots (a grant: its commit is flushed)."""
        self._granting = True
        self._write(conn, self._insert_claims, claim_rows(lease))

    def grant_lease(self, conn: Connection, lease: Lease) -> None:
        """Write a queued lease as granted: its claims, then its placement."""
        self.insert_claims(conn, lease)
        self._write(
            conn,
            self._grant,
            {
                "lid": lease.id, "status": ACTIVE, "granted_at": lease.granted_at,
                "node": lease.node,
                "devices": lease.devices, "units_num": lease.units.numerator,
                "units_den": lease.units.denominator, "rate": lease.rate,
                "tier": lease.tier, "discount": lease.discount,
                "borrowed_from": lease.borrowed_from,
            },
        )  # fmt: skip

    def end_lease(self, conn: Connection, lease: Lease, was: str) -> None:
        """Write a lease as ended (its status, time and reason); ``was`` is its status
        before, and an active lease's claims go."""
        self._write(
            conn,
            self._end,
            {
                "lid": lease.id, "was": was, "status": lease.status,
                "ended_at": lease.ended_at, "end_reason": lease.end_reason,
            },
        )  # fmt: skip
        if was == ACTIVE:
            self._write(conn, self._unclaim, {"lid": lease.id})

    def give_notice(self, conn: Connection, lease: Lease) -> None:
        """Write an active lease's preemption notice (when given, when it must be gone)."""
        self._granting = True
        conn.execute(
            GIVE_NOTICE, {"lid": lease.id, "notice_at": lease.notice_at, "deadline": lease.deadline}
        )

    def move_lease(self, conn: Connection, lease: Lease) -> None:
        """Write an active lease's new devices and their claims (its old claims gone)."""
        conn.execute(SET_DEVICES, {"lid": lease.id, "devices": lease.devices})
        self.insert_claims(conn, lease)

    @staticmethod
    def write_quota(conn: Connection, kind: str, name: str, row: dict, *, exists: bool) -> None:
        """Insert or replace the quota of a user or group."""
        if exists:
            conn.execute(
                update(QuotaRow).where(QuotaRow.kind == kind, QuotaRow.name == name).values(**row)
            )
        else:
            conn.execute(insert(QuotaRow).values(kind=kind, name=name, **row))

    @staticmethod
    def delete_quota(conn: Connection, kind: str, name: str) -> None:
        """Remove the quota of a user or group."""
        conn.execute(delete(QuotaRow).where(QuotaRow.kind == kind, QuotaRow.name == name))

    # -- loading ---------------------------------------------------------------------

    @contextmanager
    def loading(self) -> Iterator[Connection]:
        """The transaction in which the scheduler reloads its picture (and dispatches)."""
        with self.engine.begin() as conn:
            yield conn

    @staticmethod
    def sync_devices(conn: Connection, nodes: Iterable[Node], now: float) -> None:
        """Record the inventory in ``devices``: present ones updated, gone ones marked."""
        conn.execute(update(DeviceRow).values(present=False))
        known = set(conn.execute(select(DeviceRow.id)).scalars())
        rows = []
        for node in nodes:
            for g in node.gpus:
                base = {"node": node.name, "model": g.model, "index": g.index,
                        "simulated": g.simulated}  # fmt: skip
                rows.append({
                    **base, "id": g.uuid, "kind": "gpu", "parent": None, "profile": None,
                    "memory_mb": g.memory_mb, "mode": g.mode, "shares": g.shares,
                })  # fmt: skip
                for m in g.mig_instances:
                    rows.append({
                        **base, "id": m.uuid, "kind": "mig", "parent": g.uuid,
                        "profile": m.profile, "memory_mb": m.memory_mb, "mode": "mig",
                        "shares": 1,
                    })  # fmt: skip
        # one statement for each kind of write, each sent with all of its rows: a cluster
        # has thousands of devices, and the inventory is read again every refresh
        updates, inserts = [], []
        for r in rows:
            r.update(present=True, seen_at=now)
            if r["id"] in known:
                updates.append({**r, "device": r["id"]})
                del updates[-1]["id"]  # the key, not a column to set
            else:
                inserts.append(r)
        if updates:
            conn.execute(UPDATE_DEVICE, updates)
        if inserts:
            conn.execute(insert(DEVICES), inserts)

    @staticmethod
    def load_quotas(conn: Connection) -> dict[tuple[str, str], QuotaSpec]:
        """Every quota, by (kind, name)."""
        return {
            (q.kind, q.name): QuotaSpec.model_validate(q.spec) for q in conn.execute(select(QUOTAS))
        }

    @staticmethod
    def next_lease_id(conn: Connection) -> int:
        """The id the next lease gets (ids are never reused)."""
        top = conn.execute(select(LeaseRow.id).order_by(LeaseRow.id.desc())).scalar()
        return (top or 0) + 1

    @staticmethod
    def load_live(conn: Connection) -> list[Lease]:
        """Queued and active leases, oldest first."""
        rows = conn.execute(
            select(LEASES).where(LEASES.c.status.in_(LIVE_STATUSES)).order_by(LEASES.c.id)
        )
        return [lease_from_row(r) for r in rows]

    @staticmethod
    def load_claims(conn: Connection) -> list[Any]:
        """Every held slot: rows with ``device_id``, ``slot``, ``lease_id``."""
        return list(conn.execute(select(CLAIMS)))

    # -- lookups (outside any transaction) ---------------------------------------------

    def lease(self, lease_id: int) -> Lease | None:
        """A lease from the table, or None."""
        with self.engine.connect() as conn:
            row = conn.execute(select(LEASES).where(LEASES.c.id == lease_id)).first()
        return None if row is None else lease_from_row(row)

    def lease_by_key(self, user: str, key: str) -> Lease | None:
        """The lease ``user`` created with idempotency key ``key``, or None."""
        q = select(LEASES).where(LEASES.c.user == user, LEASES.c.idempotency_key == key)
        with self.engine.connect() as conn:
            row = conn.execute(q).first()
        return None if row is None else lease_from_row(row)

    def leases(self, statuses: Iterable[str], *, user: str | None, limit: int) -> list[Lease]:
        """Leases in ``statuses`` from the table, newest first."""
        q = (
            select(LEASES)
            .where(LEASES.c.status.in_(list(statuses)))
            .order_by(LEASES.c.id.desc())
            .limit(limit)
        )
        if user is not None:
            q = q.where(LEASES.c.user == user)
        with self.engine.connect() as conn:
            return [lease_from_row(r) for r in conn.execute(q)]
